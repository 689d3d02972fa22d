/**
 * Applies a layout plan as one transaction over the VgpuService: destroys first (to free FB and, in homogeneous
 * mode, the GPU's active type), then creates. If any step fails, every step already done is undone in reverse —
 * created vGPUs are destroyed, destroyed ones re-created with their type on their VF — so the GPUs end as they
 * were before. NVIDIA's vgpu-device-manager stops at the first error with the GPU half-configured (pkg/vgpu/
 * config.go SetVGPUConfig deletes every vGPU of the GPU, then creates; a failure in between leaves neither layout).
 *
 * A crash cannot run the rollback; the request journal (core/requests) covers that: with `requestId`, every
 * vGPU this apply creates carries the request's id in the vGPU journal from its first step on.
 */
import { ErrorCode, VgpuError, isVgpuError } from '../contracts/exceptions.js';
import type { Logger } from '../contracts/logger.js';
import type { VgpuService } from '../contracts/vgpu-service.js';
import type { LayoutPlan } from './plan-layout.js';

export interface ApplyOptions {
  force?: boolean;
  signal?: AbortSignal;
  logger?: Logger;
  /** Tag created vGPUs with this request id (see CreateVgpuRequest.requestId). */
  requestId?: string;
  /** Awaited after each step (the request journal records progress); a throw fails the apply (rolled back). */
  onStep?: (step: AppliedStep) => Promise<void> | void;
  /** Awaited before a failed apply undoes its steps (the request journal records that it is rolling back). */
  onRollback?: () => Promise<void> | void;
}

export interface ApplyResult {
  created: string[];
  destroyed: string[];
}

export type AppliedStep =
  | { kind: 'created'; id: string; gpu: string; vf: number; typeId: number }
  | { kind: 'destroyed'; id: string; gpu: string; vf: number; typeId: number };

/** Refuse a plan that would destroy in-use vGPUs without force (nothing changed). */
export function assertNotBlocked(plan: LayoutPlan, force: boolean): void {
  if (plan.blocked.length === 0 || force) return;
  const ids = plan.blocked.map((b) => b.id);
  throw new VgpuError(ErrorCode.Busy, `the layout would destroy ${ids.length} vGPU(s) in use by a VM: ${ids.join(', ')}`, {
    hint: 'stop the VMs first, or apply with --force to destroy them anyway; nothing was changed',
    details: { inUse: ids },
  });
}

export async function applyLayout(service: VgpuService, plan: LayoutPlan, opts: ApplyOptions = {}): Promise<ApplyResult> {
  assertNotBlocked(plan, opts.force === true);
  const done: AppliedStep[] = [];
  const log = opts.logger;
  const signal = opts.signal;
  try {
    for (const g of plan.gpus) {
      for (const d of g.destroy) {
        signal?.throwIfAborted();
        await service.destroy(d.id, { force: opts.force === true, ...(signal ? { signal } : {}) });
        const step: AppliedStep = { kind: 'destroyed', gpu: g.gpu, vf: d.vf, typeId: d.typeId, id: d.id };
        done.push(step);
        await opts.onStep?.(step);
      }
    }
    for (const g of plan.gpus) {
      for (const c of g.create) {
        signal?.throwIfAborted();
        const v = await service.create({
          gpu: g.gpu, type: c.typeId, ...(signal ? { signal } : {}), ...(opts.requestId !== undefined ? { requestId: opts.requestId } : {}),
        });
        const step: AppliedStep = { kind: 'created', id: v.id, gpu: g.gpu, vf: v.vf, typeId: v.typeId };
        done.push(step);
        await opts.onStep?.(step);
      }
    }
  } catch (cause) {
    log?.warn('layout apply failed; rolling back', { steps: done.length, error: cause });
    try {
      await opts.onRollback?.();
    } catch (error) {
      log?.error('could not record the rollback; rolling back anyway', { error });
    }
    const rollbackFailures = await rollbackSteps(service, done, log);
    const base = isVgpuError(cause) ? cause : undefined;
    const message = cause instanceof Error ? cause.message : String(cause);
    throw new VgpuError(base?.code ?? ErrorCode.Internal,
      `layout apply failed after ${done.length} step(s): ${message}; ${rollbackFailures.length === 0
        ? 'rolled back, the GPUs are as they were'
        : `ROLLBACK INCOMPLETE (${rollbackFailures.length} step(s) failed)`}`, {
        hint: rollbackFailures.length === 0
          ? (base?.hint ?? 'see the daemon log')
          : 'inspect with `vgpuctl list` and fix by hand; the failed rollback steps are in details.rollbackFailures',
        details: { ...(base?.details ?? {}), stepsDone: done.length, rollbackFailures }, cause,
      });
  }
  return {
    created: done.filter((d) => d.kind === 'created').map((d) => d.id),
    destroyed: done.filter((d) => d.kind === 'destroyed').map((d) => d.id),
  };
}

/**
 * Undo `done` in reverse; never aborted (a half-undone rollback is worse than a slow one). A destroyed vGPU comes
 * back as a new vGPU of its type on its VF (new id, scrubbed FB: what it held is gone).
 */
export async function rollbackSteps(service: VgpuService, done: readonly AppliedStep[], log?: Logger): Promise<{ step: string; error: string }[]> {
  const failures: { step: string; error: string }[] = [];
  for (const step of [...done].reverse()) {
    try {
      if (step.kind === 'created') await service.destroy(step.id, { force: true });
      else await service.create({ gpu: step.gpu, type: step.typeId, vf: step.vf });
    } catch (e) {
      const text = e instanceof Error ? e.message : String(e);
      const name = step.kind === 'created' ? `destroy ${step.id}` : `re-create type ${step.typeId} on ${step.gpu} VF ${step.vf}`;
      failures.push({ step: name, error: text });
      log?.error('layout rollback step failed', { step: name, error: e });
    }
  }
  return failures;
}
