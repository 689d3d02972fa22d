/**
 * A config's entries, expanded against this host's GPUs into "GPU → vGPU count per type", the way NVIDIA's
 * vgpu-device-manager walks them (cmd/nvidia-vgpu-dm/assert/assert.go WalkSelectedVGPUConfigForEachGPU;
 * docs/reference/vgpu-device-manager-layouts.md):
 *
 * - entries are taken in file order; an entry selects every GPU that passes its `device-filter` (none = all) AND
 *   its `devices` (`all`, or the GPU's index; a PCI address is our extension);
 * - for each GPU it selects, an entry sets that GPU's WHOLE vGPU layout (NVIDIA's apply clears the GPU and creates
 *   the entry's vGPUs), so when two entries select one GPU the last one decides. NVIDIA's own example file does
 *   this (its `default` config lists 0x1E7810DE twice); each such replacement is reported in the notes;
 * - a GPU no entry selects is left as it is; a config that selects none of the host's GPUs changes nothing, and
 *   says so in a note instead of failing;
 * - every type an entry names for a GPU it selects must exist on that GPU (NVIDIA's apply fails the same way),
 *   by its exact name: no suffix stripping, so a layout never silently gets a different type.
 *
 * Counts are checked against the type's max instances here, BEFORE anything is built per instance: a count of
 * 1e15 once made the planner allocate one object per missing vGPU until the heap ran out.
 */
import { ErrorCode, VgpuError } from '../contracts/exceptions.js';
import type { GpuSummary, VgpuTypeInfo } from '../contracts/vgpu-service.js';
import { filterMatches, parsePciIdFilter, pciIdText, type PciIdFilter } from './device-filter.js';
import { typeMaximum } from './type-maximum.js';
import type { LayoutEntry } from './layout-file.js';
import type { LayoutSnapshot } from './layout-snapshot.js';

/** Desired vGPU count per type id, per GPU BDF. GPUs absent from the map are left alone. */
export type DesiredLayout = Map<string, Map<number, number>>;

export interface ExpandedLayout {
  desired: DesiredLayout;
  /** What an operator should know about how the entries applied (replacements, GPUs not present, no-op). */
  notes: string[];
}

const norm = (s: string): string => s.trim().toLowerCase().replace(/^nvidia\s+/, '');

/** Resolve a layout's type key against a GPU's catalogue, exactly (full name, name without "NVIDIA ", or id). */
export function resolveTypeName(gpu: string, key: string, catalogue: readonly VgpuTypeInfo[]): VgpuTypeInfo {
  const byId = /^\d+$/.test(key.trim()) ? catalogue.find((t) => t.id === Number(key)) : undefined;
  const found = byId ?? catalogue.find((t) => norm(t.name) === norm(key));
  if (found === undefined) {
    const known = catalogue.map((t) => t.name.replace(/^NVIDIA\s+/, ''));
    throw new VgpuError(ErrorCode.UnknownType, `GPU ${gpu} has no vGPU type '${key.slice(0, 100)}'`, {
      hint: `use one of: ${known.slice(0, 12).join(', ')}${known.length > 12 ? ', …' : ''} (vgpuctl types --gpu ${gpu} --all)`,
      details: { gpu, type: key.slice(0, 100) },
    });
  }
  return found;
}

/** The host's GPUs with the index NVIDIA's tools give them (the service's, else their rank by PCI address). */
export function indexedGpus(gpus: readonly GpuSummary[]): { gpu: GpuSummary; index: number }[] {
  const byAddress = [...gpus].sort((a, b) => addressKey(a.bdf) - addressKey(b.bdf));
  return byAddress.map((gpu, i) => ({ gpu, index: gpu.index ?? i }));
}

/** NVIDIA's sort key for a PCI address: its hex digits read as one number (go-nvlib nvpci GetAllDevices). */
function addressKey(bdf: string): number {
  return Number.parseInt(bdf.replace(/[:.]/g, ''), 16);
}

function filtersOf(entry: LayoutEntry): PciIdFilter[] {
  const f = entry['device-filter'];
  const list = f === undefined || f === '' ? [] : typeof f === 'string' ? [f] : f;
  // The schema checked the syntax; parse cannot fail here.
  return list.map((s) => parsePciIdFilter(s)!);
}

function selects(entry: LayoutEntry, filters: readonly PciIdFilter[], g: { gpu: GpuSummary; index: number }): boolean {
  if (filters.length > 0 && !filters.some((f) => filterMatches(f, g.gpu))) return false;
  if (entry.devices === 'all') return true;
  return entry.devices.some((d) => (typeof d === 'number' ? d === g.index : d.toLowerCase() === g.gpu.bdf.toLowerCase()));
}

const sameCounts = (a: Map<number, number>, b: Map<number, number>): boolean => {
  const nz = (m: Map<number, number>) => [...m].filter(([, n]) => n > 0).sort(([x], [y]) => x - y).join(';');
  return nz(a) === nz(b);
};

/**
 * The GPUs the entries would give at least one vGPU (device-filter and devices only: no type is resolved), so a
 * backend can get them ready — enable their VFs — before the layout is planned against what they offer.
 */
export function gpusNeedingVgpus(entries: readonly LayoutEntry[], gpus: readonly GpuSummary[]): string[] {
  const out = new Set<string>();
  const indexed = indexedGpus(gpus);
  for (const entry of entries) {
    const wants = Object.values(entry['vgpu-devices']).some((n) => n > 0);
    const filters = filtersOf(entry);
    for (const g of indexed) {
      if (!selects(entry, filters, g)) continue;
      // The last entry that selects a GPU decides it, as in expandLayout.
      if (wants) out.add(g.gpu.bdf);
      else out.delete(g.gpu.bdf);
    }
  }
  return [...out];
}

/** Expand `entries` (of config `config`) against the GPUs of `snap`. */
export function expandLayout(config: string, entries: readonly LayoutEntry[], snap: LayoutSnapshot): ExpandedLayout {
  const desired: DesiredLayout = new Map();
  const decidedBy = new Map<string, number>();
  const notes: string[] = [];
  const gpus = indexedGpus(snap.gpus);
  entries.forEach((entry, i) => {
    const filters = filtersOf(entry);
    const chosen = gpus.filter((g) => selects(entry, filters, g));
    if (Array.isArray(entry.devices)) {
      const missing = entry.devices.filter((d) => !gpus.some((g) => (typeof d === 'number' ? d === g.index : d.toLowerCase() === g.gpu.bdf.toLowerCase())));
      if (missing.length > 0) notes.push(`entry ${i + 1}: ${missing.map((d) => (typeof d === 'number' ? `GPU index ${d}` : `GPU ${d}`)).join(', ')} not on this host`);
    }
    for (const g of chosen) {
      const bdf = g.gpu.bdf;
      const catalogue = snap.types.get(bdf) ?? [];
      const counts = new Map<number, number>();
      for (const [key, count] of Object.entries(entry['vgpu-devices'])) {
        const t = resolveTypeName(bdf, key, catalogue);
        const total = (counts.get(t.id) ?? 0) + count;
        // A backend that does not know the type's max instances (sysfs: the kernel does not publish it) leaves the
        // count to the kernel, which refuses the instance past it (ENOSPC) and the apply rolls back.
        const limit = typeMaximum(t, g.gpu.policy);
        if (limit !== undefined && total > limit.max) {
          throw new VgpuError(ErrorCode.InvalidArgument,
            `config '${config}' entry ${i + 1} asks for ${total} × ${t.name.replace(/^NVIDIA\s+/, '')} on GPU ${bdf}; at most ${limit.max} fit on one GPU (${limit.why})`, {
              hint: `ask for ${limit.max} or fewer (vgpuctl types --gpu ${bdf} --all shows each type's ${limit.mode === 'mixed-size' ? 'MIXED' : 'MAX'})`,
              details: { config, entry: i + 1, gpu: bdf, type: t.name, asked: total, maxInstances: limit.max, mode: limit.mode },
            });
        }
        counts.set(t.id, total);
      }
      const prev = desired.get(bdf);
      if (prev !== undefined && !sameCounts(prev, counts)) {
        notes.push(`entry ${i + 1} replaces entry ${decidedBy.get(bdf)! + 1} for GPU ${bdf} (index ${g.index}): the last entry that selects a GPU decides, as in NVIDIA's vgpu-device-manager`);
      }
      desired.set(bdf, counts);
      decidedBy.set(bdf, i);
    }
  });
  if (desired.size === 0) {
    const host = gpus.map((g) => `${g.gpu.bdf} (index ${g.index}, ${pciIdText(g.gpu)})`).join(', ') || 'none';
    notes.push(`config '${config}' selects none of this host's GPUs (${host}): nothing to do`);
  }
  return { desired, notes };
}
