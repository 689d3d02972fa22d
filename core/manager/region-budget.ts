/**
 * Guest-FB region arithmetic of one GPU, in one place: the manager's bring-up (`PgpuManager.create`, step fb-region)
 * sizes its region with it, and the catalogue build (`metadata/compile-catalog.ts`) refuses a type table that it says
 * cannot reach max_instance. Two copies of this arithmetic drifted once (the catalogue rounded guest FB to 32 MiB
 * while the manager places 64 MiB segments, so RTX6000-Ada-3Q offered 15 of 16 on an empty GPU); keep it single.
 *
 * The layout of a free FB gap [start, end): management heaps and scratch pages at the bottom (the first-fit FB
 * allocator hands those out from low addresses), then the guest-FB region in whole VMMU segments up to the
 * segment-aligned top of the gap.
 */
import type { VgpuTypeRecord } from '../metadata/metadata-file.js';
import { guestFbBytes, segmentsFor, typeUsable, type FbSizeContext } from './fb-size.js';
import { FB_PAGE } from './heap-room.js';

export { MAX_VGPUS_PER_PGPU } from './type-policy.js';

type HeapFields = Pick<VgpuTypeRecord, 'maxInstance' | 'gspHeapSize' | 'eccSupported'>;

/** Worst-case management-heap FB in the homogeneous fills the table promises: max over usable types of max_instance × heap. */
export function heapBudget(types: readonly HeapFields[], ctx: { eccEnabled: boolean }): bigint {
  let m = 0n;
  for (const t of types) {
    if (ctx.eccEnabled && !t.eccSupported) continue;
    const need = BigInt(t.maxInstance) * t.gspHeapSize;
    if (need > m) m = need;
  }
  return m;
}

/** FB the manager sets aside below the region: the heap budget plus one scrub scratch page per possible vGPU. */
export function belowRegionBytes(types: readonly HeapFields[], ctx: { eccEnabled: boolean; scratchPages: number }): bigint {
  return heapBudget(types, ctx) + BigInt(ctx.scratchPages) * FB_PAGE;
}

/**
 * The region a free gap [start, end) can hold once `below` bytes are left at its bottom: `top` is the
 * segment-aligned end of the gap, `slots` the whole segments between the (segment-aligned) end of `below` and `top`.
 */
export function regionIn(start: bigint, end: bigint, segmentSize: bigint, below: bigint): { top: bigint; slots: number } {
  const top = (end / segmentSize) * segmentSize;
  const bottom = ((start + below + segmentSize - 1n) / segmentSize) * segmentSize;
  return { top, slots: top > bottom ? Number((top - bottom) / segmentSize) : 0 };
}

export interface HomogeneousFit {
  readonly type: VgpuTypeRecord;
  /** Whole segments one vGPU of the type takes. */
  readonly slotsEach: number;
  /** max_instance × slotsEach. */
  readonly slotsNeeded: number;
  /** Segments of the region the free FB gives. */
  readonly regionSlots: number;
  /** Bytes left below the region for heaps and scratch pages. */
  readonly belowBytes: bigint;
  readonly fits: boolean;
}

export interface HomogeneousFitQuery {
  types: readonly VgpuTypeRecord[];
  fb: FbSizeContext;
  /** Free FB the manager finds (one gap starting at offset 0). */
  freeBytes: bigint;
  /** Scratch pages set aside (the manager uses min(VFs, 32)). */
  scratchPages: number;
}

/**
 * For every usable type: can an empty GPU with `freeBytes` of free FB take max_instance vGPUs of it, each with its
 * management heap? The region holds them when max_instance × segments ≤ its slots; the heaps then fit too, since
 * the room below the region is the largest max_instance × heap of the table. Unusable types (ECC) are left out.
 */
export function homogeneousFits(q: HomogeneousFitQuery): HomogeneousFit[] {
  const below = belowRegionBytes(q.types, { eccEnabled: q.fb.eccEnabled, scratchPages: q.scratchPages });
  const { slots: regionSlots } = regionIn(0n, q.freeBytes, q.fb.segmentSize, below);
  return q.types.filter((t) => typeUsable(t, q.fb)).map((type) => {
    const slotsEach = segmentsFor(guestFbBytes(type, q.fb), q.fb.segmentSize);
    const slotsNeeded = type.maxInstance * slotsEach;
    return Object.freeze({ type, slotsEach, slotsNeeded, regionSlots, belowBytes: below, fits: slotsNeeded <= regionSlots });
  });
}
