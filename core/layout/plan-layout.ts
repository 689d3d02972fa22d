/**
 * The difference between what is on the GPUs and what a layout asks for, as a plan of destroys and creates per
 * GPU. Pure: it reads a snapshot and decides.
 *
 * Unlike vgpu-device-manager, which deletes every vGPU on a GPU and creates the layout from scratch whenever the
 * GPU differs at all (pkg/vgpu/config.go SetVGPUConfig), a plan keeps every vGPU the layout still wants, and marks
 * a destroy of an in-use vGPU as blocked (apply refuses it unless forced).
 */
import type { VgpuInfo } from '../contracts/vgpu-service.js';
import type { DesiredLayout } from './expand-layout.js';
import type { LayoutSnapshot } from './layout-snapshot.js';

export interface PlannedCreate { gpu: string; typeId: number; typeName: string }
/** `inUse` false also where the backend cannot tell (sysfs: the kernel refuses a busy VF with EBUSY instead). */
export interface PlannedDestroy { gpu: string; id: string; vf: number; typeId: number; typeName: string; inUse: boolean }

export interface GpuPlan {
  gpu: string;
  destroy: PlannedDestroy[];
  create: PlannedCreate[];
}

export interface LayoutPlan {
  gpus: GpuPlan[];
  /** Number of destroys plus creates; 0 = the layout is already applied. */
  changes: number;
  /** Destroys of in-use vGPUs: apply refuses them without `force`. */
  blocked: PlannedDestroy[];
  /** How the entries applied (see expandLayout), shown with the plan. */
  notes: string[];
}

export function planLayout(snap: LayoutSnapshot, desired: DesiredLayout, notes: readonly string[] = []): LayoutPlan {
  const gpus: GpuPlan[] = [];
  const blocked: PlannedDestroy[] = [];
  let changes = 0;
  for (const [gpu, counts] of desired) {
    const catalogue = snap.types.get(gpu) ?? [];
    // vGPUs that are on their way out already are neither kept nor destroyed again.
    const live = snap.vgpus.filter((v) => v.gpu === gpu && v.state !== 'destroyed' && v.state !== 'stopping');
    const byType = new Map<number, VgpuInfo[]>();
    for (const v of live) byType.set(v.typeId, [...(byType.get(v.typeId) ?? []), v]);
    const destroy: PlannedDestroy[] = [];
    const create: PlannedCreate[] = [];
    const typeIds = new Set([...byType.keys(), ...counts.keys()]);
    for (const typeId of [...typeIds].sort((a, b) => a - b)) {
      const have = byType.get(typeId) ?? [];
      const want = counts.get(typeId) ?? 0;
      if (have.length > want) {
        // Destroy the least valuable first: failed ones, then idle ones, newest first; in-use ones last.
        const rank = (v: VgpuInfo): number => (v.state === 'failed' || v.state === 'lost' ? 0 : v.inUse === true ? 2 : 1);
        const victims = [...have].sort((a, b) => rank(a) - rank(b) || b.createdAt - a.createdAt).slice(0, have.length - want);
        for (const v of victims) {
          const d = { gpu, id: v.id, vf: v.vf, typeId, typeName: v.typeName, inUse: v.inUse === true };
          destroy.push(d);
          if (v.inUse) blocked.push(d);
        }
      } else {
        // `want` was checked against the type's max instances (expandLayout), so this loop is bounded by it.
        const name = catalogue.find((t) => t.id === typeId)?.name ?? have[0]?.typeName ?? String(typeId);
        for (let i = have.length; i < want; i++) create.push({ gpu, typeId, typeName: name });
      }
    }
    changes += destroy.length + create.length;
    gpus.push({ gpu, destroy, create });
  }
  return { gpus, changes, blocked, notes: [...notes] };
}
