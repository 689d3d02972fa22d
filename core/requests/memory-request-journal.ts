/**
 * RequestJournal in memory: used when no 'state' plugin binds a durable one (unit tests, a daemon run without a
 * state dir). Requests are still all-or-none while the daemon runs and can still be asked about; a crash forgets
 * them, like everything else such a daemon knows. The file journal (plugins/state) keeps the same in-memory view
 * and adds the files.
 */
import type { RequestJournal, RequestRecord } from '../contracts/request-journal.js';

/** Finished records kept (the newest); running ones are never dropped. */
export const KEEP_FINISHED_REQUESTS = 256;

export class MemoryRequestJournal implements RequestJournal {
  protected readonly recs = new Map<string, RequestRecord>();

  constructor(protected readonly keepFinished = KEEP_FINISHED_REQUESTS) {}

  get(id: string): RequestRecord | undefined {
    const r = this.recs.get(id);
    return r === undefined ? undefined : structuredClone(r);
  }

  list(): RequestRecord[] {
    return newestFirst(this.recs.values()).map((r) => structuredClone(r));
  }

  put(record: RequestRecord): Promise<void> {
    this.remember(record);
    return Promise.resolve();
  }

  /** Keep a copy of `record`; returns the ids of the finished records that fell out of the kept window. */
  protected remember(record: RequestRecord): string[] {
    this.recs.set(record.id, structuredClone(record));
    const dropped = finishedBeyond(newestFirst(this.recs.values()), this.keepFinished);
    for (const id of dropped) this.recs.delete(id);
    return dropped;
  }
}

export function newestFirst(recs: Iterable<RequestRecord>): RequestRecord[] {
  return [...recs].sort((a, b) => b.createdAt - a.createdAt || b.id.localeCompare(a.id));
}

/** Ids of finished records past the newest `keep` (list is newest first). */
export function finishedBeyond(list: readonly RequestRecord[], keep: number): string[] {
  const finished = list.filter((r) => r.state !== 'running' && r.state !== 'rolling-back');
  return finished.slice(keep).map((r) => r.id);
}
