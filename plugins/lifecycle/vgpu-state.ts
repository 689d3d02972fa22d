/**
 * The per-vGPU state machine: creating → ready → stopping → destroyed, plus failed (a create that unwound) and
 * lost (the GPU or its firmware died under it). Every transition is checked against this table, so a bug that
 * would e.g. mark a destroyed vGPU ready throws instead of lying to the operator.
 */
import { ErrorCode, VgpuError } from '../../core/contracts/exceptions.js';
import type { VgpuState } from '../../core/contracts/events.js';

const NEXT: Record<VgpuState, readonly VgpuState[]> = {
  creating: ['ready', 'failed', 'lost'],
  ready: ['stopping', 'lost'],
  // Back to ready only when a destroy is refused before its first teardown step (its journal entry failed).
  stopping: ['destroyed', 'lost', 'ready'],
  // A lost vGPU holds nothing on the host any more; an operator's destroy just drops the record.
  lost: ['destroyed'],
  failed: [],
  destroyed: [],
};

export function canTransition(from: VgpuState | null, to: VgpuState): boolean {
  return from === null ? to === 'creating' : NEXT[from].includes(to);
}
// (A vGPU found lost at a restart — GPU reset while the daemon was down — is listed straight as 'lost' by
// GpuLifecycle.reportLost, as an adopted one is listed straight as 'ready': no transition, nothing was created.)

export function assertTransition(id: string, from: VgpuState | null, to: VgpuState): void {
  if (!canTransition(from, to)) {
    throw new VgpuError(ErrorCode.Internal, `vGPU ${id}: illegal state change ${from ?? '(new)'} → ${to}`, {
      hint: 'this is a bug in the lifecycle plugin; please report it with the daemon log', details: { id, from, to },
    });
  }
}
