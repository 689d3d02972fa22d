/**
 * Declarative packing of the fixed parts of vfio-user messages: each structure is written down as the spec's
 * table (name, offset, width) and packed/unpacked from that table alone, so reviewing a structure means comparing
 * three columns with QEMU docs/interop/vfio-user.rst — no hand-computed offsets scattered through the code.
 *
 * The protocol carries "the endianness of the host system" (QEMU spec "Protocol Specification"); this client runs
 * only on little-endian hosts and says so at load time rather than silently packing the wrong way.
 */
import { endianness } from 'node:os';

if (endianness() !== 'LE') throw new Error('the guest model packs vfio-user structures little-endian (the host order of every supported host)');

export type FieldWidth = 'u8' | 'u16' | 'u32' | 'u64';
type FieldSpec = readonly [width: FieldWidth, offset: number];
type ValueOf<W extends FieldWidth> = W extends 'u64' ? bigint : number;
export type StructValues<F extends Record<string, FieldSpec>> = { [K in keyof F]: ValueOf<F[K][0]> };

const WIDTH: Record<FieldWidth, number> = { u8: 1, u16: 2, u32: 4, u64: 8 };

export interface StructLayout<F extends Record<string, FieldSpec>> {
  readonly name: string;
  /** Bytes of the fixed part. */
  readonly size: number;
  readonly fields: F;
  /** Pack `values` (missing fields are 0) into a new Buffer of `size` bytes. */
  pack(values: Partial<StructValues<F>>): Buffer;
  /** Pack into `buf` at `at`. */
  packInto(buf: Buffer, at: number, values: Partial<StructValues<F>>): void;
  /** Unpack from `buf` at `at`; throws when fewer than `size` bytes are there. */
  unpack(buf: Buffer, at?: number): StructValues<F>;
}

export function defineStruct<const F extends Record<string, FieldSpec>>(name: string, size: number, fields: F): StructLayout<F> {
  // Check the table itself once: every field inside the struct and no two fields overlapping.
  const spans: [number, number, string][] = [];
  for (const [k, [w, off]] of Object.entries(fields)) {
    if (off < 0 || off + WIDTH[w] > size) throw new Error(`${name}.${k}: offset ${off} + ${WIDTH[w]} outside ${size} bytes`);
    for (const [a, b, other] of spans) {
      if (off < b && a < off + WIDTH[w]) throw new Error(`${name}.${k} overlaps ${name}.${other}`);
    }
    spans.push([off, off + WIDTH[w], k]);
  }
  const packInto = (buf: Buffer, at: number, values: Partial<StructValues<F>>): void => {
    for (const [k, [w, off]] of Object.entries(fields)) {
      const v = (values as Record<string, number | bigint | undefined>)[k];
      const o = at + off;
      switch (w) {
        case 'u8': buf.writeUInt8(Number(v ?? 0), o); break;
        case 'u16': buf.writeUInt16LE(Number(v ?? 0), o); break;
        case 'u32': buf.writeUInt32LE(Number(v ?? 0), o); break;
        case 'u64': buf.writeBigUInt64LE(BigInt(v ?? 0n), o); break;
      }
    }
  };
  return {
    name,
    size,
    fields,
    pack(values) {
      const b = Buffer.alloc(size);
      packInto(b, 0, values);
      return b;
    },
    packInto,
    unpack(buf, at = 0) {
      if (buf.length - at < size) throw new Error(`${name}: ${buf.length - at} bytes, need ${size}`);
      const out: Record<string, number | bigint> = {};
      for (const [k, [w, off]] of Object.entries(fields)) {
        const o = at + off;
        out[k] = w === 'u8' ? buf.readUInt8(o) : w === 'u16' ? buf.readUInt16LE(o) : w === 'u32' ? buf.readUInt32LE(o) : buf.readBigUInt64LE(o);
      }
      return out as StructValues<F>;
    },
  };
}
