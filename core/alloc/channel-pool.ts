/**
 * The CHID half of a ChannelPool (docs/reference/core-driver-interface.md ops 11–13), shared by every HAL: contiguous
 * CHID ranges on the IdRangeAllocator. A HAL subclasses it and supplies `allocCopyChannel` (op 23), which needs its
 * firmware.
 *
 * Unlike nova's WIP core (alloc/free_chids are no-ops there, so two vGPUs could share CHIDs), the pool really
 * tracks ranges and refuses overlaps, wrong counts and double frees.
 */
import type { ChannelPool, ChannelRange, ChannelStats, CopyChannel } from '../contracts/channels.js';
import { ErrorCode, VgpuError } from '../contracts/exceptions.js';
import { IdRangeAllocator } from './id-range-allocator.js';

export abstract class ChannelPoolBase implements ChannelPool {
  readonly total: number;
  protected readonly ids: IdRangeAllocator;

  constructor(total: number, opts: { name?: string } = {}) {
    this.ids = new IdRangeAllocator(total, { name: opts.name ?? 'CHID pool' });
    this.total = total;
  }

  alloc(count: number, owner: string, opts: { at?: number } = {}): ChannelRange {
    return this.ids.alloc(count, owner, opts.at);
  }

  free(range: ChannelRange): void {
    this.ids.free(range);
  }

  stats(): ChannelStats {
    return this.ids.stats();
  }

  list(): ChannelRange[] {
    return this.ids.list();
  }

  /** The allocated range that holds `chid`, if any. */
  rangeOf(chid: number): ChannelRange | undefined {
    return this.ids.rangeOf(chid);
  }

  abstract allocCopyChannel(chid: number, owner: string): Promise<CopyChannel>;

  /**
   * Check that a copy channel may be bound to `chid`: a CHID of the pool that the caller holds. Subclasses call it
   * first in `allocCopyChannel`, before touching the firmware, so bad input leaves nothing half-made.
   */
  protected checkCopyChid(chid: number, owner: string): ChannelRange {
    if (!Number.isInteger(chid) || chid < 0 || chid >= this.total) {
      throw new VgpuError(ErrorCode.InvalidArgument, `CHID ${chid} is outside the pool 0..${this.total - 1}`, {
        hint: "bind the copy channel to one of the vGPU's own CHIDs (the scrub uses the last one)",
        details: { chid },
      });
    }
    const range = this.rangeOf(chid);
    if (range === undefined) {
      throw new VgpuError(ErrorCode.NotFound, `CHID ${chid} is not allocated`, {
        hint: 'allocate the CHID range first (channels.alloc) and bind the copy channel inside it',
        details: { chid, owner },
      });
    }
    return range;
  }
}
