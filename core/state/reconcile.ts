/**
 * After a daemon restart: make the GPUs match the journal.
 *
 *   journal 'ready' and the service has it       → nothing to do (the manager kept it alive)
 *   journal 'ready' and the service lacks it     → re-create it: same GPU, same VF, same type
 *   journal 'creating' / 'stopping' (half-way)   → roll back: destroy it if the service has it, drop the record
 *   journal 'destroyed' / 'failed' / 'lost'       → drop the record (destroy it first if the service still has it)
 *
 * Limits of the VgpuService contract (need the lifecycle plugin): create() assigns a NEW id and places the FB
 * itself, so a re-created vGPU keeps its VF and type but not its id or FB offset; and a vGPU whose VF and GSP
 * context survived the restart cannot be re-attached (adopted) — the contract has no adopt(record).
 */
import type { Logger } from '../contracts/logger.js';
import type { VgpuService } from '../contracts/vgpu-service.js';
import { recordFromInfo, type StateJournal } from './state-journal.js';

export interface ReconcileReport {
  kept: string[];
  recreated: { from: string; to: string }[];
  rolledBack: string[];
  dropped: string[];
  failed: { id: string; error: string }[];
}

export async function reconcile(journal: StateJournal, service: VgpuService, logger?: Logger): Promise<ReconcileReport> {
  const report: ReconcileReport = { kept: [], recreated: [], rolledBack: [], dropped: [], failed: [] };
  const live = new Map(service.list().map((v) => [v.id, v]));
  for (const rec of journal.entries()) {
    try {
      const has = live.get(rec.id);
      if (rec.state === 'ready') {
        if (has !== undefined) {
          report.kept.push(rec.id);
          continue;
        }
        const made = await service.create({ gpu: rec.gpu, type: rec.typeId, vf: rec.vf });
        await journal.remove(rec.id);
        await journal.put(recordFromInfo(made));
        report.recreated.push({ from: rec.id, to: made.id });
        continue;
      }
      if (has !== undefined) await service.destroy(rec.id, { force: true });
      await journal.remove(rec.id);
      (rec.state === 'creating' || rec.state === 'stopping' ? report.rolledBack : report.dropped).push(rec.id);
    } catch (e) {
      const error = e instanceof Error ? e.message : String(e);
      report.failed.push({ id: rec.id, error });
      logger?.error('reconcile step failed; the record is kept for the next start', { vgpu: rec.id, state: rec.state, error: e });
    }
  }
  logger?.info('journal reconciled', {
    kept: report.kept.length, recreated: report.recreated.length, rolledBack: report.rolledBack.length,
    dropped: report.dropped.length, failed: report.failed.length,
  });
  return report;
}
