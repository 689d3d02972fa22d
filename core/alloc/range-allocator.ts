/**
 * A chip-neutral allocator over a bigint address space [0, total): the placement engine behind every
 * FramebufferMemory (the mock FB and the simulated Ada FB).
 *
 * Strategy: address-ordered FIRST-FIT. Why not best-fit: for the workloads here (a handful of large, equally sized
 * guest-FB slices plus small management heaps) address-ordered first-fit fragments about as little as best-fit
 * (Wilson et al., "Dynamic Storage Allocation: A Survey", 1995), and it is predictable: vGPU N lands right after
 * vGPU N−1, which an operator can reason about and a re-attach after restart (`at`) can reproduce. It also keeps
 * the top of the FB free in one block for the next large request.
 *
 * Data structure: the free list is an array of disjoint blocks sorted by offset, coalesced eagerly on free, so it
 * holds at most (live ranges + 1) entries. Reserve scans it once (O(free blocks)); free binary-searches the
 * insertion point (O(log n) plus one array splice). Live ranges are a Map keyed by offset (bigint keys compare by
 * value). That is far above tens of thousands of ops/s for the few thousand ranges a GPU can hold.
 */
import { ErrorCode, VgpuError } from '../contracts/exceptions.js';

export interface AllocatedRange {
  readonly offset: bigint;
  readonly size: bigint;
}

export interface RangeAllocatorStats {
  total: bigint;
  used: bigint;
  free: bigint;
  largestFree: bigint;
  /** 1 − largestFree/free, 0 when nothing is free. */
  fragmentation: number;
  ranges: number;
  freeBlocks: number;
}

interface FreeBlock {
  start: bigint;
  end: bigint; // exclusive
}

export interface RangeAllocatorOptions {
  /** Name used in error messages ("framebuffer of 0000:41:00.0"). */
  name?: string;
  /** Unit word for messages; default "bytes". */
  unit?: string;
}

const alignUp = (v: bigint, a: bigint): bigint => ((v + a - 1n) / a) * a;
const isPow2 = (v: bigint): boolean => v > 0n && (v & (v - 1n)) === 0n;

export class RangeAllocator {
  readonly total: bigint;
  private readonly name: string;
  private readonly unit: string;
  private readonly freeList: FreeBlock[];
  private readonly live = new Map<bigint, bigint>(); // offset → size
  private usedBytes = 0n;

  constructor(total: bigint, opts: RangeAllocatorOptions = {}) {
    if (typeof total !== 'bigint' || total <= 0n) {
      throw new VgpuError(ErrorCode.InvalidArgument, `address space size must be a positive bigint, got ${String(total)}`, {
        hint: 'pass the total size in bytes as a bigint, e.g. 48n << 30n',
      });
    }
    this.total = total;
    this.name = opts.name ?? 'address space';
    this.unit = opts.unit ?? 'bytes';
    this.freeList = [{ start: 0n, end: total }];
  }

  /**
   * Reserve `size` units aligned to `align` (a power of two), at the lowest fitting offset, or exactly at `at`.
   * Throws InvalidArgument for a bad size/align/at and NoSpace (with what does fit now in the hint) when full.
   */
  /** `below`: the range must end at or below this offset (keeps management data out of a region kept for guests). */
  reserve(size: bigint, align: bigint = 1n, at?: bigint, below?: bigint): AllocatedRange {
    this.validate(size, align, at);
    if (at !== undefined) return this.reserveAt(size, at);
    for (let i = 0; i < this.freeList.length; i++) {
      const b = this.freeList[i]!;
      const start = alignUp(b.start, align);
      if (below !== undefined && start + size > below) break; // the free list is sorted: nothing later fits either
      if (start + size <= b.end) {
        this.take(i, start, start + size);
        return { offset: start, size };
      }
    }
    throw this.noSpace(size, align);
  }

  /** Free the range that starts at `offset`; `size`, when given, must match (catches a caller's stale record). */
  free(offset: bigint, size?: bigint): void {
    const have = this.live.get(offset);
    if (have === undefined) {
      throw new VgpuError(ErrorCode.NotFound, `no reserved range starts at offset 0x${offset.toString(16)} in the ${this.name}`, {
        hint: 'it was already freed or never reserved here; free each range exactly once, using the record reserve() returned',
        details: { offset: `0x${offset.toString(16)}` },
      });
    }
    if (size !== undefined && size !== have) {
      throw new VgpuError(ErrorCode.InvalidArgument, `range at 0x${offset.toString(16)} is ${have} ${this.unit}, not ${size}`, {
        hint: 'free the range with the size it was reserved with',
        details: { offset: `0x${offset.toString(16)}`, size: String(have), requested: String(size) },
      });
    }
    this.live.delete(offset);
    this.usedBytes -= have;
    this.insertFree(offset, offset + have);
  }

  /** True when `[offset, offset+size)` is entirely free. */
  isFree(offset: bigint, size: bigint): boolean {
    const i = this.blockContaining(offset);
    return i >= 0 && offset + size <= this.freeList[i]!.end;
  }

  /** The live range starting at `offset`, if any. */
  get(offset: bigint): AllocatedRange | undefined {
    const size = this.live.get(offset);
    return size === undefined ? undefined : { offset, size };
  }

  stats(): RangeAllocatorStats {
    let largest = 0n;
    for (const b of this.freeList) if (b.end - b.start > largest) largest = b.end - b.start;
    const free = this.total - this.usedBytes;
    // Number(bigint) is exact enough for a ratio: both operands lose the same relative precision.
    const fragmentation = free === 0n ? 0 : 1 - Number(largest) / Number(free);
    return {
      total: this.total,
      used: this.usedBytes,
      free,
      largestFree: largest,
      fragmentation,
      ranges: this.live.size,
      freeBlocks: this.freeList.length,
    };
  }

  /** Live ranges sorted by offset. */
  list(): AllocatedRange[] {
    return [...this.live].map(([offset, size]) => ({ offset, size })).sort((a, b) => (a.offset < b.offset ? -1 : 1));
  }

  /** Free blocks sorted by offset (for diagnostics and tests). */
  freeBlocks(): AllocatedRange[] {
    return this.freeList.map((b) => ({ offset: b.start, size: b.end - b.start }));
  }

  /** The largest size that fits now with this alignment (0n when none). */
  largestFit(align: bigint = 1n): bigint {
    let best = 0n;
    for (const b of this.freeList) {
      const start = alignUp(b.start, align);
      if (start < b.end && b.end - start > best) best = b.end - start;
    }
    return best;
  }

  private validate(size: bigint, align: bigint, at: bigint | undefined): void {
    if (typeof size !== 'bigint' || size <= 0n) {
      throw new VgpuError(ErrorCode.InvalidArgument, `size must be a positive bigint, got ${String(size)}`, {
        hint: `request at least 1 ${this.unit}`,
        details: { size: String(size) },
      });
    }
    if (typeof align !== 'bigint' || !isPow2(align)) {
      throw new VgpuError(ErrorCode.InvalidArgument, `alignment must be a power of two, got ${String(align)}`, {
        hint: 'use 4096n, 2n << 20n, the VMMU segment size, …',
        details: { align: String(align) },
      });
    }
    if (at !== undefined) {
      if (typeof at !== 'bigint' || at < 0n || at % align !== 0n) {
        throw new VgpuError(ErrorCode.InvalidArgument, `offset ${String(at)} is negative or not ${align}-aligned`, {
          hint: 'place the range at an offset that is a multiple of its alignment',
          details: { at: String(at), align: String(align) },
        });
      }
    }
  }

  private reserveAt(size: bigint, at: bigint): AllocatedRange {
    const i = this.blockContaining(at);
    if (i < 0 || at + size > this.freeList[i]!.end) {
      throw new VgpuError(ErrorCode.NoSpace, `[0x${at.toString(16)}, 0x${(at + size).toString(16)}) is not free in the ${this.name}`, {
        hint: at + size > this.total
          ? `the ${this.name} ends at 0x${this.total.toString(16)}`
          : 'another range overlaps it; free that one first or let the allocator choose the offset',
        details: { at: String(at), size: String(size), overlaps: this.overlapping(at, at + size).map((r) => String(r.offset)) },
      });
    }
    this.take(i, at, at + size);
    return { offset: at, size };
  }

  /** Carve [start, end) out of free block i, leaving up to two remainders. */
  private take(i: number, start: bigint, end: bigint): void {
    const b = this.freeList[i]!;
    const rest: FreeBlock[] = [];
    if (b.start < start) rest.push({ start: b.start, end: start });
    if (end < b.end) rest.push({ start: end, end: b.end });
    this.freeList.splice(i, 1, ...rest);
    this.live.set(start, end - start);
    this.usedBytes += end - start;
  }

  /** Insert a freed block and merge it with its neighbours. */
  private insertFree(start: bigint, end: bigint): void {
    const fl = this.freeList;
    // first block with start > `start`
    let lo = 0;
    let hi = fl.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (fl[mid]!.start <= start) lo = mid + 1;
      else hi = mid;
    }
    const prev = lo > 0 ? fl[lo - 1] : undefined;
    const next = fl[lo];
    const joinPrev = prev !== undefined && prev.end === start;
    const joinNext = next !== undefined && next.start === end;
    if (joinPrev && joinNext) {
      prev.end = next.end;
      fl.splice(lo, 1);
    } else if (joinPrev) {
      prev.end = end;
    } else if (joinNext) {
      next.start = start;
    } else {
      fl.splice(lo, 0, { start, end });
    }
  }

  /** Index of the free block containing `offset`, or −1. */
  private blockContaining(offset: bigint): number {
    const fl = this.freeList;
    let lo = 0;
    let hi = fl.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const b = fl[mid]!;
      if (offset < b.start) hi = mid - 1;
      else if (offset >= b.end) lo = mid + 1;
      else return mid;
    }
    return -1;
  }

  private overlapping(start: bigint, end: bigint): AllocatedRange[] {
    return this.list().filter((r) => r.offset < end && r.offset + r.size > start).slice(0, 4);
  }

  private noSpace(size: bigint, align: bigint): VgpuError {
    const s = this.stats();
    const fit = this.largestFit(align);
    return new VgpuError(ErrorCode.NoSpace, `no free ${align}-aligned block of ${size} ${this.unit} in the ${this.name}`, {
      hint: fit === 0n
        ? `the ${this.name} is full (${s.used} of ${s.total} ${this.unit} used); free a range first`
        : `the largest ${align}-aligned request that fits now is ${fit} ${this.unit} (${s.free} free in ${s.freeBlocks} blocks, fragmentation ${(s.fragmentation * 100).toFixed(1)}%)`,
      details: { size: String(size), align: String(align), largestFit: String(fit), free: String(s.free), freeBlocks: s.freeBlocks },
    });
  }
}
