/**
 * After a restart: finish or roll back every request a crash left running. Runs once the lifecycle has reconciled
 * the vGPU journal (half-made vGPUs are gone, finished ones adopted with their request id), before any face takes
 * new requests.
 *
 * What happens per kind, and why:
 * - `create --count N` is ROLLED BACK: every vGPU carrying the request's id is destroyed. The client never got the
 *   ids (the reply is sent only at the end), a retry would create them again, and a destroy always works on a
 *   vGPU nobody uses yet, so rolling back restores exactly the state before the request.
 * - a layout apply is FINISHED: the journalled layout is planned again against what the GPUs hold now and the rest
 *   applied. Its destroys cannot be undone faithfully (a destroyed vGPU's FB was scrubbed and its id is never
 *   reused; "undoing" gives a new, empty vGPU), while finishing reaches exactly the layout the client asked for,
 *   and an apply is declarative, so doing it again is safe. If finishing fails, the request is rolled back to the
 *   layout it found: its vGPUs destroyed, the vGPUs it destroyed re-created (same type, same VF, new id).
 * - a request caught while it was already rolling back completes the rollback.
 */
import { ErrorCode, VgpuError } from '../contracts/exceptions.js';
import type { Logger } from '../contracts/logger.js';
import type { RequestJournal, RequestRecord } from '../contracts/request-journal.js';
import type { RequestRecovery } from '../contracts/requests.js';
import type { VgpuService } from '../contracts/vgpu-service.js';
import { applyLayout } from '../layout/apply-layout.js';
import { assertFeasible } from '../layout/check-feasible.js';
import { snapshot } from '../layout/layout-snapshot.js';
import { planLayout } from '../layout/plan-layout.js';
import { desiredOf, errorJson, markStep } from './request-record.js';

export async function recoverRequests(service: VgpuService, journal: RequestJournal, log: Logger): Promise<RequestRecovery> {
  const out: RequestRecovery = { finished: [], rolledBack: [], failed: [] };
  const open = journal.list().filter((r) => r.state === 'running' || r.state === 'rolling-back').reverse(); // oldest first
  for (const rec of open) {
    let action: 'finished' | 'rolled-back' | 'failed';
    let note: string;
    try {
      if (rec.intent.kind === 'apply' && rec.state === 'running') {
        try {
          await finishApply(service, rec, log);
          action = 'finished';
          note = 'the daemon restarted during the apply; the rest of the layout was applied';
        } catch (error) {
          log.warn('could not finish an interrupted layout apply; rolling it back', { request: rec.id, error });
          rec.error = errorJson(error);
          const failures = await rollBack(service, rec, log);
          action = failures.length === 0 ? 'rolled-back' : 'failed';
          note = `the daemon restarted during the apply and finishing it failed (${rec.error.message}); ${failures.length === 0 ? 'rolled back' : `rollback incomplete: ${failures.join('; ')}`}`;
        }
      } else {
        const failures = await rollBack(service, rec, log);
        action = failures.length === 0 ? 'rolled-back' : 'failed';
        note = `the daemon restarted during the request; ${failures.length === 0 ? 'rolled back: nothing of it remains' : `rollback incomplete: ${failures.join('; ')}`}`;
      }
    } catch (error) {
      action = 'failed';
      note = `recovery failed: ${(error as Error).message}`;
      log.error('request recovery failed', { request: rec.id, error });
    }
    rec.state = action === 'finished' ? 'done' : action;
    rec.recovered = { at: Date.now(), action, note };
    rec.updatedAt = Date.now();
    const live = service.list();
    rec.result = {
      created: live.filter((v) => v.requestId === rec.id).map((v) => v.id),
      destroyed: rec.steps.filter((s) => s.kind === 'destroy' && s.vgpu !== undefined && !live.some((v) => v.id === s.vgpu)).map((s) => s.vgpu!),
    };
    try {
      await journal.put(rec);
    } catch (error) {
      log.error('could not record the recovery of a request', { request: rec.id, error });
    }
    (action === 'finished' ? out.finished : action === 'rolled-back' ? out.rolledBack : out.failed).push(rec.id);
    log.warn('request interrupted by a restart', { request: rec.id, kind: rec.intent.kind, action, note });
  }
  if (open.length > 0) log.info('requests recovered', { ...out });
  return out;
}

async function finishApply(service: VgpuService, rec: RequestRecord, log: Logger): Promise<void> {
  if (rec.intent.kind !== 'apply') return;
  const desired = desiredOf(rec.intent);
  const snap = snapshot(service);
  const managed = new Set(snap.gpus.map((g) => g.bdf));
  const gone = [...desired.keys()].filter((g) => !managed.has(g));
  if (gone.length > 0) {
    throw new VgpuError(ErrorCode.NotFound, `GPU(s) ${gone.join(', ')} of the layout are not managed after the restart`, {
      hint: 'see vgpuctl status for why', details: { gpus: gone },
    });
  }
  const plan = planLayout(snap, desired);
  if (plan.changes === 0) return;
  assertFeasible(snap, desired, plan);
  await applyLayout(service, plan, {
    force: rec.intent.force, logger: log, requestId: rec.id,
    onStep: (s) => { markStep(rec, s); },
  });
}

/** Undo a request: destroy every vGPU carrying its id; re-create (type and VF) the vGPUs it destroyed. */
async function rollBack(service: VgpuService, rec: RequestRecord, log: Logger): Promise<string[]> {
  const failures: string[] = [];
  for (const v of service.list().filter((x) => x.requestId === rec.id).reverse()) {
    try {
      await service.destroy(v.id, { force: true });
    } catch (error) {
      failures.push(`destroy ${v.id}: ${(error as Error).message}`);
      log.error('could not destroy a vGPU of an interrupted request', { request: rec.id, vgpu: v.id, error });
    }
  }
  const live = service.list();
  for (const s of rec.steps) {
    if (s.kind !== 'destroy' || s.vgpu === undefined || s.vf === undefined || s.typeId === undefined) continue;
    if (live.some((v) => v.id === s.vgpu)) continue; // never destroyed
    if (live.some((v) => v.gpu === s.gpu && v.vf === s.vf)) continue; // the VF is taken again: nothing to restore onto
    try {
      await service.create({ gpu: s.gpu, type: s.typeId, vf: s.vf });
    } catch (error) {
      failures.push(`re-create type ${s.typeId} on ${s.gpu} VF ${s.vf}: ${(error as Error).message}`);
      log.error('could not re-create a vGPU an interrupted request destroyed', { request: rec.id, gpu: s.gpu, vf: s.vf, error });
    }
  }
  return failures;
}
