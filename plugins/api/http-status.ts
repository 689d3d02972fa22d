/**
 * VgpuError code → HTTP status, by the code's family: 400 usage/invalid input, 404 not found, 409 busy/state/no space,
 * 403 permission denied, 413 body too large, 415 wrong media type, 507 state dir full, 503 device lost/timeout, 500 anything else. Kept apart from http-errors.ts (which needs zod and fastify types) so
 * vgpuctl can map a daemon's error code to an exit code without loading either.
 */
import { ErrorCode } from '../../core/contracts/exceptions.js';

const STATUS: Partial<Record<ErrorCode, number>> = {
  [ErrorCode.InvalidArgument]: 400,
  [ErrorCode.UnknownType]: 400,
  [ErrorCode.Config]: 400,
  [ErrorCode.TooLarge]: 413,
  [ErrorCode.MediaType]: 415,
  [ErrorCode.PermissionDenied]: 403,
  [ErrorCode.NotFound]: 404,
  [ErrorCode.Busy]: 409,
  [ErrorCode.IllegalState]: 409,
  [ErrorCode.NoSpace]: 409,
  [ErrorCode.OutOfMemory]: 409,
  [ErrorCode.Cancelled]: 409,
  // RFC 4918 §11.5: the server cannot store what it needs to complete the request.
  [ErrorCode.StateFull]: 507,
  [ErrorCode.GpuLost]: 503,
  [ErrorCode.RpcTimeout]: 503,
};

/**
 * A create or destroy step error takes its cause's family: a create refused for want of FB is a 409 the operator
 * can act on, a firmware that failed the step is the daemon's 500.
 */
export function httpStatusFor(code: string, details?: Record<string, unknown>): number {
  const own = STATUS[code as ErrorCode] ?? 500;
  if ((code === ErrorCode.CreateStep || code === ErrorCode.DestroyStep) && typeof details?.['cause'] === 'string') {
    const inner = STATUS[details['cause'] as ErrorCode];
    // A step that failed because the state dir is full is the operator's to fix too (507, not the daemon's 500).
    if (inner !== undefined && (inner < 500 || inner === 507)) return inner;
  }
  return own;
}
