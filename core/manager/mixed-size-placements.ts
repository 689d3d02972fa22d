/**
 * NVIDIA's mixed-size (heterogeneous) mode placement table: for each vGPU type, the placement ids a vGPU of it may
 * start at when a GPU runs vGPUs of different FB sizes. Their count is the type's mixed-size maximum; it is lower
 * than the equal-size max_instance for the types whose max_instance is not a power of two (and, on Ada/Hopper
 * boards, for 1 GiB profiles that take a whole 1 GiB of guest FB).
 *
 * The rules are those of NVIDIA's kernel RM, which computes the table from the type records
 * (open-gpu-kernel-modules `src/nvidia/src/kernel/virtualization/kernel_vgpu_mgr.c`, `kvgpumgrSetSupportedPlacementIds`,
 * `_kvgpumgrSetHeterogeneousResources`, `_kvgpumgrIsPlacementValid`); the facts are restated in
 * docs/reference/vgpu-types.md ("Mixed-size mode"). In short:
 *   * placement slots are GiB: a type's placement size is its profile size in GiB; the region is the profile of a
 *     type with max_instance 1 (the whole board);
 *   * the region is halved recursively (1/1, 1/2 … 1/16); a type whose max_instance is 2·p (a power of two) gets one
 *     placement at the start and one at the end of every 1/p partition; a type whose max_instance is not a power of
 *     two gets prev_pow2(max_instance) placements, one per partition of that many, at the start of left halves and
 *     the end of right halves; a 1-instance type gets placement 0;
 *   * on GSP boards a type whose guest FB is exactly 1 GiB may not use placements 2, 3, 8, 9, … (a deny-list: its
 *     FB would overlap a neighbour's), which leaves 16 of the 32 placements of a 1 GiB type on a 48 GB board.
 * A vGPU occupies slots [id, id + placement size); a placement is creatable while that range overlaps no vGPU's.
 */

/** What the table needs to know of a type. */
export interface MixedSizeTypeInput {
  readonly id: number;
  /** Profile size in whole GiB (the N of -N<series>); 0 = the type takes no part (NVIDIA: MIG types). */
  readonly profileGiB: number;
  readonly maxInstance: number;
  /** True when the type's guest FB is exactly 1 GiB by NVIDIA's own arithmetic (see `nvidiaGuestFbIs1GiB`). */
  readonly guestFbIs1GiB: boolean;
}

export interface MixedSizeEntry {
  /** Slots (GiB) one vGPU of the type covers. */
  readonly placementSize: number;
  /** Its placement ids, in NVIDIA's order (the RM takes the first creatable one). */
  readonly ids: readonly number[];
}

export interface MixedSizeTable {
  /** Slots of the placement region (GiB of the board). */
  readonly regionSlots: number;
  readonly byType: ReadonlyMap<number, MixedSizeEntry>;
}

/** NVA081_MAX_VGPU_PER_PGPU: the recursion stops at 1/16 partitions (two vGPUs each). */
const MAX_VGPUS = 32;
/** `denyListAdaHopper` of `_kvgpumgrIsPlacementValid`: placements a 1 GiB-guest type may not take on GSP boards. */
const DENY_1GIB_GSP: ReadonlySet<number> = new Set([2, 3, 8, 9, 14, 15, 20, 21, 26, 27, 32, 33, 38, 39, 44, 45]);

const prevPow2 = (n: number): number => (n < 1 ? 0 : 2 ** Math.floor(Math.log2(n)));

/**
 * The mixed-size placement table of a type table, or null when the table has no 1-instance type to size the region
 * (NVIDIA's RM then defines no mixed-size placements; vgpud then treats the GPU as having no published mixed-size
 * rules and places by FB alone).
 */
export function mixedSizePlacements(types: readonly MixedSizeTypeInput[]): MixedSizeTable | null {
  const members = types.filter((t) => t.profileGiB > 0 && t.maxInstance >= 1);
  // NVIDIA's loop keeps the last 1-instance type's size; every 1-instance type of a board is the whole board.
  const whole = members.filter((t) => t.maxInstance === 1).at(-1);
  if (whole === undefined) return null;
  const ids = new Map<number, number[]>(members.map((t) => [t.id, []]));
  const allowed = (t: MixedSizeTypeInput, id: number): boolean => !(t.guestFbIs1GiB && DENY_1GIB_GSP.has(id));
  const walk = (lo: number, hi: number, parts: number, left: boolean): void => {
    if (parts > MAX_VGPUS / 2) return;
    for (const t of members) {
      const pow = prevPow2(t.maxInstance);
      let atStart = false;
      let atEnd = false;
      if (parts * 2 === t.maxInstance) {
        atStart = atEnd = true;
      } else if ((pow < t.maxInstance && pow === parts) || (parts === 1 && t.maxInstance === 1)) {
        atStart = left;
        atEnd = !left;
      }
      if (atStart && allowed(t, lo)) ids.get(t.id)!.push(lo);
      if (atEnd && allowed(t, hi - t.profileGiB)) ids.get(t.id)!.push(hi - t.profileGiB);
    }
    const mid = Math.floor((lo + hi) / 2);
    walk(lo, mid, parts * 2, true);
    walk(mid, hi, parts * 2, false);
  };
  walk(0, whole.profileGiB, 1, true);
  const byType = new Map<number, MixedSizeEntry>();
  for (const t of members) byType.set(t.id, Object.freeze({ placementSize: t.profileGiB, ids: Object.freeze(ids.get(t.id)!) }));
  return Object.freeze({ regionSlots: whole.profileGiB, byType });
}

const GiB = 1n << 30n;

/**
 * Whether NVIDIA's RM would give a type exactly 1 GiB of guest FB on a GSP board: its guest FB is
 * ALIGN_DOWN(min(fbLength, ALIGN_UP(total FB, 8 segments) / max_instance − fbReservation − gspHeapSize), segment).
 * NVIDIA's records carry fbLength = the profile (the L40-1B record of RFC v1 `vgpu_types.c`), so the profile stands
 * in for fbLength here; vgpud's own records place the heap inside the profile (docs/reference/vgpu-types.md) and
 * would never reach 1 GiB [inferred: the deny-list is applied as NVIDIA's records would trigger it].
 */
export function nvidiaGuestFbIs1GiB(t: { profileBytes: bigint; maxInstance: number; gspHeapSize: bigint; fbReservation: bigint }, totalFb: bigint, segmentSize: bigint): boolean {
  if (t.profileBytes !== GiB || t.maxInstance < 1 || segmentSize <= 0n) return false;
  const span = 8n * segmentSize;
  const perInstance = (((totalFb + span - 1n) / span) * span) / BigInt(t.maxInstance) - t.fbReservation - t.gspHeapSize;
  const guest = ((perInstance < t.profileBytes ? perInstance : t.profileBytes) / segmentSize) * segmentSize;
  return guest === GiB;
}

/** Whether slots [a, a + sa) and [b, b + sb) overlap. */
export function slotsOverlap(a: number, sa: number, b: number, sb: number): boolean {
  return a < b + sb && b < a + sa;
}
