/**
 * A tiny C-struct model: fields in declaration order, laid out with natural alignment (x86-64 / aarch64 LP64
 * rules: every scalar aligned to its size, a struct to its widest member, the size rounded up to that), all
 * integers little-endian. The firmware ABI is a set of C structs whose offsets the upstream headers never write
 * down; computing them from the declaration, rather than hand-typing 60 offsets, keeps the core and the simulator
 * on exactly the same bytes. The unit tests check the computed offsets against numbers worked out by hand.
 *
 * Value mapping: u8/u16/u32 → number, u64 → bigint, bool → boolean, bytes(n) → Uint8Array(n), an array of a
 * scalar → array of that, a nested struct → object. Encoding takes a partial value: missing fields are zero,
 * which is what the kernel gets from a zeroed `rm_ctrl_get` container.
 */
import { ErrorCode, VgpuError } from '../contracts/exceptions.js';

export type ScalarKind = 'u8' | 'bool' | 'u16' | 'u32' | 'u64';

export interface FieldSpec {
  readonly name: string;
  /** A scalar, `'bytes'` (a char/u8 buffer of `count` bytes), or a nested struct. */
  readonly type: ScalarKind | 'bytes' | StructLayout;
  /** Array length (scalars and structs) or byte length (`'bytes'`). Omitted = a single element. */
  readonly count?: number;
}

export interface FieldInfo extends FieldSpec {
  readonly offset: number;
  /** Bytes the whole field (all elements) occupies. */
  readonly size: number;
  readonly align: number;
}

const SCALAR_SIZE: Record<ScalarKind, number> = { u8: 1, bool: 1, u16: 2, u32: 4, u64: 8 };

function alignUp(n: number, a: number): number {
  return Math.ceil(n / a) * a;
}

export type StructValue = Record<string, unknown>;

/** What `encode` accepts: any field may be left out (zero), recursively into nested structs and arrays of them. */
export type EncodeInput<T> = {
  [K in keyof T]?: T[K] extends Uint8Array
    ? Uint8Array
    : T[K] extends readonly (infer E)[]
      ? [E] extends [object] ? EncodeInput<E>[] : (E | undefined)[]
      : T[K] extends bigint ? bigint | number
        : T[K] extends object ? EncodeInput<T[K]> : T[K];
};

export class StructLayout<T extends object = StructValue> {
  readonly size: number;
  readonly align: number;
  readonly fields: readonly FieldInfo[];
  private readonly byName: Map<string, FieldInfo>;

  constructor(readonly name: string, specs: readonly FieldSpec[]) {
    let off = 0;
    let maxAlign = 1;
    const fields: FieldInfo[] = [];
    for (const s of specs) {
      const count = s.count ?? 1;
      let elemSize: number;
      let align: number;
      if (s.type === 'bytes') {
        elemSize = 1;
        align = 1;
      } else if (typeof s.type === 'string') {
        elemSize = SCALAR_SIZE[s.type];
        align = elemSize;
      } else {
        elemSize = s.type.size;
        align = s.type.align;
      }
      off = alignUp(off, align);
      const size = elemSize * count;
      fields.push({ ...s, offset: off, size, align });
      off += size;
      maxAlign = Math.max(maxAlign, align);
    }
    this.align = maxAlign;
    this.size = alignUp(off, maxAlign);
    this.fields = fields;
    this.byName = new Map(fields.map((f) => [f.name, f]));
  }

  /** Byte offset of a field; throws for a name the struct does not have (a typo is a bug, not a zero). */
  offsetOf(name: keyof T & string): number {
    return this.field(name).offset;
  }

  field(name: keyof T & string): FieldInfo {
    const f = this.byName.get(name);
    if (!f) throw new VgpuError(ErrorCode.Internal, `${this.name} has no field "${name}"`);
    return f;
  }

  /** Encode into a fresh zeroed buffer of exactly `size` bytes. */
  encode(value: EncodeInput<T>): Uint8Array {
    const out = new Uint8Array(this.size);
    this.encodeInto(new DataView(out.buffer), 0, value as StructValue);
    return out;
  }

  /** Decode `size` bytes; extra trailing bytes are ignored, a short buffer is an error (never a silent zero). */
  decode(bytes: Uint8Array): T {
    if (bytes.byteLength < this.size) {
      throw new VgpuError(ErrorCode.InvalidArgument, `${this.name}: ${bytes.byteLength} bytes given, ${this.size} needed`, {
        hint: 'the firmware and the host disagree on the struct layout; check the GSP version',
        details: { struct: this.name, got: bytes.byteLength, need: this.size },
      });
    }
    return this.decodeAt(new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength), 0) as T;
  }

  /** @internal exposed for nested structs. */
  encodeInto(view: DataView, base: number, value: StructValue): void {
    for (const key of Object.keys(value)) {
      if (!this.byName.has(key)) {
        throw new VgpuError(ErrorCode.InvalidArgument, `${this.name} has no field "${key}"`, {
          hint: 'check the field name against the struct definition in core/firmware-abi',
        });
      }
    }
    for (const f of this.fields) {
      const v = value[f.name];
      if (v === undefined) continue;
      const at = base + f.offset;
      if (f.type === 'bytes') {
        const src = typeof v === 'string' ? new TextEncoder().encode(v) : (v as Uint8Array);
        if (!(src instanceof Uint8Array) || src.byteLength > f.size) {
          throw this.rangeError(f, v, `at most ${f.size} bytes`);
        }
        new Uint8Array(view.buffer, view.byteOffset + at, src.byteLength).set(src);
        continue;
      }
      const t = f.type;
      if (f.count === undefined) {
        // A single element: no wrapping array (structs are encoded on every firmware call).
        if (typeof t === 'string') this.writeScalar(view, at, f, t, v);
        else t.encodeInto(view, at, v as StructValue);
        continue;
      }
      const elems = v as unknown[];
      if (!Array.isArray(elems) || elems.length > f.count) throw this.rangeError(f, v, `an array of at most ${f.count}`);
      const elemSize = f.size / f.count;
      // Plain loop, no closure per field: BOOTLOAD's arrays run to 384 entries (as in decodeAt).
      for (let i = 0; i < elems.length; i++) {
        const e = elems[i];
        if (e === undefined) continue;
        const o = at + i * elemSize;
        if (typeof t === 'string') this.writeScalar(view, o, f, t, e);
        else t.encodeInto(view, o, e as StructValue);
      }
    }
  }

  /** @internal exposed for nested structs. */
  decodeAt(view: DataView, base: number): StructValue {
    // Plain loops, no closure per field or element: some firmware structs carry long arrays (BOOTLOAD's two
    // 384-entry u64 segment lists), and the simulated GSP decodes them on every call.
    const out: StructValue = {};
    for (const f of this.fields) {
      const at = base + f.offset;
      const t = f.type;
      if (t === 'bytes') {
        out[f.name] = new Uint8Array(view.buffer.slice(view.byteOffset + at, view.byteOffset + at + f.size));
      } else if (f.count === undefined) {
        out[f.name] = typeof t === 'string' ? readScalar(view, at, t) : t.decodeAt(view, at);
      } else {
        const elemSize = f.size / f.count;
        const arr: unknown[] = new Array(f.count);
        for (let i = 0; i < f.count; i++) {
          const o = at + i * elemSize;
          arr[i] = typeof t === 'string' ? readScalar(view, o, t) : t.decodeAt(view, o);
        }
        out[f.name] = arr;
      }
    }
    return out;
  }

  private writeScalar(view: DataView, o: number, f: FieldInfo, kind: ScalarKind, v: unknown): void {
    if (kind === 'bool') {
      if (typeof v !== 'boolean') throw this.rangeError(f, v, 'a boolean');
      view.setUint8(o, v ? 1 : 0);
      return;
    }
    if (kind === 'u64') {
      const b = typeof v === 'number' && Number.isSafeInteger(v) ? BigInt(v) : v;
      if (typeof b !== 'bigint' || b < 0n || b > 0xffff_ffff_ffff_ffffn) throw this.rangeError(f, v, 'a u64');
      view.setBigUint64(o, b, true);
      return;
    }
    const max = kind === 'u8' ? 0xff : kind === 'u16' ? 0xffff : 0xffff_ffff;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > max) throw this.rangeError(f, v, `a ${kind}`);
    if (kind === 'u8') view.setUint8(o, v);
    else if (kind === 'u16') view.setUint16(o, v, true);
    else view.setUint32(o, v, true);
  }

  private rangeError(f: FieldInfo, v: unknown, want: string): VgpuError {
    return new VgpuError(ErrorCode.InvalidArgument, `${this.name}.${f.name}: ${String(v)} is not ${want}`, {
      hint: 'pass a value that fits the C field',
      details: { struct: this.name, field: f.name },
    });
  }
}

function readScalar(view: DataView, o: number, kind: ScalarKind): unknown {
  switch (kind) {
    case 'bool': return view.getUint8(o) !== 0;
    case 'u8': return view.getUint8(o);
    case 'u16': return view.getUint16(o, true);
    case 'u32': return view.getUint32(o, true);
    case 'u64':
      // Unused entries of the long u64 lists are zero: hand out the one 0n instead of a new BigInt each.
      return view.getUint32(o, true) === 0 && view.getUint32(o + 4, true) === 0 ? 0n : view.getBigUint64(o, true);
  }
}

/** A NUL-padded C string buffer → JS string (up to the first NUL). */
export function cString(bytes: Uint8Array): string {
  const end = bytes.indexOf(0);
  return new TextDecoder().decode(end < 0 ? bytes : bytes.subarray(0, end));
}

/** A JS string → NUL-padded buffer of `size` bytes; refuses strings that leave no room for the NUL. */
export function toCString(s: string, size: number, what: string): Uint8Array {
  const enc = new TextEncoder().encode(s);
  if (enc.byteLength >= size) {
    throw new VgpuError(ErrorCode.InvalidArgument, `${what}: "${s}" does not fit ${size} bytes with its NUL`, {
      hint: `use at most ${size - 1} bytes`,
    });
  }
  const out = new Uint8Array(size);
  out.set(enc);
  return out;
}
