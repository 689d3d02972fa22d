/**
 * A generic FramebufferMemory (core/contracts/memory.ts): placement by the RangeAllocator, bytes by a pluggable
 * FbBackingStore. The mock backs it with a sparse in-memory store, the Ada HAL with a native SharedArena (whose
 * `window`/`fill` have exactly this shape, so an arena *is* a backing store).
 *
 * Host mappings are the BAR1 mappings of the real driver: each is bounds-checked against its range, dies with the
 * range (free unmaps first — the upstream driver leaves that ordering to the caller), and refuses use after unmap.
 */
import type { FbRange, FbReserveRequest, FbStats, FramebufferMemory, HostMapping } from '../contracts/memory.js';
import { ErrorCode, VgpuError } from '../contracts/exceptions.js';
import { RangeAllocator } from './range-allocator.js';

/** Where the framebuffer's bytes live. */
export interface FbBackingStore {
  /** A Buffer view over [offset, offset+length); writes through it are writes to the FB. */
  window(offset: bigint, length: number): Buffer;
  /** Fill with a repeated 32-bit little-endian pattern; offset and length are 4-byte aligned. */
  fill(offset: bigint, length: bigint, pattern: number): Promise<void>;
  /** Optional copying read; a sparse store uses it to read unwritten memory as zeros without committing it. */
  read?(offset: bigint, length: number): Buffer;
  /** Optional scan: absolute offset of the first 32-bit word != pattern, or null (SharedArena.verify). */
  verify?(offset: bigint, length: bigint, pattern: number): Promise<bigint | null>;
  /** Optional per-page hashes that leave never-written pages untouched (SharedArena.hashPages); see FramebufferMemory. */
  hashPages?(offset: bigint, length: bigint, pageSize: number): Promise<BigUint64Array>;
  /** Optional: absolute data extents of [offset, offset+length) (SharedArena.dataExtents); see FramebufferMemory. */
  dataExtents?(offset: bigint, length: bigint): bigint[];
  /** Optional: back pages without writing them (SharedArena.reserve); see FramebufferMemory.prefault. */
  reserve?(offset: bigint, length: bigint, keepFreeBytes?: bigint): Promise<'reserved' | 'no-room' | 'unsupported'>;
  /** Optional: map pages for writing now (SharedArena.populate); see FramebufferMemory.prefault's `map`. */
  populate?(offset: bigint, length: bigint): Promise<'populated' | 'unsupported'>;
  /** Optional: sleep while the word at `offset` holds `expected` (SharedArena.wait32); see HostMapping.waitWord32. */
  waitWord32?(offset: bigint, expected: number, timeoutMs: number): Promise<void>;
}

export interface FramebufferMemoryOptions {
  totalBytes: bigint;
  store: FbBackingStore;
  /** Default alignment when a request gives none (the 4 KiB page). */
  pageSize?: bigint;
  /** Largest window a mapping hands out (default 1 GiB, the SharedArena limit). */
  maxWindow?: number;
  /** For messages: "framebuffer of 0000:41:00.0". */
  name?: string;
}

/** Something a mapping tells its owner when it goes away. */
interface MappingRecord {
  mapping: HostMappingImpl;
}

interface LiveRange {
  range: FbRange;
  mappings: Set<MappingRecord>;
}

export interface MappingInfo {
  rangeId: number;
  offset: bigint;
  size: bigint;
}

const PAGE = 4096n;

export class FramebufferMemoryImpl implements FramebufferMemory {
  readonly totalBytes: bigint;
  readonly maxWindow: number;
  private readonly alloc: RangeAllocator;
  private readonly store: FbBackingStore;
  private readonly pageSize: bigint;
  private readonly name: string;
  private readonly live = new Map<number, LiveRange>();
  private nextId = 1;
  /** Set only when the store can hash pages itself (the contract's "present only when" rule). */
  readonly hashPages?: (range: FbRange, opts?: { offset?: bigint; size?: bigint; pageSize?: number }) => Promise<BigUint64Array>;
  /** Set only when the store knows its data extents. */
  readonly writtenExtents?: (range: FbRange, opts?: { offset?: bigint; size?: bigint }) => bigint[];
  /** Set only when the store can back pages without writing them. */
  readonly prefault?: FramebufferMemory['prefault'];

  constructor(opts: FramebufferMemoryOptions) {
    this.totalBytes = opts.totalBytes;
    this.store = opts.store;
    this.pageSize = opts.pageSize ?? PAGE;
    this.maxWindow = opts.maxWindow ?? 1 << 30;
    this.name = opts.name ?? 'framebuffer';
    this.alloc = new RangeAllocator(opts.totalBytes, { name: this.name });
    const storeHash = opts.store.hashPages?.bind(opts.store);
    if (storeHash !== undefined) {
      this.hashPages = async (range, o = {}) => {
        const entry = this.lookup(range, 'hash');
        const { offset, size } = this.subRange(entry.range, o, 'hash');
        const pageSize = o.pageSize ?? 4096;
        if (!Number.isInteger(pageSize) || pageSize < 4 || pageSize % 4 !== 0 || (entry.range.offset + offset) % BigInt(pageSize) !== 0n || size % BigInt(pageSize) !== 0n) {
          throw new VgpuError(ErrorCode.InvalidArgument, `hash of ${size} bytes at +${offset} is not in whole ${pageSize}-byte pages`, {
            hint: 'hash whole, page-aligned pages of the range (a multiple of 4 bytes per page)',
          });
        }
        return size === 0n ? new BigUint64Array(0) : storeHash(entry.range.offset + offset, size, pageSize);
      };
    }
    const storeExtents = opts.store.dataExtents?.bind(opts.store);
    if (storeExtents !== undefined) {
      this.writtenExtents = (range, o = {}) => {
        const entry = this.lookup(range, 'list the written extents of');
        const { offset, size } = this.subRange(entry.range, o, 'written extents');
        const base = entry.range.offset;
        const abs = storeExtents(base + offset, size);
        const out = new Array<bigint>(abs.length);
        for (let i = 0; i < abs.length; i++) out[i] = abs[i]! - base;
        return out;
      };
    }
    const storeReserve = opts.store.reserve?.bind(opts.store);
    const storePopulate = opts.store.populate?.bind(opts.store);
    if (storeReserve !== undefined) {
      this.prefault = async (range, o = {}) => {
        const entry = this.lookup(range, 'pre-fault');
        const { offset, size } = this.subRange(entry.range, o, 'pre-fault');
        if ((entry.range.offset + offset) % PAGE !== 0n || size % PAGE !== 0n) {
          throw new VgpuError(ErrorCode.InvalidArgument, `pre-fault of ${size} bytes at +${offset} is not in whole 4 KiB pages`, {
            hint: 'pre-fault whole, page-aligned pages of the range',
          });
        }
        if (size === 0n) return 'reserved';
        const at = entry.range.offset + offset;
        const r = await storeReserve(at, size, o.keepFreeBytes ?? 0n);
        if (r !== 'reserved' || o.map !== true || storePopulate === undefined) return r;
        return (await storePopulate(at, size)) === 'populated' ? 'mapped' : 'reserved';
      };
    }
  }

  reserve(req: FbReserveRequest): FbRange {
    if (req === null || typeof req !== 'object' || typeof req.owner !== 'string' || req.owner === '' || typeof req.label !== 'string') {
      throw new VgpuError(ErrorCode.InvalidArgument, 'an FB reservation needs a size, a non-empty owner and a label', {
        hint: "pass { size, owner: '<vgpu id>', label: 'guest-fb' }",
      });
    }
    const align = req.align === undefined || req.align === 0n ? this.pageSize : req.align;
    const placed = this.alloc.reserve(req.size, align, req.at, req.below);
    const range: FbRange = Object.freeze({ id: this.nextId++, offset: placed.offset, size: placed.size, owner: req.owner, label: req.label });
    this.live.set(range.id, { range, mappings: new Set() });
    return range;
  }

  free(range: FbRange): void {
    const entry = this.lookup(range, 'free');
    for (const rec of [...entry.mappings]) rec.mapping.unmap();
    this.alloc.free(entry.range.offset, entry.range.size);
    this.live.delete(entry.range.id);
  }

  map(range: FbRange, opts: { offset?: bigint; size?: bigint } = {}): HostMapping {
    const entry = this.lookup(range, 'map');
    const { offset, size } = this.subRange(entry.range, opts, 'map');
    const rec: MappingRecord = { mapping: undefined as unknown as HostMappingImpl };
    rec.mapping = new HostMappingImpl(entry.range, offset, size, this.store, this.maxWindow, () => entry.mappings.delete(rec));
    entry.mappings.add(rec);
    return rec.mapping;
  }

  stats(): FbStats {
    const s = this.alloc.stats();
    return { total: s.total, used: s.used, free: s.free, largestFree: s.largestFree, fragmentation: s.fragmentation, ranges: s.ranges };
  }

  list(): FbRange[] {
    return [...this.live.values()].map((e) => e.range).sort((a, b) => (a.offset < b.offset ? -1 : a.offset > b.offset ? 1 : 0));
  }

  async fill(range: FbRange, pattern: number, opts: { offset?: bigint; size?: bigint } = {}): Promise<void> {
    const entry = this.lookup(range, 'fill');
    const { offset, size } = this.subRange(entry.range, opts, 'fill');
    if ((entry.range.offset + offset) % 4n !== 0n || size % 4n !== 0n) {
      throw new VgpuError(ErrorCode.InvalidArgument, `fill of ${size} bytes at +${offset} is not 4-byte aligned`, {
        hint: 'a 32-bit pattern fill needs a 4-byte aligned offset and size',
      });
    }
    if (size === 0n) return;
    await this.store.fill(entry.range.offset + offset, size, pattern >>> 0);
  }

  /**
   * Offset inside the range of the first 32-bit word != pattern, or null. Delegates to the store's scan when it has
   * one; otherwise compares copies of ≤ 64 MiB windows and yields to the event loop between them.
   */
  async verify(range: FbRange, pattern: number, opts: { offset?: bigint; size?: bigint } = {}): Promise<bigint | null> {
    const entry = this.lookup(range, 'verify');
    const sub = this.subRange(entry.range, opts, 'verify');
    const offset = entry.range.offset + sub.offset;
    const size = sub.size;
    if (offset % 4n !== 0n || size % 4n !== 0n) {
      throw new VgpuError(ErrorCode.InvalidArgument, `verify of FB range #${range.id} is not 4-byte aligned`, {
        hint: 'verify 4-byte aligned ranges (FB ranges are page aligned)',
      });
    }
    if (this.store.verify !== undefined) {
      const at = await this.store.verify(offset, size, pattern >>> 0);
      return at === null ? null : at - entry.range.offset;
    }
    const piece = Math.min(64 << 20, this.maxWindow);
    const want = Buffer.alloc(piece);
    want.fill(patternBytes(pattern));
    for (let at = 0n; at < size; at += BigInt(piece)) {
      const n = Number(size - at < BigInt(piece) ? size - at : BigInt(piece));
      const got = this.store.read !== undefined ? this.store.read(offset + at, n) : this.store.window(offset + at, n);
      if (!got.equals(want.subarray(0, n))) {
        for (let i = 0; i < n; i += 4) {
          if (got.readUInt32LE(i) !== pattern >>> 0) return sub.offset + at + BigInt(i);
        }
      }
      await new Promise<void>((r) => setImmediate(r));
    }
    return null;
  }

  /** True while `range` is a live range of this memory (same id, offset and size). */
  has(range: FbRange): boolean {
    const e = this.live.get(range.id);
    return e !== undefined && e.range.offset === range.offset && e.range.size === range.size;
  }

  /** Live host mappings, for the books. */
  mappings(): MappingInfo[] {
    const out: MappingInfo[] = [];
    for (const e of this.live.values()) for (const m of e.mappings) out.push({ rangeId: e.range.id, offset: m.mapping.offset, size: m.mapping.size });
    return out;
  }

  private lookup(range: FbRange, what: string): LiveRange {
    const e = range && typeof range === 'object' ? this.live.get(range.id) : undefined;
    if (e !== undefined && e.range.offset === range.offset && e.range.size === range.size) return e;
    const id = range && typeof range === 'object' ? range.id : undefined;
    // Ids are handed out in order, so an id below nextId that is not live was freed: a double free (or use after
    // free), which deserves a different message from "not ours".
    const freed = e === undefined && typeof id === 'number' && id > 0 && id < this.nextId;
    throw new VgpuError(freed ? ErrorCode.IllegalState : ErrorCode.NotFound,
      freed ? `cannot ${what} FB range #${id}: it was already freed` : `cannot ${what}: not a live range of the ${this.name}`, {
        hint: freed ? 'free each range exactly once and drop your reference to it afterwards' : 'use the FbRange that reserve() of this GPU returned',
        details: { id, offset: range && typeof range === 'object' ? String(range.offset) : undefined },
      });
  }

  private subRange(range: FbRange, opts: { offset?: bigint; size?: bigint }, what: string): { offset: bigint; size: bigint } {
    const offset = opts.offset ?? 0n;
    const size = opts.size ?? range.size - offset;
    if (offset < 0n || size < 0n || offset + size > range.size) {
      throw new VgpuError(ErrorCode.InvalidArgument, `${what} of [${offset}, ${offset + size}) is outside FB range #${range.id} of ${range.size} bytes`, {
        hint: 'keep offset and size inside the range',
        details: { id: range.id, offset: String(offset), size: String(size), rangeSize: String(range.size) },
      });
    }
    return { offset, size };
  }
}

function patternBytes(pattern: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(pattern >>> 0);
  return b;
}

class HostMappingImpl implements HostMapping {
  private live = true;
  readonly waitWord32?: (offset: number, expected: number, timeoutMs: number) => Promise<void>;

  constructor(
    readonly range: FbRange,
    readonly offset: bigint,
    readonly size: bigint,
    private readonly store: FbBackingStore,
    private readonly maxWindow: number,
    private readonly onUnmap: () => void,
  ) {
    // Only when the store can sleep on a word: a caller tells "the device notifies" from the method's presence.
    const wait = store.waitWord32?.bind(store);
    if (wait !== undefined) {
      this.waitWord32 = async (off, expected, timeoutMs) => {
        this.check(off, 4);
        if (off % 4 !== 0) {
          throw new VgpuError(ErrorCode.InvalidArgument, `waitWord32 at offset ${off}: not 4-byte aligned`, { hint: 'wait on an aligned 32-bit word' });
        }
        await wait(this.range.offset + this.offset + BigInt(off), expected >>> 0, timeoutMs);
      };
    }
  }

  window(offset: number, length: number): Buffer {
    this.check(offset, length);
    return this.store.window(this.range.offset + this.offset + BigInt(offset), length);
  }

  read(offset: number, length: number): Buffer {
    this.check(offset, length);
    const at = this.range.offset + this.offset + BigInt(offset);
    return this.store.read !== undefined ? this.store.read(at, length) : Buffer.from(this.store.window(at, length));
  }

  write(offset: number, data: Uint8Array): void {
    this.window(offset, data.length).set(data);
  }

  unmap(): void {
    if (!this.live) return; // idempotent: free() may already have unmapped it
    this.live = false;
    this.onUnmap();
  }

  private check(offset: number, length: number): void {
    if (!this.live) {
      throw new VgpuError(ErrorCode.IllegalState, `mapping of FB range #${this.range.id} was unmapped`, {
        hint: 'map the range again; a mapping dies with unmap() or when its range is freed',
      });
    }
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || BigInt(offset) + BigInt(length) > this.size) {
      throw new VgpuError(ErrorCode.NativeRange, `window [${offset}, ${offset + length}) is outside a ${this.size}-byte mapping`, {
        hint: 'keep windows inside the mapping',
        details: { id: this.range.id, offset, length, size: String(this.size) },
      });
    }
    if (length > this.maxWindow) {
      throw new VgpuError(ErrorCode.NativeRange, `window of ${length} bytes exceeds the ${this.maxWindow}-byte limit`, {
        hint: 'walk large ranges in several windows',
        details: { length, maxWindow: this.maxWindow },
      });
    }
  }
}
