/**
 * The refusal of a create that must wait for an operator to release a quarantined VF (one whose journal record was
 * lost; see plugins/lifecycle/vf-quarantine.ts): while what that VF holds is not fully known, a new vGPU could be
 * placed over memory or channels its plugin task still uses. One wording for the lifecycle and for the request
 * service's up-front check, so both name the VF and the command that releases it.
 */
import { ErrorCode, VgpuError } from '../contracts/exceptions.js';
import type { QuarantinedVf } from '../contracts/vgpu-service.js';

/** What of a quarantined VF's holdings keeps every create on its GPU waiting when unknown. */
export const BLOCKING_UNKNOWNS: readonly string[] = ['guest-fb', 'heap', 'chids'];

export function createsWaitForRelease(gpu: string, q: Pick<QuarantinedVf, 'vf' | 'vfBdf' | 'unknown'>): VgpuError {
  const unknown = q.unknown.filter((u) => BLOCKING_UNKNOWNS.includes(u));
  return new VgpuError(ErrorCode.Busy, `creates on ${gpu} wait: quarantined VF ${q.vf} may hold ${unknown.join(', ')} that no journal record names, and a new vGPU could land on them`, {
    hint: `release it first: vgpuctl vf ${q.vfBdf} release`,
    details: { gpu, vf: q.vf, unknown },
  });
}
