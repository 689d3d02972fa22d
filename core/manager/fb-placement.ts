/**
 * Placement of guest-FB slices inside the vGPU FB region of one GPU, in units of VMMU segments ("slots"). A
 * placement id is the slot index of a vGPU's first segment; its FB offset is `regionBase + id × segmentSize`.
 *
 * Why slots: the VMMU segment is the granule the GPU maps guest FB in (docs/reference/ada-chips.md), so any finer
 * placement only creates unusable slivers. Working in slot numbers also keeps the state tiny and the arithmetic
 * exact.
 *
 * Strategy ('two-ended', the default), for mixed sizes (heterogeneous mode):
 *  1. Best fit over the free runs: take the smallest free run that holds the request, so a large run is not
 *     nibbled when a snug hole exists (this is what stops small vGPUs from stranding a big type's room).
 *  2. Size classes at opposite ends: "small" requests go to the LOW end of that run, "large" ones to the HIGH end.
 *     Small and large vGPUs then grow toward each other from the two ends of the region and the free space stays
 *     one contiguous block in the middle; when a small vGPU goes away its hole is refilled by another small one,
 *     not left as a sliver between big ones. The class threshold is the geometric mean of the smallest and
 *     largest installed type (in slots): it splits a 1..48 GiB table at about 7 GiB.
 * 'first-fit' (lowest address that fits) is kept for comparison: `test/unit/manager/fb-placement.test.ts` shows a
 * sequence where first-fit strands room a big type needs and two-ended does not, and `strandedBytes()` measures it.
 */
import { ErrorCode, VgpuError } from '../contracts/exceptions.js';

export type PlacementStrategy = 'two-ended' | 'first-fit';

export interface Placement {
  /** Slot index of the first segment (the placement id). */
  readonly id: number;
  readonly slots: number;
  readonly owner: string;
}

export interface FreeRun {
  start: number;
  length: number;
}

export interface PlacementStats {
  totalSlots: number;
  usedSlots: number;
  freeSlots: number;
  largestFreeRun: number;
  placements: number;
}

export interface FbPlacementOptions {
  totalSlots: number;
  segmentSize: bigint;
  strategy?: PlacementStrategy;
  /** Requests of at least this many slots are "large" (placed high). Default: 1 (everything high = plain best fit). */
  largeSlots?: number;
}

export class FbPlacement {
  readonly totalSlots: number;
  readonly segmentSize: bigint;
  readonly strategy: PlacementStrategy;
  readonly largeSlots: number;
  /** Live placements by id, kept sorted on demand (a GPU has at most 32). */
  private readonly live = new Map<number, Placement>();

  constructor(opts: FbPlacementOptions) {
    if (!Number.isInteger(opts.totalSlots) || opts.totalSlots < 0) {
      throw new VgpuError(ErrorCode.InvalidArgument, `placement region of ${opts.totalSlots} slots`, { hint: 'pass a whole number of segments' });
    }
    this.totalSlots = opts.totalSlots;
    this.segmentSize = opts.segmentSize;
    this.strategy = opts.strategy ?? 'two-ended';
    this.largeSlots = Math.max(1, opts.largeSlots ?? 1);
  }

  /** Free runs, lowest first. */
  freeRuns(): FreeRun[] {
    const runs: FreeRun[] = [];
    let cursor = 0;
    for (const p of this.sorted()) {
      if (p.id > cursor) runs.push({ start: cursor, length: p.id - cursor });
      cursor = p.id + p.slots;
    }
    if (cursor < this.totalSlots) runs.push({ start: cursor, length: this.totalSlots - cursor });
    return runs;
  }

  /** Where a request of `slots` would go, without taking it; null when nothing fits. */
  find(slots: number): number | null {
    const fits = this.freeRuns().filter((r) => r.length >= slots);
    if (fits.length === 0 || slots <= 0) return null;
    if (this.strategy === 'first-fit') return fits[0]!.start;
    const large = slots >= this.largeSlots;
    let best = fits[0]!;
    for (const r of fits) {
      // Smallest run wins; on a tie small requests prefer the lowest run and large ones the highest.
      if (r.length < best.length || (r.length === best.length && large)) best = r;
    }
    return large ? best.start + best.length - slots : best.start;
  }

  canFit(slots: number): boolean {
    return this.find(slots) !== null;
  }

  /** Take `slots` slots for `owner`, at `at` when given (re-attach) or where the strategy puts them. */
  place(slots: number, owner: string, at?: number): Placement {
    if (!Number.isInteger(slots) || slots <= 0) {
      throw new VgpuError(ErrorCode.InvalidArgument, `cannot place ${slots} slots`, { hint: 'a vGPU needs at least one segment' });
    }
    const id = at ?? this.find(slots);
    if (id === null || !this.isFree(id, slots)) {
      const s = this.stats();
      throw new VgpuError(ErrorCode.NoSpace, at === undefined
        ? `no free run of ${slots} segments for ${owner} (free ${s.freeSlots}, largest run ${s.largestFreeRun})`
        : `segments ${at}..${at + slots - 1} are not free for ${owner}`, {
        hint: 'destroy a vGPU or choose a smaller type',
        details: { slots, at, ...s },
      });
    }
    const p: Placement = Object.freeze({ id, slots, owner });
    this.live.set(id, p);
    return p;
  }

  release(p: Placement): void {
    if (this.live.get(p.id) !== p) {
      throw new VgpuError(ErrorCode.InvalidArgument, `placement ${p.id} of ${p.owner} is not live`, {
        hint: 'release each placement once, with the object place() returned',
      });
    }
    this.live.delete(p.id);
  }

  list(): Placement[] {
    return this.sorted();
  }

  /** FB bytes of the region. */
  get regionBytes(): bigint {
    return BigInt(this.totalSlots) * this.segmentSize;
  }

  /** How many more vGPUs of `slots` segments fit, given the current holes. */
  fitCount(slots: number): number {
    if (slots <= 0) return 0;
    return this.freeRuns().reduce((n, r) => n + Math.floor(r.length / slots), 0);
  }

  /**
   * Free FB that cannot be used by vGPUs of `slots` segments: free bytes − (fitCount × slots × segment). With the
   * largest installed type this is the FB that fragmentation has taken from the biggest guests.
   */
  strandedBytes(slots: number): bigint {
    const free = this.stats().freeSlots;
    return BigInt(free - this.fitCount(slots) * slots) * this.segmentSize;
  }

  stats(): PlacementStats {
    const runs = this.freeRuns();
    const free = runs.reduce((n, r) => n + r.length, 0);
    return {
      totalSlots: this.totalSlots,
      usedSlots: this.totalSlots - free,
      freeSlots: free,
      largestFreeRun: runs.reduce((m, r) => Math.max(m, r.length), 0),
      placements: this.live.size,
    };
  }

  private isFree(id: number, slots: number): boolean {
    if (id < 0 || id + slots > this.totalSlots) return false;
    return this.freeRuns().some((r) => r.start <= id && id + slots <= r.start + r.length);
  }

  private sorted(): Placement[] {
    return [...this.live.values()].sort((a, b) => a.id - b.id);
  }
}
