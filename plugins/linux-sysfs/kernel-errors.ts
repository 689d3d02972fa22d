/**
 * A refused sysfs write as the project's typed error, carrying the kernel's errno unchanged (VfAbiError.errno), with
 * a hint that says what the errno means for that attribute on an NVIDIA vGPU host (docs/reference/nvidia-sysfs-host.md).
 * An errno outside the ABI's set (ENOTCONN from a dead FUSE mount, EROFS) is still typed and still names it.
 */
import { ErrorCode, VgpuError } from '../../core/contracts/exceptions.js';
import { VF_ABI_ERRNOS, VfAbiError, type VfAbiErrno } from '../../core/manager/vf-abi-error.js';

export type SysfsAttr = 'current_vgpu_type' | 'sriov_numvfs' | 'other';

const HINTS: Record<SysfsAttr, Partial<Record<VfAbiErrno, string>>> = {
  current_vgpu_type: {
    EBUSY: 'a VM holds this VF (its VFIO device is open): stop the VM first',
    ENOSPC: 'the GPU holds as many vGPUs of this type as it can: destroy one, or pick a smaller type',
    EINVAL: 'the GPU hosts one vGPU type at a time: use the type already active (vgpuctl types), or destroy every vGPU first; or the text was not a type id',
    ENODEV: 'this GPU offers no such type id (or the driver cannot create it now): read creatable_vgpu_types',
    ENOENT: 'the VF has no nvidia/ group: is NVIDIA\'s vGPU host driver loaded and the VF bound to nvidia?',
    EACCES: 'run vgpud as root (the attribute is writable by root only)',
    EPERM: 'run vgpud as root (the attribute is writable by root only)',
    EIO: 'the driver failed the request: see the kernel log (dmesg) and nvidia-vgpu-mgr\'s journal',
  },
  sriov_numvfs: {
    EBUSY: 'VFs are enabled already: the count changes only through 0 (write 0 first, with no vGPU on any VF)',
    ERANGE: 'the PF has fewer VFs (sriov_totalvfs)',
    ENOENT: 'the PF\'s driver cannot enable VFs through sriov_numvfs: run /usr/lib/nvidia/sriov-manage -e <PF> (it rebinds the PF through pci-pf-stub, which vgpud does not do)',
    EACCES: 'run vgpud as root', EPERM: 'run vgpud as root',
    ENOMEM: 'the PCI core could not fit the VF BARs: check the BIOS (SR-IOV, above-4G decoding, resizable BAR)',
    EIO: 'the PCI core failed to enable the VFs: see the kernel log (dmesg)',
  },
  other: {},
};

export function kernelError(err: unknown, o: { attr: SysfsAttr; path: string; what: string; details?: Record<string, unknown> }): VgpuError {
  const code = (err as NodeJS.ErrnoException).code;
  const details = { path: o.path, ...o.details };
  if (typeof code === 'string' && VF_ABI_ERRNOS.has(code)) {
    const errno = code as VfAbiErrno;
    return new VfAbiError(errno, `${o.what}: the kernel refused the write of ${o.path} (${errno})`, {
      hint: HINTS[o.attr][errno] ?? `the kernel answered ${errno}; see the kernel log (dmesg)`, details, cause: err,
    });
  }
  const message = err instanceof Error ? err.message : String(err);
  return new VgpuError(code === 'ENOTCONN' ? ErrorCode.GpuLost : ErrorCode.Internal, `${o.what}: ${message}`, {
    hint: code === 'ENOTCONN'
      ? 'the sysfs tree is not reachable (a FUSE mount whose server died): check the root vgpud was given'
      : 'see the daemon log; the write did not complete',
    details: { ...details, ...(code !== undefined ? { errno: code } : {}) }, cause: err,
  });
}

/** A read of the sysfs tree that failed (not "absent"): the tree is unreachable, so the GPU counts as lost. */
export function readError(err: unknown, path: string): VgpuError {
  const code = (err as NodeJS.ErrnoException).code;
  return new VgpuError(ErrorCode.GpuLost, `cannot read ${path}: ${err instanceof Error ? err.message : String(err)}`, {
    hint: 'check that the sysfs root vgpud was given is mounted and readable', details: { path, ...(code !== undefined ? { errno: code } : {}) }, cause: err,
  });
}
