/**
 * RequestService (core/contracts/requests.ts): `create --count N` and layout applies as journalled, all-or-none
 * requests over the VgpuService.
 *
 * Order of every request: checks that can refuse it (nothing written, nothing done) → its intent, with its steps,
 * durably in the request journal → the steps, each vGPU created with the request's id in the vGPU journal → the
 * outcome. A step that fails rolls the request back in-process; a crash leaves the record 'running' (or
 * 'rolling-back') and recover() decides at the next start (request-recovery.ts). If the outcome itself cannot be
 * recorded, the request is rolled back rather than left looking unfinished to the next start.
 */
import { randomUUID } from 'node:crypto';
import { inject, injectable, optional } from 'inversify';
import { ErrorCode, VgpuError, isVgpuError } from '../contracts/exceptions.js';
import type { Logger } from '../contracts/logger.js';
import { REQUEST_ID_PATTERN, type RequestJournal, type RequestRecord } from '../contracts/request-journal.js';
import type { ApplyOutcome, ApplyRequest, CreateRequest, RequestRecovery, RequestService } from '../contracts/requests.js';
import type { VgpuInfo, VgpuService } from '../contracts/vgpu-service.js';
import { applyLayout, assertNotBlocked, rollbackSteps, type AppliedStep } from '../layout/apply-layout.js';
import { assertFeasible } from '../layout/check-feasible.js';
import { gpusNeedingVgpus } from '../layout/expand-layout.js';
import { typeMaximum } from '../layout/type-maximum.js';
import { createsWaitForRelease } from '../manager/quarantine-refusal.js';
import { planLayoutRequest } from '../layout/plan-layout-request.js';
import { selectLayoutConfig } from '../layout/select-config.js';
import { TOKENS } from '../tokens.js';
import { MemoryRequestJournal } from './memory-request-journal.js';
import { applyIntentOf, errorJson, markStep } from './request-record.js';
import { recoverRequests } from './request-recovery.js';

@injectable()
export class RequestServiceImpl implements RequestService {
  private readonly journal: RequestJournal;
  private readonly log: Logger;
  /** Ids claimed in this process whose intent may not be on disk yet. */
  private readonly claimed = new Set<string>();
  private recovery: Promise<RequestRecovery> | undefined;
  private recovered: RequestRecovery | undefined;

  constructor(
    @inject(TOKENS.VgpuManager) private readonly service: VgpuService,
    @inject(TOKENS.Logger) logger: Logger,
    @inject(TOKENS.RequestJournal) @optional() journal?: RequestJournal,
  ) {
    this.journal = journal ?? new MemoryRequestJournal();
    this.log = logger.child({ component: 'requests' });
  }

  // ---- create --count N ----

  async create(req: CreateRequest): Promise<{ request: RequestRecord; vgpus: VgpuInfo[] }> {
    this.precheckCreate(req);
    const id = this.claim(req.id);
    try {
      const now = Date.now();
      const rec: RequestRecord = {
        id, state: 'running', createdAt: now, updatedAt: now,
        intent: { kind: 'create', gpu: req.gpu, type: req.type, count: req.count, ...(req.vf !== undefined ? { vf: req.vf } : {}) },
        steps: Array.from({ length: req.count }, () => ({ kind: 'create' as const, gpu: req.gpu, done: false })),
      };
      await this.journal.put(rec); // the intent is on disk before the first step
      const made: VgpuInfo[] = [];
      try {
        for (let i = 0; i < req.count; i++) {
          // An explicit VF only makes sense for one vGPU; the following ones take the next free VF.
          const vf = i === 0 ? req.vf : undefined;
          const v = await this.service.create({
            gpu: req.gpu, type: req.type, requestId: id, ...(vf !== undefined ? { vf } : {}), ...(req.signal ? { signal: req.signal } : {}),
          });
          made.push(v);
          rec.steps[i] = { kind: 'create', gpu: req.gpu, typeId: v.typeId, vgpu: v.id, vf: v.vf, done: true };
          await this.save(rec);
        }
        rec.state = 'done';
        rec.result = { created: made.map((v) => v.id), destroyed: [] };
        await this.save(rec);
      } catch (err) {
        // `--count 3` is one request: if the third fails, the first two go too, so a refused request changes nothing.
        rec.state = 'rolling-back';
        rec.error = errorJson(err);
        await this.save(rec).catch((error: unknown) => this.log.error('could not record the rollback of a request', { request: id, error }));
        const failures: string[] = [];
        for (const v of [...made].reverse()) {
          await this.service.destroy(v.id, { force: true }).catch((e: unknown) => {
            failures.push(v.id);
            this.log.error('undo of a partial create failed', { request: id, vgpu: v.id, error: e });
          });
        }
        rec.state = failures.length === 0 ? 'rolled-back' : 'failed';
        rec.result = { created: failures, destroyed: [] };
        await this.save(rec).catch((error: unknown) => this.log.error('could not record the end of a request', { request: id, error }));
        if (isVgpuError(err)) {
          err.details.request = id;
          if (made.length > 0) err.details.undone = made.map((v) => v.id).filter((x) => !failures.includes(x));
        }
        throw err;
      }
      return { request: rec, vgpus: made };
    } finally {
      this.claimed.delete(id);
    }
  }

  /** Refuse up front what cannot fit (nothing is made): more than the type's max instances or its availability. */
  private precheckCreate(req: CreateRequest): void {
    // A GPU that cannot create now (lost, being reset, suspended, unbound) has no availability to compare with: the
    // create itself refuses, naming why, rather than a misleading "0 more fit".
    const gpu = this.service.gpus().find((g) => g.bdf.toLowerCase() === req.gpu.toLowerCase());
    if (gpu !== undefined && gpu.state !== 'ready') return;
    let types;
    try {
      types = this.service.types(req.gpu, { all: true });
    } catch {
      return; // an unknown GPU: the create itself says so, with its own hint
    }
    const key = String(req.type).trim().toLowerCase().replace(/^nvidia\s+/, '');
    const t = types.find((x) => x.id === Number(req.type) && /^\d+$/.test(key))
      ?? types.find((x) => x.name.toLowerCase().replace(/^nvidia\s+/, '') === key)
      ?? types.find((x) => x.name.toLowerCase().endsWith(`-${key}`));
    if (t === undefined) return;
    const name = t.name.replace(/^NVIDIA\s+/, '');
    const limit = typeMaximum(t, gpu?.policy);
    if (limit !== undefined && req.count > limit.max) {
      throw new VgpuError(ErrorCode.InvalidArgument, `${req.count} × ${name} asked; at most ${limit.max} fit on one GPU (${limit.why})`, {
        hint: limit.mode === 'mixed-size' && t.maxInstances !== undefined && req.count <= t.maxInstances
          ? `ask for ${limit.max} or fewer, or put the GPU in equal-size mode (vgpuctl policy ${req.gpu} homogeneous, while it has no vGPUs) for up to ${t.maxInstances}`
          : `ask for ${limit.max} or fewer`,
        details: { gpu: req.gpu, type: t.name, asked: req.count, maxInstances: limit.max, mode: limit.mode },
      });
    }
    // A quarantined VF whose holdings are unknown makes every create wait: say that, not "0 more fit".
    const blocker = this.service.quarantined?.().find((q) => q.gpu === req.gpu && q.blocksCreates);
    if (blocker !== undefined) throw createsWaitForRelease(req.gpu, blocker);
    // One vGPU on a named VF may take a type the operator selected there already (it needs no room beyond that
    // selection, which "available" — room for one more — does not count): the create itself checks that case.
    if (req.count > t.available && !(req.vf !== undefined && req.count === 1)) {
      throw new VgpuError(ErrorCode.NoSpace, `${req.count} × ${name} asked; ${t.available} more fit on ${req.gpu} now`, {
        hint: 'destroy vGPUs first, or ask for fewer (vgpuctl types shows AVAILABLE); nothing was created',
        details: { gpu: req.gpu, type: t.name, asked: req.count, available: t.available },
      });
    }
  }

  // ---- layout apply ----

  async apply(req: ApplyRequest): Promise<ApplyOutcome> {
    if (req.dryRun !== true && this.service.prepareGpus !== undefined) {
      // A GPU the layout gives vGPUs may have no VFs yet (after a reboot, on a real host): enable them first, so the
      // plan sees what the GPU offers. A dry run changes nothing, so it plans against the GPU as it is.
      const { entries } = selectLayoutConfig(req.layout, req.config);
      await this.service.prepareGpus(gpusNeedingVgpus(entries, this.service.gpus()));
    }
    const { config, snap, desired, plan } = planLayoutRequest(this.service, req.layout, req.config);
    const force = req.force === true;
    const dryRun = req.dryRun === true;
    // Impossible layouts are refused before anything runs (a dry run says so too); nothing to do is not an error.
    if (plan.changes > 0) assertFeasible(snap, desired, plan);
    if (dryRun || plan.changes === 0) return { config, plan, applied: false, dryRun };
    assertNotBlocked(plan, force);
    const id = this.claim(req.id);
    try {
      const now = Date.now();
      const rec: RequestRecord = {
        id, state: 'running', createdAt: now, updatedAt: now,
        intent: applyIntentOf(config, force, desired),
        steps: [
          ...plan.gpus.flatMap((g) => g.destroy.map((d) => ({ kind: 'destroy' as const, gpu: g.gpu, typeId: d.typeId, vgpu: d.id, vf: d.vf, done: false }))),
          ...plan.gpus.flatMap((g) => g.create.map((c) => ({ kind: 'create' as const, gpu: g.gpu, typeId: c.typeId, done: false }))),
        ],
      };
      await this.journal.put(rec);
      const done: AppliedStep[] = [];
      let result;
      try {
        result = await applyLayout(this.service, plan, {
          force, logger: this.log, requestId: id, ...(req.signal ? { signal: req.signal } : {}),
          onStep: async (s) => {
            done.push(s);
            markStep(rec, s);
            await this.save(rec);
          },
          onRollback: async () => {
            rec.state = 'rolling-back';
            await this.save(rec);
          },
        });
      } catch (err) {
        const failures = isVgpuError(err) ? (err.details.rollbackFailures as unknown[] | undefined) ?? [] : [];
        rec.state = failures.length === 0 ? 'rolled-back' : 'failed';
        rec.error = errorJson(err);
        await this.save(rec).catch((error: unknown) => this.log.error('could not record the end of a request', { request: id, error }));
        if (isVgpuError(err)) err.details.request = id;
        throw err;
      }
      rec.state = 'done';
      rec.result = result;
      try {
        await this.save(rec);
      } catch (cause) {
        // Unrecorded success would be rolled back by the next start: undo it now, and say so.
        await rollbackSteps(this.service, done, this.log);
        rec.state = 'rolled-back';
        await this.save(rec).catch(() => {}); // may succeed if the failure was passing
        throw new VgpuError(ErrorCode.Internal, `the layout was applied but its outcome could not be recorded; rolled back: ${(cause as Error).message}`, {
          hint: 'check the state dir (disk full? permissions?) and apply again', details: { request: id }, cause,
        });
      }
      return { config, plan, applied: true, dryRun: false, request: rec, result };
    } finally {
      this.claimed.delete(id);
    }
  }

  // ---- queries ----

  get(id: string): RequestRecord {
    const r = REQUEST_ID_PATTERN.test(id) ? this.journal.get(id) : undefined;
    if (r === undefined) {
      throw new VgpuError(ErrorCode.NotFound, `no request ${id.slice(0, 64)}`, {
        hint: 'a request the daemon never recorded never started: nothing of it was done (finished requests are kept for the last 256)',
        details: { request: id.slice(0, 64) },
      });
    }
    return r;
  }

  list(limit = 50): RequestRecord[] {
    return this.journal.list().slice(0, Math.max(0, limit));
  }

  recover(): Promise<RequestRecovery> {
    this.recovery ??= recoverRequests(this.service, this.journal, this.log).then((r) => {
      this.recovered = r;
      return r;
    });
    return this.recovery;
  }

  lastRecovery(): RequestRecovery | undefined {
    return this.recovered;
  }

  // ---- helpers ----

  /** A new id, or the client's after checking it is well-formed and unused (409: ask what became of the old one). */
  private claim(wanted: string | undefined): string {
    if (wanted === undefined) {
      const id = `req-${randomUUID()}`;
      this.claimed.add(id);
      return id;
    }
    if (!REQUEST_ID_PATTERN.test(wanted)) {
      throw new VgpuError(ErrorCode.InvalidArgument, `request id '${wanted.slice(0, 64)}' is not valid`, {
        hint: 'use 1–64 letters, digits, ".", "_" or "-", starting with a letter or digit (or leave it out)',
      });
    }
    const old = this.journal.get(wanted);
    if (this.claimed.has(wanted) || old !== undefined) {
      throw new VgpuError(ErrorCode.Busy, `request id '${wanted}' is already used (${old?.state ?? 'running'})`, {
        hint: `ask what became of it (vgpuctl request ${wanted}); use a new id for a new request`,
        details: { request: wanted, state: old?.state ?? 'running' },
      });
    }
    this.claimed.add(wanted);
    return wanted;
  }

  private save(rec: RequestRecord): Promise<void> {
    rec.updatedAt = Date.now();
    return this.journal.put(rec);
  }
}
