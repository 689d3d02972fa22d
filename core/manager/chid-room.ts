/**
 * CHIDs per vGPU and room for more CHID runs: how many more contiguous runs of a type's CHID count the pool would
 * hand out right now. The arithmetic mirrors the pool's placement (core/alloc/id-range-allocator.ts: first fit from
 * 0), so `types`, `creatable_vgpu_types` and the create path count CHIDs the same way they count FB and heaps.
 */
import type { ChannelRange } from '../contracts/channels.js';

/** prev_pow2(n) for n ≥ 1. */
export function prevPow2(n: number): number {
  if (n < 1) return 0;
  // Bit arithmetic for the counts a GPU has (it runs several times per select and create); floats beyond 2^31.
  return n < 0x8000_0000 ? 2 ** (31 - Math.clz32(n)) : 2 ** Math.floor(Math.log2(n));
}

/** CHIDs per vGPU: prev_pow2(total / max_instance), as the upstream vGPU manager sizes them (2048 / 32 = 64). */
export function chidsPerVgpu(totalChids: number, maxInstance: number): number {
  return prevPow2(Math.floor(totalChids / maxInstance));
}

interface Gap { start: number; end: number }

function freeGaps(total: number, ranges: readonly ChannelRange[]): Gap[] {
  const sorted = [...ranges].sort((a, b) => a.offset - b.offset);
  const gaps: Gap[] = [];
  let cursor = 0;
  for (const r of sorted) {
    if (r.offset > cursor) gaps.push({ start: cursor, end: r.offset });
    cursor = Math.max(cursor, r.offset + r.count);
  }
  if (total > cursor) gaps.push({ start: cursor, end: total });
  return gaps;
}

function take(gaps: Gap[], count: number): boolean {
  const g = gaps.find((x) => x.end - x.start >= count);
  if (g === undefined) return false;
  g.start += count;
  return true;
}

/**
 * How many more first-fit runs of `count` CHIDs fit in a pool of `total` holding `ranges`, after the runs still
 * owed to selected VFs (`pending`, placed first in this order) are taken; at most `atMost` (a yes/no check passes 1
 * and stops at the first run found). 0 for count ≤ 0.
 */
export function chidRoom(q: { total: number; ranges: readonly ChannelRange[]; count: number; pending?: readonly number[]; atMost?: number }): number {
  if (q.count <= 0) return 0;
  const gaps = freeGaps(q.total, q.ranges);
  for (const p of q.pending ?? []) if (p > 0) take(gaps, p);
  const limit = q.atMost ?? Infinity;
  let n = 0;
  while (n < limit && take(gaps, q.count)) n++;
  return n;
}
