/**
 * Can a plan succeed at all? Checked before its first step, so an impossible layout is refused up front with the
 * limit that binds, instead of after some creates and a rollback (13 × 4Q on a GPU that takes 12 once ran 12
 * creates, failed the 13th and destroyed the 12 again).
 *
 * Only facts the VgpuService publishes are used, so every check here is a necessary condition, never a guess:
 * the GPU is ready; a homogeneous GPU ends with one type; the GPU has enough VFs and framebuffer for the final
 * vGPUs; and where a GPU only gains vGPUs, each type's count stays within what the manager says is available now
 * (its own count: placement, heap and channel room included). The per-type max instances were checked when the
 * entries were expanded. A create can still fail later for a reason no published fact shows (fragmentation, a
 * firmware error): then apply rolls back as before.
 */
import { ErrorCode, VgpuError } from '../contracts/exceptions.js';
import type { DesiredLayout } from './expand-layout.js';
import type { LayoutSnapshot } from './layout-snapshot.js';
import type { LayoutPlan } from './plan-layout.js';

const GiB = 1024 ** 3;
const gib = (n: bigint): string => `${(Number(n) / GiB).toFixed(1)} GiB`;
const short = (name: string): string => name.replace(/^NVIDIA\s+/, '');

/** Throw (VGPU_ENOSPC / VGPU_ESTATE, naming the limit) if `plan` cannot succeed on the GPUs of `snap`. */
export function assertFeasible(snap: LayoutSnapshot, desired: DesiredLayout, plan: LayoutPlan): void {
  for (const g of plan.gpus) {
    if (g.create.length === 0 && g.destroy.length === 0) continue;
    const gpu = snap.gpus.find((x) => x.bdf === g.gpu);
    if (gpu === undefined) continue;
    const counts = desired.get(g.gpu) ?? new Map<number, number>();
    const catalogue = snap.types.get(g.gpu) ?? [];
    const typeOf = (id: number) => catalogue.find((t) => t.id === id);
    const details = { gpu: g.gpu };
    if (gpu.state !== 'ready') {
      throw new VgpuError(ErrorCode.IllegalState, `GPU ${g.gpu} is ${gpu.state}; the layout cannot change it now`, {
        hint: 'wait until it is ready again (vgpuctl gpus)', details: { ...details, state: gpu.state },
      });
    }
    const wanted = [...counts].filter(([, n]) => n > 0);
    if (gpu.policy === 'homogeneous' && wanted.length > 1) {
      const names = wanted.map(([id]) => short(typeOf(id)?.name ?? String(id)));
      throw new VgpuError(ErrorCode.IllegalState, `GPU ${g.gpu} hosts one vGPU type at a time (homogeneous policy); the layout asks for ${names.join(' and ')}`, {
        hint: `ask for one type on this GPU, or switch it first: vgpuctl policy ${g.gpu} heterogeneous (only while it has no vGPUs)`,
        details: { ...details, binding: 'homogeneous-policy', types: names },
      });
    }
    // What the GPU holds once the plan ran: the layout's vGPUs plus any it keeps of types the layout does not name.
    const final = new Map(counts);
    const destroyed = new Set(g.destroy.map((d) => d.id));
    for (const v of snap.vgpus) {
      if (v.gpu !== g.gpu || destroyed.has(v.id) || counts.has(v.typeId) || v.state === 'destroyed' || v.state === 'stopping') continue;
      final.set(v.typeId, (final.get(v.typeId) ?? 0) + 1);
    }
    const total = [...final.values()].reduce((s, n) => s + n, 0);
    if (total > gpu.totalVfs) {
      throw new VgpuError(ErrorCode.NoSpace, `the layout needs ${total} vGPUs on GPU ${g.gpu}, which has ${gpu.totalVfs} VFs (one vGPU per VF)`, {
        hint: 'ask for fewer vGPUs on this GPU', details: { ...details, binding: 'vfs', asked: total, vfs: gpu.totalVfs },
      });
    }
    // A vGPU takes its whole profile from the GPU (guest FB plus the management heap and reservation inside it), so
    // the profiles, NVIDIA's nominal sizes, are what must add up within the board's FB. Where the kernel keeps the
    // FB to itself (sysfs backend) there is nothing to add up against: the kernel's ENOSPC refuses instead.
    let fb = 0n;
    for (const [id, n] of final) fb += (typeOf(id)?.profileFbBytes ?? 0n) * BigInt(n);
    if (gpu.fb !== undefined && fb > gpu.fb.total) {
      throw new VgpuError(ErrorCode.NoSpace, `the layout needs ${gib(fb)} of framebuffer on GPU ${g.gpu}, which has ${gib(gpu.fb.total)}`, {
        hint: 'ask for fewer or smaller vGPUs on this GPU', details: { ...details, binding: 'framebuffer', askedBytes: fb, totalBytes: gpu.fb.total },
      });
    }
    if (g.destroy.length === 0) {
      // Nothing is freed first, so the backend's own "available now" bounds each type (exactly for the userspace
      // manager; from above for the sysfs backend, which keeps the check a necessary condition).
      const adds = new Map<number, number>();
      for (const c of g.create) adds.set(c.typeId, (adds.get(c.typeId) ?? 0) + 1);
      for (const [id, n] of adds) {
        const t = typeOf(id);
        if (t !== undefined && n > t.available) {
          throw new VgpuError(ErrorCode.NoSpace, `the layout adds ${n} × ${short(t.name)} on GPU ${g.gpu}, but only ${t.available} more fit now`, {
            hint: 'destroy vGPUs of other types first, or ask for fewer (vgpuctl types shows AVAILABLE)',
            details: { ...details, binding: 'available', type: t.name, asked: n, available: t.available },
          });
        }
      }
    }
  }
}
