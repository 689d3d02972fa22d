/**
 * Each GPU's vGPU types as the kernel has listed them. `creatable_vgpu_types` lists every type only while a GPU has
 * no vGPU (upstream: the header and every type) and shrinks as VFs get types, so the catalogue is the union of what
 * was ever read, kept in the host VF journal across restarts. vgpud invents nothing here: a name is the kernel's, and
 * the only derived fact is the profile size the name states (N GiB for -N<series>, NVIDIA's naming); everything the
 * kernel keeps to itself (guest FB, max instances, heads) stays unknown. A type the driver later drops stays listed;
 * writing it gets the kernel's ENODEV.
 */
import type { HostVfJournal } from '../../core/contracts/host-vf-journal.js';
import type { Logger } from '../../core/contracts/logger.js';
import type { CreatableType } from './creatable-types.js';

export class HostTypeCatalog {
  private readonly byGpu = new Map<string, Map<number, string>>();

  constructor(private readonly journal: HostVfJournal, private readonly log: Logger) {}

  /** Load what the journal kept for `gpu`. */
  load(gpu: string): void {
    const cat = this.journal.catalogue(gpu);
    const m = new Map<number, string>();
    for (const t of cat?.types ?? []) m.set(t.id, t.name);
    this.byGpu.set(gpu, m);
  }

  types(gpu: string): CreatableType[] {
    return [...(this.byGpu.get(gpu) ?? new Map<number, string>())].map(([id, name]) => ({ id, name })).sort((a, b) => a.id - b.id);
  }

  nameOf(gpu: string, id: number): string | undefined {
    return this.byGpu.get(gpu)?.get(id);
  }

  /** Add what a VF's list showed; persisted (in the background) when it taught something new. */
  learn(gpu: string, types: readonly CreatableType[]): void {
    const m = this.byGpu.get(gpu) ?? new Map<number, string>();
    this.byGpu.set(gpu, m);
    let changed = false;
    for (const t of types) {
      if (m.get(t.id) === t.name) continue;
      m.set(t.id, t.name);
      changed = true;
    }
    if (!changed) return;
    void this.journal.putCatalogue({ gpu, types: this.types(gpu), updatedAt: Date.now() })
      .catch((error: unknown) => this.log.warn('could not record the vGPU type catalogue', { gpu, error }));
  }
}
