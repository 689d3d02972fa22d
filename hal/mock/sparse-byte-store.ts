/**
 * A sparse in-memory byte store for the mock framebuffer: memory is committed in 1 MiB chunks on first write, and
 * reads of memory never written return zeros without committing anything, so a 48 GB mock GPU costs nothing.
 *
 * Committed memory is a sorted list of disjoint extents (chunk-aligned Buffers). A window inside one extent is a
 * view of it. A window spanning several extents or holes merges them into one new extent (copying what was
 * there) — CAVEAT: a Buffer window obtained earlier over the merged span keeps pointing at the old copy. Windows
 * inside one chunk never merge; take short-lived windows and this never matters in practice.
 */
import { ErrorCode, VgpuError } from '../../core/contracts/exceptions.js';
import type { FbBackingStore } from '../../core/alloc/framebuffer-memory.js';

interface Extent {
  start: bigint;
  buf: Buffer;
}

export interface SparseByteStoreOptions {
  /** Commit granule, default 1 MiB. */
  chunkBytes?: number;
  /** Refuse to commit more than this (default 4 GiB): a non-zero fill of a whole 48 GB mock FB is a test bug. */
  maxCommitBytes?: bigint;
}

export class SparseByteStore implements FbBackingStore {
  readonly size: bigint;
  readonly chunkBytes: bigint;
  readonly maxCommitBytes: bigint;
  private readonly extents: Extent[] = [];
  private committed = 0n;

  constructor(size: bigint, opts: SparseByteStoreOptions = {}) {
    this.size = size;
    this.chunkBytes = BigInt(opts.chunkBytes ?? 1 << 20);
    this.maxCommitBytes = opts.maxCommitBytes ?? 4n << 30n;
  }

  /** Bytes committed so far (what the store really costs). */
  committedBytes(): bigint {
    return this.committed;
  }

  window(offset: bigint, length: number): Buffer {
    this.check(offset, length);
    if (length === 0) return Buffer.alloc(0);
    const end = offset + BigInt(length);
    const first = this.firstOverlap(offset);
    const e = this.extents[first];
    if (e !== undefined && e.start <= offset && end <= e.start + BigInt(e.buf.length)) {
      const rel = Number(offset - e.start);
      return e.buf.subarray(rel, rel + length);
    }
    const merged = this.commit(offset, end);
    const rel = Number(offset - merged.start);
    return merged.buf.subarray(rel, rel + length);
  }

  /** A copy of [offset, offset+length): zeros where nothing was written; commits nothing. */
  read(offset: bigint, length: number): Buffer {
    this.check(offset, length);
    const out = Buffer.alloc(length);
    const end = offset + BigInt(length);
    for (let i = this.firstOverlap(offset); i < this.extents.length; i++) {
      const e = this.extents[i]!;
      const eEnd = e.start + BigInt(e.buf.length);
      if (e.start >= end) break;
      const from = offset > e.start ? offset : e.start;
      const to = end < eEnd ? end : eEnd;
      if (from < to) e.buf.copy(out, Number(from - offset), Number(from - e.start), Number(to - e.start));
    }
    return out;
  }

  async fill(offset: bigint, length: bigint, pattern: number): Promise<void> {
    this.check(offset, 0);
    if (length < 0n || offset + length > this.size) {
      throw new VgpuError(ErrorCode.NativeRange, `fill [${offset}, ${offset + length}) is outside the ${this.size}-byte store`, {
        hint: 'keep fills inside the framebuffer',
      });
    }
    const end = offset + length;
    if (pattern >>> 0 === 0) {
      // Zero: only memory that was written can be non-zero, so touch nothing else (keeps the store sparse).
      for (let i = this.firstOverlap(offset); i < this.extents.length; i++) {
        const e = this.extents[i]!;
        if (e.start >= end) break;
        const eEnd = e.start + BigInt(e.buf.length);
        const from = offset > e.start ? offset : e.start;
        const to = end < eEnd ? end : eEnd;
        if (from < to) e.buf.fill(0, Number(from - e.start), Number(to - e.start));
      }
      return;
    }
    const pat = Buffer.alloc(4);
    pat.writeUInt32LE(pattern >>> 0);
    const piece = 64n << 20n;
    for (let at = offset; at < end; ) {
      // cut at piece boundaries so each window stays small; 4-byte alignment keeps the pattern phase right
      const stop = (at / piece + 1n) * piece < end ? (at / piece + 1n) * piece : end;
      this.window(at, Number(stop - at)).fill(pat);
      at = stop;
      await new Promise<void>((r) => setImmediate(r)); // stay off the event loop's critical path for big fills
    }
  }

  private check(offset: bigint, length: number): void {
    if (typeof offset !== 'bigint' || offset < 0n || !Number.isSafeInteger(length) || length < 0 || offset + BigInt(length) > this.size) {
      throw new VgpuError(ErrorCode.NativeRange, `[${String(offset)}, +${length}) is outside the ${this.size}-byte store`, {
        hint: 'keep accesses inside the framebuffer',
        details: { offset: String(offset), length },
      });
    }
  }

  /** Index of the first extent whose end is beyond `offset`. */
  private firstOverlap(offset: bigint): number {
    let lo = 0;
    let hi = this.extents.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const e = this.extents[mid]!;
      if (e.start + BigInt(e.buf.length) <= offset) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Commit [offset, end) rounded out to chunks, merging every extent it touches into one. */
  private commit(offset: bigint, end: bigint): Extent {
    let start = (offset / this.chunkBytes) * this.chunkBytes;
    let stop = ((end + this.chunkBytes - 1n) / this.chunkBytes) * this.chunkBytes;
    if (stop > this.size) stop = this.size;
    const i0 = this.firstOverlap(start);
    let i1 = i0;
    let already = 0n;
    while (i1 < this.extents.length && this.extents[i1]!.start < stop) {
      const e = this.extents[i1]!;
      if (e.start < start) start = e.start;
      const eEnd = e.start + BigInt(e.buf.length);
      if (eEnd > stop) stop = eEnd;
      already += BigInt(e.buf.length);
      i1++;
    }
    const added = stop - start - already;
    if (this.committed + added > this.maxCommitBytes) {
      throw new VgpuError(ErrorCode.OutOfMemory, `the mock FB would commit ${this.committed + added} bytes (limit ${this.maxCommitBytes})`, {
        hint: 'the mock keeps memory sparse: write less, or raise maxCommitBytes in the mock device options',
        details: { committed: String(this.committed), added: String(added) },
      });
    }
    const buf = Buffer.alloc(Number(stop - start));
    for (let i = i0; i < i1; i++) {
      const e = this.extents[i]!;
      e.buf.copy(buf, Number(e.start - start));
    }
    const merged: Extent = { start, buf };
    this.extents.splice(i0, i1 - i0, merged);
    this.committed += added;
    return merged;
  }
}
