/**
 * Refusals on the wire: a command the server will not carry out ends in an error reply whose error_no is a Linux
 * errno, as VFIO's ioctls would fail. Inside the server the refusal is a VgpuError (VGPU_EINVAL) carrying the errno
 * in `details.errno`, so logs and tests see the same typed error as everywhere else in the daemon.
 */
import { ErrorCode, VgpuError, isVgpuError } from '../../../core/contracts/exceptions.js';
import { Errno, errnoName } from './constants.js';

export function refuse(errno: number, message: string, hint = 'fix the request (see docs/vfio-user.md)'): VgpuError {
  return new VgpuError(errno === Errno.EBUSY ? ErrorCode.Busy : ErrorCode.InvalidArgument, `${errnoName(errno)}: ${message}`, {
    hint, details: { errno },
  });
}

/** The errno a thrown value stands for on the wire: its own when it is a refusal, EIO for anything unexpected. */
export function errnoFor(e: unknown): number {
  if (isVgpuError(e)) {
    const n = e.details.errno;
    if (typeof n === 'number' && Number.isInteger(n) && n > 0) return n;
    if (e.code === ErrorCode.Busy) return Errno.EBUSY;
    if (e.code === ErrorCode.NotFound) return Errno.ENOENT;
    if (e.code === ErrorCode.IllegalState) return Errno.EINVAL;
    if (e.code === ErrorCode.InvalidArgument) return Errno.EINVAL;
    if (e.code === ErrorCode.NoSpace) return Errno.ENOSPC;
    if (e.code === ErrorCode.UnsupportedDevice) return Errno.ENODEV;
  }
  return Errno.EIO;
}
