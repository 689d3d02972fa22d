/** Small pure helpers for request records (core/contracts/request-journal.ts). */
import { isVgpuError } from '../contracts/exceptions.js';
import type { ApplyIntent, RequestRecord } from '../contracts/request-journal.js';
import type { AppliedStep } from '../layout/apply-layout.js';
import type { DesiredLayout } from '../layout/expand-layout.js';

/** The apply's resolved layout as journal data. */
export function applyIntentOf(config: string, force: boolean, desired: DesiredLayout): ApplyIntent {
  return {
    kind: 'apply', config, force,
    desired: [...desired].map(([gpu, counts]) => ({ gpu, counts: [...counts].map(([typeId, count]) => ({ typeId, count })) })),
  };
}

/** …and back. */
export function desiredOf(intent: ApplyIntent): DesiredLayout {
  return new Map(intent.desired.map((g) => [g.gpu, new Map(g.counts.map((c) => [c.typeId, c.count]))]));
}

export function errorJson(err: unknown): { code: string; message: string; hint?: string } {
  if (isVgpuError(err)) return { code: err.code, message: err.message, hint: err.hint };
  return { code: 'VGPU_EINTERNAL', message: err instanceof Error ? err.message : String(err) };
}

/** Mark the first open step `s` completes (a destroy by its vGPU, a create by GPU and type). */
export function markStep(rec: RequestRecord, s: AppliedStep): void {
  const kind = s.kind === 'created' ? 'create' : 'destroy';
  const step = rec.steps.find((x) => !x.done && x.kind === kind && x.gpu === s.gpu
    && (kind === 'destroy' ? x.vgpu === s.id : x.typeId === s.typeId));
  if (step === undefined) {
    rec.steps.push({ kind, gpu: s.gpu, typeId: s.typeId, vgpu: s.id, vf: s.vf, done: true });
    return;
  }
  step.done = true;
  step.vgpu = s.id;
  step.vf = s.vf;
}
