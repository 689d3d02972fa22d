/**
 * The errors of the per-VF type ABI (`current_vgpu_type` writes), carrying the errno the kernel attribute would
 * return, so a sysfs-compatible front end can hand back exactly that errno and scripts written for the upstream
 * driver keep working. The `code` is the project's stable code; `errno` is the kernel's name for it.
 */
import { ErrorCode, VgpuError, type VgpuErrorOptions } from '../contracts/exceptions.js';

export type VfAbiErrno = 'EBUSY' | 'ENODEV' | 'EINVAL' | 'ENOSPC' | 'ERANGE' | 'ENOENT';

const CODE: Record<VfAbiErrno, ErrorCode> = {
  EBUSY: ErrorCode.Busy,
  ENODEV: ErrorCode.UnknownType,
  EINVAL: ErrorCode.InvalidArgument,
  ENOSPC: ErrorCode.NoSpace,
  ERANGE: ErrorCode.InvalidArgument,
  ENOENT: ErrorCode.NotFound,
};

export class VfAbiError extends VgpuError {
  readonly errno: VfAbiErrno;

  constructor(errno: VfAbiErrno, message: string, opts: VgpuErrorOptions = {}) {
    super(CODE[errno], message, { ...opts, details: { errno, ...opts.details } });
    this.name = 'VfAbiError';
    this.errno = errno;
  }
}
