/**
 * Which vGPU types each VF may take, and the bookkeeping of the types VFs have selected (one physical GPU).
 *
 * 'homogeneous' is the upstream RFC v2 behaviour (docs/reference/sysfs-abi.md), a strict form of NVIDIA's equal-size
 * mode: the first selection makes its type the GPU's active type; from then on only that type is creatable, until
 * `max_instance` selections exist; the active type clears when the last VF deselects. 'heterogeneous' is NVIDIA's
 * mixed-size mode (docs/reference/vgpu-types.md): mixed types, each bounded by its mixed-size maximum and placed at
 * one of its NVIDIA placements (core/manager/mixed-size-placements.ts) when the table has those rules; each
 * selection also takes guest-FB segments from an `FbPlacement` (vgpud's own FB placement).
 *
 * Both modes place every selection in the FB region (in homogeneous mode the slices simply pack), so the vGPU
 * lifecycle can reserve the guest FB at a known offset in either mode. A selection reserves its placement: what
 * `creatable` lists can really be created. The one exception is upstream's: with ECC on, homogeneous mode accepts an
 * ECC-incapable type (holding no FB) and its create fails with ENODEV (docs/reference/sysfs-abi.md).
 *
 * All methods are synchronous: a selection is checked and committed in one step, so two writers can never both
 * take the last slot. A refused call changes nothing.
 */
import { ErrorCode, VgpuError } from '../contracts/exceptions.js';
import type { VgpuTypeRecord } from '../metadata/metadata-file.js';
import { FbPlacement, type Placement, type PlacementStats, type PlacementStrategy } from './fb-placement.js';
import { guestFbBytes, segmentsFor, typeUsable, type FbSizeContext } from './fb-size.js';
import { mixedSizePlacements, nvidiaGuestFbIs1GiB, slotsOverlap, type MixedSizeEntry, type MixedSizeTable } from './mixed-size-placements.js';
import { VfAbiError } from './vf-abi-error.js';
import { nominalProfileBytes } from '../metadata/vgpu-info-record.js';

export type VgpuPolicy = 'homogeneous' | 'heterogeneous';

/** NVA081_MAX_VGPU_PER_PGPU. */
export const MAX_VGPUS_PER_PGPU = 32;

export interface TypeSelection {
  readonly vf: number;
  readonly type: VgpuTypeRecord;
  /** Guest FB bytes of this vGPU (ECC formula applied); 0 for a type that cannot run under the ECC setting. */
  readonly fbBytes: bigint;
  /** Its segments of the FB region; a detached zero-slot placement for a type that cannot run (see `select`). */
  readonly placement: Placement;
  /**
   * Heterogeneous (NVIDIA's mixed-size) mode on a table with NVIDIA's mixed-size rules: the NVIDIA placement id
   * (GiB slot, core/manager/mixed-size-placements.ts) this vGPU holds. Absent otherwise.
   */
  readonly mixedSlot?: number;
}

/** Placement id of a selection that holds no FB segments (an ECC-incapable type selected with ECC on). */
export const NO_PLACEMENT = -1;

export interface TypePolicyOptions {
  policy: VgpuPolicy;
  types: readonly VgpuTypeRecord[];
  fb: FbSizeContext;
  /** Most vGPUs at once: min(VF count, 32). */
  maxVgpus: number;
  /**
   * Upper bound on the guest-FB region in segments (what the GPU's free FB can hold). The region is what the type
   * table itself promises — the largest max_instance × segments over the types, so every type can reach its
   * max_instance on an empty GPU — clipped to this bound.
   */
  maxRegionSlots?: number;
  strategy?: PlacementStrategy;
}

export class TypePolicy {
  private policyName: VgpuPolicy;
  private installed: readonly VgpuTypeRecord[];
  private readonly fb: FbSizeContext;
  readonly maxVgpus: number;
  private placement: FbPlacement;
  /** NVIDIA's mixed-size placement table of the installed types (null: the table has none, placement is by FB). */
  private mixed: MixedSizeTable | null;
  private readonly strategy: PlacementStrategy | undefined;
  private readonly regionCap: number | undefined;
  private readonly byVf = new Map<number, TypeSelection>();
  /** Set while a metadata reload is in flight: selections wait for it (EBUSY) instead of racing it. */
  private frozenFor: string | null = null;
  /** How many more management heaps of a type fit now (the manager's count); unset = heaps are not checked. */
  private heapRoom: ((type: VgpuTypeRecord) => number) | undefined;
  /** How many more CHID runs of a type fit now (the manager's count); unset = CHIDs are not checked. */
  private chidRoom: ((type: VgpuTypeRecord) => number) | undefined;

  constructor(opts: TypePolicyOptions) {
    this.policyName = opts.policy;
    this.installed = Object.freeze([...opts.types]);
    this.fb = opts.fb;
    this.maxVgpus = Math.min(opts.maxVgpus, MAX_VGPUS_PER_PGPU);
    this.strategy = opts.strategy;
    this.regionCap = opts.maxRegionSlots;
    this.placement = this.makePlacement(this.installed);
    this.mixed = this.mixedTableFor(this.installed);
  }

  get policy(): VgpuPolicy {
    return this.policyName;
  }

  /**
   * Also require room for one more management heap of the type before listing it as creatable or selecting it.
   * The manager installs its own count here (PgpuManager.heapRoomFor), the same one its create path checks, so
   * what `creatable` lists and what `types` counts can really get a heap.
   */
  useHeapRoom(count: (type: VgpuTypeRecord) => number): void {
    this.heapRoom = count;
  }

  /**
   * Also require room for one more CHID run of the type (PgpuManager.chidRoomFor, the count the create path checks).
   * Checked last: when several limits bind, the refusal names the one an operator acts on first — the type's
   * instance cap, then FB, then CHIDs.
   */
  useChidRoom(count: (type: VgpuTypeRecord) => number): void {
    this.chidRoom = count;
  }

  /** Switch policy; only while no VF has a type (a mixed set could not be expressed in homogeneous mode). */
  setPolicy(policy: VgpuPolicy): void {
    if (policy === this.policyName) return;
    if (this.byVf.size > 0) {
      throw new VgpuError(ErrorCode.Busy, `cannot switch to ${policy} mode: ${this.byVf.size} VF(s) have a vGPU type selected`, {
        hint: 'deselect every VF (write 0 to current_vgpu_type) first',
        details: { policy, selected: [...this.byVf.keys()] },
      });
    }
    this.policyName = policy;
  }

  get types(): readonly VgpuTypeRecord[] {
    return this.installed;
  }

  typeById(id: number): VgpuTypeRecord | undefined {
    return this.installed.find((t) => t.id === id);
  }

  fbSizeContext(): Readonly<FbSizeContext> {
    return this.fb;
  }

  /** Guest-FB bytes a vGPU of this type gets (throws ENODEV for an ECC-incapable type with ECC on). */
  fbBytesFor(type: VgpuTypeRecord): bigint {
    return guestFbBytes(type, this.fb);
  }

  /** False for a type without ECC support while ECC is on: it can be selected (homogeneous) but not created. */
  isUsable(type: VgpuTypeRecord): boolean {
    return typeUsable(type, this.fb);
  }

  /** The active type in homogeneous mode (null when none is selected, and always null in heterogeneous mode). */
  activeType(): VgpuTypeRecord | null {
    if (this.policyName !== 'homogeneous') return null;
    const first = this.byVf.values().next();
    return first.done ? null : first.value.type;
  }

  countOf(typeId: number): number {
    let n = 0;
    for (const s of this.byVf.values()) if (s.type.id === typeId) n++;
    return n;
  }

  /**
   * The type's maximum in NVIDIA's mixed-size (heterogeneous) mode: the number of its mixed-size placements
   * (core/manager/mixed-size-placements.ts). Undefined when the type table has no mixed-size rules (no 1-instance
   * type sizes the region), where heterogeneous mode is bounded by max_instance and FB alone.
   */
  maxInstanceMixed(type: VgpuTypeRecord): number | undefined {
    return this.mixed?.byType.get(type.id)?.ids.length;
  }

  selectionOf(vf: number): TypeSelection | undefined {
    return this.byVf.get(vf);
  }

  selections(): TypeSelection[] {
    return [...this.byVf.values()].sort((a, b) => a.vf - b.vf);
  }

  /**
   * Types a VF without a selection could take AND run now; [] if the VF already has one. In installed order. An
   * ECC-incapable type with ECC on is left out (its vGPU cannot be created); creatable_vgpu_types still prints it on
   * an empty homogeneous GPU, as upstream does (VfTypeAbi.readCreatable).
   */
  creatable(vf: number): VgpuTypeRecord[] {
    return this.selectable(vf).filter((t) => typeUsable(t, this.fb));
  }

  /** Types `select` would take for a VF without a selection now (an ECC-incapable one included in homogeneous mode). */
  selectable(vf: number): VgpuTypeRecord[] {
    if (this.byVf.has(vf) || this.byVf.size >= this.maxVgpus) return [];
    return this.installed.filter((t) => this.refusal(t) === null);
  }

  /**
   * Give VF `vf` the type `typeId`. Idempotent for the same type (the upstream driver counts a re-write twice —
   * docs/reference/sysfs-abi.md — which later lets the GPU believe it is full or go negative on deselect; here a
   * re-write of the same type changes nothing). A different type while the VF has one is EINVAL: deselect first.
   */
  select(vf: number, typeId: number, opts: { placementAt?: number; mixedAt?: number } = {}): TypeSelection {
    this.assertNotFrozen();
    const type = this.typeById(typeId);
    if (type === undefined) {
      throw new VfAbiError('ENODEV', `vGPU type ${typeId} is not installed on this GPU`, {
        hint: 'read creatable_vgpu_types for the ids this GPU offers', details: { vf, typeId },
      });
    }
    const current = this.byVf.get(vf);
    if (current !== undefined) {
      if (current.type.id === typeId) return current;
      throw new VfAbiError('EINVAL', `VF ${vf} already has vGPU type ${current.type.id}; it cannot also take ${typeId}`, {
        hint: 'write 0 to current_vgpu_type to deselect, then write the new type', details: { vf, typeId, current: current.type.id },
      });
    }
    // A restore (placementAt) re-takes what a running vGPU already holds, its heap included: no room check for it.
    const why = this.refusal(type, { heap: opts.placementAt === undefined });
    if (why !== null) throw why;
    if (!typeUsable(type, this.fb)) {
      // Homogeneous mode takes an ECC-incapable type as upstream does (it only counts the instance); it holds no FB,
      // and creating its vGPU fails with ENODEV, where upstream's setup_fbmem_heap fails it.
      const sel: TypeSelection = Object.freeze({ vf, type, fbBytes: 0n, placement: Object.freeze({ id: NO_PLACEMENT, slots: 0, owner: `vf${vf}` }) });
      this.byVf.set(vf, sel);
      return sel;
    }
    const fbBytes = guestFbBytes(type, this.fb);
    // `placementAt` re-takes the slot a selection had before a daemon restart (the running vGPU's FB is there).
    const placement = this.placement.place(segmentsFor(fbBytes, this.fb.segmentSize), `vf${vf}`, opts.placementAt);
    // A restore re-takes the NVIDIA placement its firmware task was told (`mixedAt`) while that one is free, else the
    // first free one; it keeps its vGPU even when none is free (it holds its FB, the slots are bookkeeping).
    const free = this.mixedEntry(type) !== undefined ? this.freeMixedSlots(type) : [];
    const mixedSlot = opts.mixedAt !== undefined && free.includes(opts.mixedAt) ? opts.mixedAt : free[0];
    const sel: TypeSelection = Object.freeze({ vf, type, fbBytes, placement, ...(mixedSlot !== undefined ? { mixedSlot } : {}) });
    this.byVf.set(vf, sel);
    return sel;
  }

  /** Drop the VF's type (no-op when it has none: unlike upstream, the instance count cannot go negative). */
  deselect(vf: number): void {
    this.assertNotFrozen();
    const sel = this.byVf.get(vf);
    if (sel === undefined) return;
    if (sel.placement.slots > 0) this.placement.release(sel.placement);
    this.byVf.delete(vf);
  }

  /** How many more vGPUs of `type` the FB region can place now, holes counted (VF and instance limits aside). */
  fitCount(type: VgpuTypeRecord): number {
    if (!typeUsable(type, this.fb)) return 0;
    const byFb = this.placement.fitCount(this.slotsOf(type));
    // Mixed-size mode: also the type's free NVIDIA placements (those of one type never overlap each other).
    return this.mixedEntry(type) !== undefined ? Math.min(byFb, this.freeMixedSlots(type).length) : byFb;
  }

  placementStats(): PlacementStats & { regionBytes: bigint; largeSlots: number } {
    return { ...this.placement.stats(), regionBytes: this.placement.regionBytes, largeSlots: this.placement.largeSlots };
  }

  /** Segments of the guest FB region. */
  get regionSlots(): number {
    return this.placement.totalSlots;
  }

  /** FB bytes of free space no vGPU of the largest installed (usable) type can use; see FbPlacement. */
  strandedBytes(type?: VgpuTypeRecord): bigint {
    const t = type ?? this.largestType();
    if (t === undefined) return 0n;
    return this.placement.strandedBytes(this.slotsOf(t));
  }

  /**
   * Check that `types` can replace the installed table without invalidating a selection: every selected type
   * must still exist with the same id, FB size, heap size and ECC capability, keep its count within the new
   * max_instance, and keep its placement inside the new region. Returns null when fine, else the reason.
   */
  checkReplacement(types: readonly VgpuTypeRecord[]): string | null {
    for (const sel of this.selections()) {
      const t = types.find((n) => n.id === sel.type.id);
      const name = `${sel.type.id} (${sel.type.name})`;
      if (t === undefined) return `type ${name} is selected on VF ${sel.vf} but missing from the new metadata`;
      if (sel.placement.slots === 0) {
        // A selection that holds no FB (ECC-incapable with ECC on) stays valid while it stays that way.
        if (typeUsable(t, this.fb)) return `type ${name} is selected on VF ${sel.vf} without FB and gains ECC support; deselect it first`;
        if (this.countOf(t.id) > t.maxInstance) return `type ${name} has ${this.countOf(t.id)} selections but the new max_instance is ${t.maxInstance}`;
        continue;
      }
      if (t.fbLength !== sel.type.fbLength) return `type ${name} is selected on VF ${sel.vf} and its FB size changes (${sel.type.fbLength} → ${t.fbLength})`;
      if (t.gspHeapSize !== sel.type.gspHeapSize) return `type ${name} is selected on VF ${sel.vf} and its GSP heap changes (${sel.type.gspHeapSize} → ${t.gspHeapSize})`;
      if (!typeUsable(t, this.fb)) return `type ${name} is selected on VF ${sel.vf} and loses ECC support while ECC is on`;
      if (guestFbBytes(t, this.fb) !== sel.fbBytes) return `type ${name} is selected on VF ${sel.vf} and its ECC-adjusted FB size changes`;
      if (this.countOf(t.id) > t.maxInstance) return `type ${name} has ${this.countOf(t.id)} selections but the new max_instance is ${t.maxInstance}`;
      const mixedMax = this.policyName === 'heterogeneous' ? this.mixedTableFor(types)?.byType.get(t.id)?.ids.length : undefined;
      if (mixedMax !== undefined && this.countOf(t.id) > mixedMax) return `type ${name} has ${this.countOf(t.id)} selections but its new mixed-size maximum is ${mixedMax}`;
    }
    const region = this.regionFor(types);
    for (const p of this.placement.list()) {
      if (p.id + p.slots > region) return `placement ${p.id} of ${p.owner} lies outside the new FB region of ${region} segments`;
    }
    return null;
  }

  /** Swap in a new type table (call `checkReplacement` first; this re-checks and throws EBUSY on a conflict). */
  replaceTypes(types: readonly VgpuTypeRecord[]): void {
    const why = this.checkReplacement(types);
    if (why !== null) {
      throw new VgpuError(ErrorCode.Busy, `metadata reload refused: ${why}`, {
        hint: 'destroy and deselect the vGPUs of that type first, or load metadata that keeps the type unchanged',
      });
    }
    const next = this.makePlacement(types);
    const rebound = new Map<number, TypeSelection>();
    for (const sel of this.selections()) {
      const t = types.find((n) => n.id === sel.type.id)!;
      const p = sel.placement.slots === 0 ? sel.placement : next.place(sel.placement.slots, sel.placement.owner, sel.placement.id);
      rebound.set(sel.vf, { ...sel, type: t, placement: p });
    }
    this.installed = Object.freeze([...types]);
    this.placement = next;
    this.mixed = this.mixedTableFor(types);
    this.byVf.clear();
    // NVIDIA's slots over the new table: each vGPU keeps the one its firmware task was told while the new table
    // still has it free, else takes the first free one (as the RM picks); in VF order.
    for (const [vf, s] of rebound) {
      const { mixedSlot: old, ...rest } = s;
      const free = s.placement.slots > 0 && this.mixedEntry(s.type) !== undefined ? this.freeMixedSlots(s.type) : [];
      const slot = old !== undefined && free.includes(old) ? old : free[0];
      this.byVf.set(vf, Object.freeze({ ...rest, ...(slot !== undefined ? { mixedSlot: slot } : {}) }));
    }
  }

  /** Block selection changes (EBUSY) while `reason` is in progress; returns the unfreeze function. */
  freeze(reason: string): () => void {
    if (this.frozenFor !== null) {
      throw new VgpuError(ErrorCode.Busy, `${reason}: ${this.frozenFor} is already in progress`, { hint: 'retry when it finishes' });
    }
    this.frozenFor = reason;
    return () => { this.frozenFor = null; };
  }

  // -------------------------------------------------------------------------------------------------------------

  /** Why `type` cannot be selected on a free VF now (null = it can). */
  private refusal(type: VgpuTypeRecord, check: { heap: boolean } = { heap: true }): VgpuError | null {
    const usable = typeUsable(type, this.fb);
    if (!usable && this.policyName !== 'homogeneous') {
      // Heterogeneous mode (this project's extension) places FB at selection, which such a type cannot get.
      return new VfAbiError('ENODEV', `vGPU type ${type.id} (${type.name}) does not support ECC, and ECC is enabled`, {
        hint: 'pick a type with ECC support, or disable ECC', details: { typeId: type.id },
      });
    }
    if (this.byVf.size >= this.maxVgpus) {
      return new VfAbiError('ENOSPC', `this GPU already has ${this.byVf.size} vGPUs, its maximum`, {
        hint: 'deselect a VF first', details: { max: this.maxVgpus },
      });
    }
    const active = this.activeType();
    if (active !== null && active.id !== type.id) {
      return new VfAbiError('EINVAL', `homogeneous mode: this GPU runs type ${active.id} (${active.name}); type ${type.id} cannot be mixed in`, {
        hint: 'choose the active type, deselect every VF first, or switch the GPU to the heterogeneous policy',
        details: { typeId: type.id, active: active.id },
      });
    }
    const count = this.countOf(type.id);
    // Mixed-size mode under NVIDIA's rules: its maximum (never above max_instance) and its placements come first.
    // A restore (no heap check) re-takes a running vGPU: only the count binds it, its slot is re-taken if free.
    const mixedWhy = usable ? this.mixedRefusal(type, count, { slots: check.heap }) : null;
    if (mixedWhy !== null) return mixedWhy;
    if (count >= type.maxInstance) {
      return new VfAbiError('ENOSPC', `type ${type.id} (${type.name}) already has ${count} of at most ${type.maxInstance} instances`, {
        hint: 'deselect a VF of this type, or choose a smaller type', details: { typeId: type.id, count, max: type.maxInstance },
      });
    }
    if (!usable) return null;
    if (!this.placement.canFit(this.slotsOf(type))) {
      const s = this.placement.stats();
      return new VfAbiError('ENOSPC', `no room for type ${type.id} (${type.name}): needs ${this.slotsOf(type)} contiguous segments, largest free run is ${s.largestFreeRun}`, {
        hint: 'choose a smaller type or deselect a VF', details: { typeId: type.id, ...s },
      });
    }
    if (check.heap && this.heapRoom !== undefined && this.heapRoom(type) < 1) {
      // A mix of many small types can need more heap FB than the manager set aside below the guest-FB region
      // (it budgets for the largest homogeneous fill); refusing here beats a create that fails at its heap step.
      return new VfAbiError('ENOSPC', `no room for the ${type.gspHeapSize}-byte management heap of type ${type.id} (${type.name}) below the guest-FB region`, {
        hint: 'choose a type with a smaller heap, or destroy or deselect a vGPU', details: { typeId: type.id, heapBytes: String(type.gspHeapSize) },
      });
    }
    if (check.heap && this.chidRoom !== undefined && this.chidRoom(type) < 1) {
      // CHIDs go in contiguous runs sized by the type: a mix can leave enough free IDs in total but no run long
      // enough (a restore re-takes its own run, hence the same exemption as the heap).
      return new VfAbiError('ENOSPC', `no run of free CHIDs long enough for type ${type.id} (${type.name})`, {
        hint: 'destroy a vGPU of another type to free a longer CHID run, or choose a type with more instances (fewer CHIDs each)',
        details: { typeId: type.id },
      });
    }
    return null;
  }

  /**
   * NVIDIA's mixed-size rules (heterogeneous mode on a table that has them): the type's mixed-size maximum, then a
   * free placement of the type — one whose GiB slots overlap no vGPU's.
   */
  private mixedRefusal(type: VgpuTypeRecord, count: number, check: { slots: boolean }): VgpuError | null {
    const entry = this.mixedEntry(type);
    if (entry === undefined) return null;
    const max = entry.ids.length;
    if (count >= max) {
      const equal = max < type.maxInstance ? `; equal-size mode allows ${type.maxInstance}` : '';
      return new VfAbiError('ENOSPC', `mixed-size (heterogeneous) mode allows at most ${max} vGPUs of type ${type.id} (${type.name}) per GPU, and ${count} exist${equal}`, {
        hint: max < type.maxInstance
          ? `choose another size, or for up to ${type.maxInstance} put the GPU in equal-size mode (policy homogeneous: deselect every VF, then set the policy) and use only this type`
          : 'deselect a VF of this type, or choose another size',
        details: { typeId: type.id, count, mode: 'mixed-size', maxMixed: max, maxEqual: type.maxInstance },
      });
    }
    if (check.slots && this.freeMixedSlots(type).length === 0) {
      const held = this.selections().filter((s) => s.mixedSlot !== undefined).map((s) => `${s.type.name.replace(/^NVIDIA /, '')}@${s.mixedSlot}`);
      return new VfAbiError('ENOSPC', `mixed-size (heterogeneous) mode: every placement of type ${type.id} (${type.name}) — GiB slots ${entry.ids.join(', ')}, ${entry.placementSize} wide — overlaps a vGPU (${held.join(', ')})`, {
        hint: 'destroy and deselect a vGPU that holds one of these slots, or choose another size',
        details: { typeId: type.id, mode: 'mixed-size', placementIds: [...entry.ids], placementSize: entry.placementSize },
      });
    }
    return null;
  }

  /** The type's mixed-size entry when NVIDIA's mixed-size rules apply now (heterogeneous mode, table has them). */
  private mixedEntry(type: VgpuTypeRecord): MixedSizeEntry | undefined {
    return this.policyName === 'heterogeneous' ? this.mixed?.byType.get(type.id) : undefined;
  }

  /** The type's mixed-size placements no selected vGPU overlaps, in NVIDIA's order. */
  private freeMixedSlots(type: VgpuTypeRecord): number[] {
    const entry = this.mixedEntry(type);
    if (entry === undefined) return [];
    const held: Array<[number, number]> = [];
    for (const s of this.byVf.values()) {
      const e = s.mixedSlot === undefined ? undefined : this.mixed?.byType.get(s.type.id);
      if (e !== undefined) held.push([s.mixedSlot!, e.placementSize]);
    }
    // Plain loops: this runs twice per select (so per create), and a closure per placement id cost more than the test.
    const free: number[] = [];
    for (const id of entry.ids) {
      let clear = true;
      for (const [at, size] of held) if (slotsOverlap(id, entry.placementSize, at, size)) { clear = false; break; }
      if (clear) free.push(id);
    }
    return free;
  }

  private mixedTableFor(types: readonly VgpuTypeRecord[]): MixedSizeTable | null {
    return mixedSizePlacements(types.map((t) => {
      const profileBytes = nominalProfileBytes(t.name) ?? 0n;
      return {
        id: t.id, profileGiB: Number(profileBytes >> 30n), maxInstance: t.maxInstance,
        guestFbIs1GiB: nvidiaGuestFbIs1GiB({ ...t, profileBytes }, this.fb.totalFb, this.fb.segmentSize),
      };
    }));
  }

  private slotsOf(type: VgpuTypeRecord): number {
    return segmentsFor(guestFbBytes(type, this.fb), this.fb.segmentSize);
  }

  private usable(types: readonly VgpuTypeRecord[]): VgpuTypeRecord[] {
    return types.filter((t) => typeUsable(t, this.fb));
  }

  private largestType(): VgpuTypeRecord | undefined {
    let best: VgpuTypeRecord | undefined;
    for (const t of this.usable(this.installed)) if (best === undefined || this.slotsOf(t) > this.slotsOf(best)) best = t;
    return best;
  }

  private regionFor(types: readonly VgpuTypeRecord[]): number {
    const promised = this.usable(types).reduce((m, t) => Math.max(m, t.maxInstance * this.slotsOf(t)), 0);
    return this.regionCap === undefined ? promised : Math.min(promised, this.regionCap);
  }

  private makePlacement(types: readonly VgpuTypeRecord[]): FbPlacement {
    const sizes = this.usable(types).map((t) => this.slotsOf(t));
    const lo = sizes.length ? Math.min(...sizes) : 1;
    const hi = sizes.length ? Math.max(...sizes) : 1;
    return new FbPlacement({
      totalSlots: this.regionFor(types),
      segmentSize: this.fb.segmentSize,
      ...(this.strategy !== undefined ? { strategy: this.strategy } : {}),
      largeSlots: Math.max(1, Math.round(Math.sqrt(lo * hi))),
    });
  }

  private assertNotFrozen(): void {
    if (this.frozenFor !== null) {
      throw new VfAbiError('EBUSY', `vGPU type selection is paused: ${this.frozenFor} is in progress`, { hint: 'retry in a moment' });
    }
  }
}
