/**
 * Contiguous integer-ID ranges over [0, total): the CHID pool of a GPU (docs/reference/core-driver-interface.md ops
 * 11–13).
 *
 * Placement is first-fit from 0, like Linux `bitmap_find_next_zero_area(map, size, 0, count, 0)`. Two places where
 * this does better than a bare bitmap (and than nova's no-op `free_chids`): every range remembers its owner, and
 * `free` checks that the exact (offset, count) was allocated — a bitmap would silently clear whatever bits it is
 * given, so freeing a wrong count corrupts a neighbour's CHIDs without any error.
 *
 * Live ranges are kept sorted by offset; alloc walks the gaps between them (O(ranges), ranges ≤ total ≤ a few
 * thousand).
 */
import type { ChannelRange, ChannelStats } from '../contracts/channels.js';
import { ErrorCode, VgpuError } from '../contracts/exceptions.js';

export class IdRangeAllocator {
  readonly total: number;
  private readonly name: string;
  private readonly ranges: ChannelRange[] = []; // sorted by offset
  private usedIds = 0;

  constructor(total: number, opts: { name?: string } = {}) {
    if (!Number.isInteger(total) || total <= 0) {
      throw new VgpuError(ErrorCode.InvalidArgument, `ID space size must be a positive integer, got ${total}`, {
        hint: 'pass the number of IDs in the pool, e.g. 2048',
      });
    }
    this.total = total;
    this.name = opts.name ?? 'ID pool';
  }

  alloc(count: number, owner: string, at?: number): ChannelRange {
    if (!Number.isInteger(count) || count <= 0) {
      throw new VgpuError(ErrorCode.InvalidArgument, `count must be a positive integer, got ${count}`, {
        hint: 'request at least one ID',
        details: { count },
      });
    }
    if (typeof owner !== 'string' || owner === '') {
      throw new VgpuError(ErrorCode.InvalidArgument, 'owner must be a non-empty string', {
        hint: "name who holds the range (a vGPU id, 'manager', …)",
      });
    }
    if (at !== undefined && (!Number.isInteger(at) || at < 0)) {
      throw new VgpuError(ErrorCode.InvalidArgument, `offset must be a non-negative integer, got ${at}`, {
        hint: 'omit `at` to let the pool choose',
        details: { at },
      });
    }
    let idx: number;
    let offset: number;
    if (at !== undefined) {
      idx = this.ranges.findIndex((r) => r.offset >= at);
      if (idx < 0) idx = this.ranges.length;
      const prevEnd = idx > 0 ? this.ranges[idx - 1]!.offset + this.ranges[idx - 1]!.count : 0;
      const nextStart = idx < this.ranges.length ? this.ranges[idx]!.offset : this.total;
      if (at < prevEnd || at + count > nextStart) {
        throw new VgpuError(ErrorCode.NoSpace, `IDs [${at}, ${at + count}) are not free in the ${this.name}`, {
          hint: at + count > this.total ? `the ${this.name} holds IDs 0..${this.total - 1}` : 'another range overlaps them; free it first or let the pool choose',
          details: { at, count },
        });
      }
      offset = at;
    } else {
      let prevEnd = 0;
      idx = 0;
      for (; idx <= this.ranges.length; idx++) {
        const nextStart = idx < this.ranges.length ? this.ranges[idx]!.offset : this.total;
        if (nextStart - prevEnd >= count) break;
        if (idx < this.ranges.length) prevEnd = this.ranges[idx]!.offset + this.ranges[idx]!.count;
      }
      if (idx > this.ranges.length) {
        const s = this.stats();
        throw new VgpuError(ErrorCode.NoSpace, `no run of ${count} free IDs in the ${this.name}`, {
          hint: s.largestFree === 0
            ? `all ${s.total} IDs are in use; destroy a vGPU first`
            : `the longest free run is ${s.largestFree} IDs (${s.total - s.used} free in total)`,
          details: { count, largestFree: s.largestFree, free: s.total - s.used },
        });
      }
      offset = prevEnd;
    }
    const range: ChannelRange = Object.freeze({ offset, count, owner });
    this.ranges.splice(idx, 0, range);
    this.usedIds += count;
    return range;
  }

  free(range: Pick<ChannelRange, 'offset' | 'count'>): void {
    const idx = this.ranges.findIndex((r) => r.offset === range.offset);
    const have = idx >= 0 ? this.ranges[idx]! : undefined;
    if (have === undefined || have.count !== range.count) {
      throw new VgpuError(ErrorCode.NotFound, `IDs [${range.offset}, ${range.offset + range.count}) are not an allocated range of the ${this.name}`, {
        hint: have === undefined
          ? 'it was already freed or never allocated; free each range exactly once'
          : `the range at ${have.offset} holds ${have.count} IDs (owner ${have.owner}); free it with that count`,
        details: { offset: range.offset, count: range.count },
      });
    }
    this.ranges.splice(idx, 1);
    this.usedIds -= have.count;
  }

  /** The allocated range holding `id`, if any. */
  rangeOf(id: number): ChannelRange | undefined {
    return this.ranges.find((r) => id >= r.offset && id < r.offset + r.count);
  }

  stats(): ChannelStats {
    let largest = 0;
    let prevEnd = 0;
    for (const r of this.ranges) {
      largest = Math.max(largest, r.offset - prevEnd);
      prevEnd = r.offset + r.count;
    }
    largest = Math.max(largest, this.total - prevEnd);
    return { total: this.total, used: this.usedIds, largestFree: largest };
  }

  list(): ChannelRange[] {
    return [...this.ranges];
  }
}
