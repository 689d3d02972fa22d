/**
 * The difference between what is on the GPUs and what a layout asks for, as a plan of destroys and creates per
 * GPU. Pure: it reads snapshots and decides, so `--dry-run`, `assert` and `apply` all show the same plan.
 *
 * Unlike vgpu-device-manager, which deletes every vGPU on a GPU and creates the layout from scratch, a plan keeps
 * every vGPU the layout still wants, and marks a destroy of an in-use vGPU as blocked (apply refuses it unless
 * forced). Type names must match exactly (full or without the "NVIDIA " prefix, or the numeric id): no suffix
 * stripping, so a layout can never silently get a different type (vgpu-device-manager #212).
 */
import { ErrorCode, VgpuError } from '../../../core/contracts/exceptions.js';
import type { GpuSummary, VgpuInfo, VgpuTypeInfo } from '../../../core/contracts/vgpu-service.js';
import type { LayoutEntry } from './layout-schema.js';

export interface LayoutSnapshot {
  gpus: GpuSummary[];
  vgpus: VgpuInfo[];
  /** Every type each GPU supports (`types(gpu, {all: true})`). */
  types: Map<string, VgpuTypeInfo[]>;
}

/** Desired vGPU count per type id, per GPU BDF. GPUs absent from the map are left alone. */
export type DesiredLayout = Map<string, Map<number, number>>;

export interface PlannedCreate { gpu: string; typeId: number; typeName: string }
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
}

const norm = (s: string): string => s.trim().toLowerCase().replace(/^nvidia\s+/, '');

/** Resolve a layout's type key against a GPU's catalogue, exactly. */
export function resolveTypeName(gpu: string, key: string, catalogue: readonly VgpuTypeInfo[]): VgpuTypeInfo {
  const byId = /^\d+$/.test(key.trim()) ? catalogue.find((t) => t.id === Number(key)) : undefined;
  const found = byId ?? catalogue.find((t) => norm(t.name) === norm(key));
  if (found === undefined) {
    const known = catalogue.map((t) => t.name.replace(/^NVIDIA\s+/, ''));
    throw new VgpuError(ErrorCode.UnknownType, `GPU ${gpu} has no vGPU type '${key}'`, {
      hint: `use one of: ${known.slice(0, 12).join(', ')}${known.length > 12 ? ', …' : ''} (vgpuctl types --gpu ${gpu} --all)`,
      details: { gpu, type: key },
    });
  }
  return found;
}

/** Expand layout entries against the GPUs present into per-GPU desired counts by type id. */
export function desiredFromEntries(entries: readonly LayoutEntry[], snap: LayoutSnapshot): DesiredLayout {
  const desired: DesiredLayout = new Map();
  const present = new Set(snap.gpus.map((g) => g.bdf));
  for (const entry of entries) {
    const targets = entry.devices === 'all' ? [...present] : entry.devices.map((d) => d.toLowerCase());
    for (const gpu of targets) {
      if (!present.has(gpu)) {
        throw new VgpuError(ErrorCode.NotFound, `the layout names GPU ${gpu}, which this daemon does not manage`, {
          hint: `managed GPUs: ${[...present].join(', ') || '(none)'} (vgpuctl gpus)`, details: { gpu },
        });
      }
      if (desired.has(gpu)) {
        throw new VgpuError(ErrorCode.InvalidArgument, `GPU ${gpu} is named by more than one entry of the layout`, {
          hint: 'give each GPU exactly one entry (list several types in one vgpu-devices map)', details: { gpu },
        });
      }
      const counts = new Map<number, number>();
      const catalogue = snap.types.get(gpu) ?? [];
      for (const [key, count] of Object.entries(entry['vgpu-devices'])) {
        const t = resolveTypeName(gpu, key, catalogue);
        counts.set(t.id, (counts.get(t.id) ?? 0) + count);
      }
      desired.set(gpu, counts);
    }
  }
  return desired;
}

export function planLayout(snap: LayoutSnapshot, desired: DesiredLayout): LayoutPlan {
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
        const rank = (v: VgpuInfo): number => (v.state === 'failed' || v.state === 'lost' ? 0 : v.inUse ? 2 : 1);
        const victims = [...have].sort((a, b) => rank(a) - rank(b) || b.createdAt - a.createdAt).slice(0, have.length - want);
        for (const v of victims) {
          const d = { gpu, id: v.id, vf: v.vf, typeId, typeName: v.typeName, inUse: v.inUse };
          destroy.push(d);
          if (v.inUse) blocked.push(d);
        }
      } else {
        const name = catalogue.find((t) => t.id === typeId)?.name ?? have[0]?.typeName ?? String(typeId);
        for (let i = have.length; i < want; i++) create.push({ gpu, typeId, typeName: name });
      }
    }
    changes += destroy.length + create.length;
    gpus.push({ gpu, destroy, create });
  }
  return { gpus, changes, blocked };
}
