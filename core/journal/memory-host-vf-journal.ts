/**
 * HostVfJournal in memory: what the sysfs backend uses without a 'state' plugin (unit tests, a daemon run without
 * a state dir). The file journal (plugins/state) keeps the same view and adds the files.
 */
import type { HostTypeCatalogue, HostVfJournal, HostVfRecord } from '../contracts/host-vf-journal.js';

export class MemoryHostVfJournal implements HostVfJournal {
  protected readonly recs = new Map<string, HostVfRecord>();
  protected readonly cats = new Map<string, HostTypeCatalogue>();

  records(): HostVfRecord[] {
    return [...this.recs.values()].sort((a, b) => a.createdAt - b.createdAt || a.id.localeCompare(b.id)).map((r) => ({ ...r }));
  }

  record(id: string): HostVfRecord | undefined {
    const r = this.recs.get(id);
    return r === undefined ? undefined : { ...r };
  }

  put(record: HostVfRecord): Promise<void> {
    this.recs.set(record.id, { ...record });
    return Promise.resolve();
  }

  remove(id: string): Promise<void> {
    this.recs.delete(id);
    return Promise.resolve();
  }

  catalogue(gpu: string): HostTypeCatalogue | undefined {
    const c = this.cats.get(gpu.toLowerCase());
    return c === undefined ? undefined : { ...c, types: c.types.map((t) => ({ ...t })) };
  }

  putCatalogue(catalogue: HostTypeCatalogue): Promise<void> {
    this.cats.set(catalogue.gpu.toLowerCase(), { ...catalogue, types: catalogue.types.map((t) => ({ ...t })) });
    return Promise.resolve();
  }
}
