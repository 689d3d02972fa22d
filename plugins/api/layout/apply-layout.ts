/**
 * Applies a layout plan as one transaction over the VgpuService: destroys first (to free FB and, in homogeneous
 * mode, the GPU's active type), then creates. If any step fails, every step already done is undone in reverse —
 * created vGPUs are destroyed, destroyed ones re-created with their type on their VF — so the GPUs end as they
 * were before. vgpu-device-manager and the DRA driver leave GPUs half-configured here (operators-and-peers §4.2).
 */
import { ErrorCode, VgpuError, isVgpuError } from '../../../core/contracts/exceptions.js';
import type { Logger } from '../../../core/contracts/logger.js';
import type { VgpuService } from '../../../core/contracts/vgpu-service.js';
import type { LayoutPlan, LayoutSnapshot } from './plan-layout.js';

export interface ApplyOptions {
  force?: boolean;
  signal?: AbortSignal;
  logger?: Logger;
}

export interface ApplyResult {
  created: string[];
  destroyed: string[];
}

type DoneStep =
  | { kind: 'created'; id: string; gpu: string }
  | { kind: 'destroyed'; gpu: string; vf: number; typeId: number; id: string };

export function snapshot(service: VgpuService): LayoutSnapshot {
  const gpus = service.gpus();
  const types = new Map(gpus.map((g) => [g.bdf, service.types(g.bdf, { all: true })]));
  return { gpus, vgpus: service.list(), types };
}

export async function applyLayout(service: VgpuService, plan: LayoutPlan, opts: ApplyOptions = {}): Promise<ApplyResult> {
  if (plan.blocked.length > 0 && opts.force !== true) {
    const ids = plan.blocked.map((b) => b.id);
    throw new VgpuError(ErrorCode.Busy, `the layout would destroy ${ids.length} vGPU(s) in use by a VM: ${ids.join(', ')}`, {
      hint: 'stop the VMs first, or apply with --force to destroy them anyway; nothing was changed',
      details: { inUse: ids },
    });
  }
  const done: DoneStep[] = [];
  const log = opts.logger;
  try {
    for (const g of plan.gpus) {
      for (const d of g.destroy) {
        opts.signal?.throwIfAborted();
        await service.destroy(d.id, { force: opts.force === true, ...(opts.signal ? { signal: opts.signal } : {}) });
        done.push({ kind: 'destroyed', gpu: g.gpu, vf: d.vf, typeId: d.typeId, id: d.id });
      }
    }
    for (const g of plan.gpus) {
      for (const c of g.create) {
        opts.signal?.throwIfAborted();
        const v = await service.create({ gpu: g.gpu, type: c.typeId, ...(opts.signal ? { signal: opts.signal } : {}) });
        done.push({ kind: 'created', id: v.id, gpu: g.gpu });
      }
    }
  } catch (cause) {
    log?.warn('layout apply failed; rolling back', { steps: done.length, error: cause });
    const rollbackFailures = await rollback(service, done, log);
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

/** Undo `done` in reverse; never aborted (a half-undone rollback is worse than a slow one). */
async function rollback(service: VgpuService, done: readonly DoneStep[], log?: Logger): Promise<{ step: string; error: string }[]> {
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
