/**
 * Room for management heaps below the guest-FB region: how many more reservations of a given size the FB
 * allocator would place there right now.
 *
 * The arithmetic mirrors what `FramebufferMemory.reserve({ size, below })` does with no `align` (memory contract):
 * the lowest free gap first, start rounded up to the 4 KiB page, the whole range ending at or below `below`. Keeping
 * this next to the manager (and not asking the allocator to try) lets `types` count instances without reserving
 * anything, and lets the create path refuse a heap that would not fit with the same arithmetic.
 */
import type { FbRange } from '../contracts/memory.js';

/** The FB page: the alignment of a reservation that names none (core/contracts/memory.ts). */
export const FB_PAGE = 4096n;

export interface HeapRoomQuery {
  /** Every live range of the FB (FramebufferMemory.list()). */
  ranges: readonly FbRange[];
  /** Reservations must end at or below this offset (the guest-FB region base). */
  below: bigint;
  /** Size of the reservation to count. */
  bytes: bigint;
  /**
   * Reservations already promised but not made yet (a selected VF's heap), placed first-fit in this order before
   * counting: room they will take is not room for `bytes`.
   */
  pending?: readonly bigint[];
  /**
   * Short-lived reservations (scrub semaphore pages) that must still find room once the counted ones are placed.
   * They are checked after, not placed before, the counted ones: a semaphore comes and goes, so modelling it as
   * sitting first-fit in the lowest hole would wrongly block a heap that hole can hold.
   */
  keepFree?: readonly bigint[];
  /**
   * Stop counting at this many (a yes/no check passes 1). The answer is min(the full count, atMost): the short-lived
   * reservations are all one page (PgpuManager.owedScratch), and pages that fit after k heaps also fit after fewer,
   * so giving back from k down finds the same first count that fits as giving back from the full count.
   */
  atMost?: number;
}

const alignUp = (v: bigint, a: bigint): bigint => ((v + a - 1n) / a) * a;

interface Gap { start: bigint; end: bigint }

/** Free gaps of the FB below `below`, lowest first, as [start, end). */
export function freeGapsBelow(ranges: readonly FbRange[], below: bigint): Gap[] {
  const sorted = [...ranges].sort((a, b) => (a.offset < b.offset ? -1 : a.offset > b.offset ? 1 : 0));
  const gaps: Gap[] = [];
  let cursor = 0n;
  for (const r of sorted) {
    if (r.offset >= below) break;
    if (r.offset > cursor) gaps.push({ start: cursor, end: r.offset });
    if (r.offset + r.size > cursor) cursor = r.offset + r.size;
  }
  if (below > cursor) gaps.push({ start: cursor, end: below });
  return gaps;
}

/** Take `bytes` first-fit (page aligned) from `gaps`; returns the gap and its start before, or null when none fits. */
function take(gaps: Gap[], bytes: bigint): { gap: Gap; was: bigint } | null {
  const gap = gaps.find((g) => alignUp(g.start, FB_PAGE) + bytes <= g.end);
  if (gap === undefined) return null;
  const was = gap.start;
  gap.start = alignUp(gap.start, FB_PAGE) + bytes;
  return { gap, was };
}

function allFit(gaps: readonly Gap[], sizes: readonly bigint[]): boolean {
  const size = sizes[0] ?? 0n;
  let same = size > 0n && size % FB_PAGE === 0n;
  for (let i = 1; same && i < sizes.length; i++) same = sizes[i] === size;
  if (same) {
    // Equal page-multiple sizes (the scratch pages, every time): first-fit puts floor(room / size) of them in each
    // gap, so count instead of placing them one by one (up to 32 BigInt placements per check, twice per create).
    let room = 0n;
    const need = BigInt(sizes.length);
    for (const g of gaps) {
      const start = alignUp(g.start, FB_PAGE);
      if (g.end > start) room += (g.end - start) / size;
      if (room >= need) return true;
    }
    return false;
  }
  const copy = gaps.map((g) => ({ ...g }));
  return sizes.every((s) => s <= 0n || take(copy, s) !== null);
}

/**
 * How many more page-aligned first-fit reservations of `bytes` fit below `below` (see HeapRoomQuery), at most
 * `atMost`; 0 for bytes ≤ 0.
 */
export function heapRoom(q: HeapRoomQuery): number {
  if (q.bytes <= 0n) return 0;
  const gaps = freeGapsBelow(q.ranges, q.below);
  // A pending reservation that fits nowhere will fail on its own and takes nothing.
  for (const p of q.pending ?? []) if (p > 0n) take(gaps, p);
  const placed: Array<{ gap: Gap; was: bigint }> = [];
  const limit = q.atMost ?? Infinity;
  for (let t = placed.length < limit ? take(gaps, q.bytes) : null; t !== null; t = placed.length < limit ? take(gaps, q.bytes) : null) placed.push(t);
  // Give back the last ones (first-fit fills in address order, so the last taken is undone exactly) until the
  // short-lived reservations fit again.
  const keep = q.keepFree ?? [];
  while (placed.length > 0 && !allFit(gaps, keep)) {
    const last = placed.pop()!;
    last.gap.start = last.was;
  }
  return placed.length;
}
