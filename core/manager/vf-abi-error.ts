/**
 * The errors of the per-VF type ABI (`current_vgpu_type` writes) and of the PF's `sriov_numvfs`, carrying the errno
 * the kernel attribute returns, so a sysfs-compatible front end (the FUSE presenter) can hand back exactly that
 * errno, scripts written for the kernel keep working, and an errno the real kernel gave the sysfs backend reaches
 * the operator unchanged. The `code` is the project's stable code; `errno` is the kernel's name for it.
 */
import { ErrorCode, VgpuError, type VgpuErrorOptions } from '../contracts/exceptions.js';

export type VfAbiErrno = 'EBUSY' | 'ENODEV' | 'EINVAL' | 'ENOSPC' | 'ERANGE' | 'ENOENT' | 'EACCES' | 'EPERM' | 'EIO' | 'ENXIO' | 'ENOMEM';

const CODE: Record<VfAbiErrno, ErrorCode> = {
  EBUSY: ErrorCode.Busy,
  ENODEV: ErrorCode.UnknownType,
  EINVAL: ErrorCode.InvalidArgument,
  ENOSPC: ErrorCode.NoSpace,
  ERANGE: ErrorCode.InvalidArgument,
  ENOENT: ErrorCode.NotFound,
  EACCES: ErrorCode.PermissionDenied,
  EPERM: ErrorCode.PermissionDenied,
  // The driver failed the store (a firmware or hardware error behind it): the daemon's side, not the request's.
  EIO: ErrorCode.Internal,
  ENXIO: ErrorCode.NotFound,
  ENOMEM: ErrorCode.OutOfMemory,
};

/** The errnos a VfAbiError can carry, for code that maps a system error onto one. */
export const VF_ABI_ERRNOS: ReadonlySet<string> = new Set(Object.keys(CODE));

/** The Linux errno number of each name (asm-generic/errno-base.h), for faces that hand errnos back (FUSE). */
export const ERRNO_NUMBER: Readonly<Record<VfAbiErrno | 'ENOSYS' | 'ENOTDIR' | 'EISDIR' | 'ENOTCONN', number>> = {
  EPERM: 1, ENOENT: 2, EIO: 5, ENXIO: 6, ENOMEM: 12, EACCES: 13, EBUSY: 16, ENODEV: 19, ENOTDIR: 20, EISDIR: 21,
  EINVAL: 22, ENOSPC: 28, ERANGE: 34, ENOSYS: 38, ENOTCONN: 107,
};

export class VfAbiError extends VgpuError {
  readonly errno: VfAbiErrno;

  constructor(errno: VfAbiErrno, message: string, opts: VgpuErrorOptions = {}) {
    super(CODE[errno], message, { ...opts, details: { errno, ...opts.details } });
    this.name = 'VfAbiError';
    this.errno = errno;
  }
}
