/**
 * The PF's `sriov_numvfs` attribute as the kernel implements it (Linux drivers/pci/iov.c sriov_numvfs_store;
 * docs/reference/nvidia-sysfs-host.md), once, for every face that takes such a write (the sysfs presenter, the
 * control API) and every backend that carries it out:
 *
 * 1. `kstrtou16(buf, 0, &num_vfs)`: base 0 (so "0x20" and "040" are 32), above 65535 → ERANGE, garbage → EINVAL;
 * 2. more than `sriov_totalvfs` → ERANGE;
 * 3. the current count → nothing to do (success);
 * 4. a PF driver without a `sriov_configure` callback → ENOENT;
 * 5. 0 → the driver disables the VFs;
 * 6. VFs already enabled → EBUSY ("Disable before enabling"): the count changes only through 0;
 * 7. else the driver enables them.
 * A successful write consumes the whole buffer.
 */
import { kstrtoull } from './kstrtox.js';
import { VfAbiError } from './vf-abi-error.js';

/** Parse a `sriov_numvfs` write (`kstrtou16(buf, 0, …)`). */
export function parseNumVfs(text: string): number {
  const r = kstrtoull(text, 0);
  const shown = text.replace(/\0.*$/s, '').replace(/\n/g, '\\n').slice(0, 40);
  if (!r.ok) {
    throw new VfAbiError(r.errno, r.errno === 'ERANGE' ? `"${shown}" is out of range for a VF count` : `"${shown}" is not a VF count`, {
      hint: 'write a number of VFs (0 disables them; sriov_totalvfs is the most)',
    });
  }
  if (r.value > 0xffffn) {
    throw new VfAbiError('ERANGE', `${r.value} does not fit a u16 VF count`, { hint: 'write a number of VFs up to sriov_totalvfs' });
  }
  return Number(r.value);
}

export type NumVfsAction = 'none' | 'disable' | 'enable';

/**
 * What writing `requested` does, given the PF's current and total VF counts and whether its driver can configure
 * SR-IOV; throws the kernel's errno for a refused write.
 */
export function planNumVfs(o: { gpu: string; requested: number; current: number; total: number; driverCanConfigure: boolean }): NumVfsAction {
  const details = { gpu: o.gpu, requested: o.requested, current: o.current, total: o.total };
  if (!Number.isInteger(o.requested) || o.requested < 0 || o.requested > 0xffff) {
    throw new VfAbiError('EINVAL', `${String(o.requested)} is not a VF count`, { hint: 'give an integer from 0 to sriov_totalvfs', details });
  }
  if (o.requested > o.total) {
    throw new VfAbiError('ERANGE', `${o.gpu} has at most ${o.total} VFs (sriov_totalvfs); ${o.requested} asked`, {
      hint: `write a count from 0 to ${o.total}`, details,
    });
  }
  if (o.requested === o.current) return 'none';
  if (!o.driverCanConfigure) {
    throw new VfAbiError('ENOENT', `the driver of ${o.gpu} cannot configure SR-IOV through sriov_numvfs`, {
      hint: 'enable the VFs the way the driver documents (NVIDIA: /usr/lib/nvidia/sriov-manage -e <PF>)', details,
    });
  }
  if (o.requested === 0) return 'disable';
  if (o.current !== 0) {
    throw new VfAbiError('EBUSY', `${o.current} VFs are already enabled on ${o.gpu}; disable them (write 0) before enabling ${o.requested}`, {
      hint: 'write 0 to sriov_numvfs first (only while no VF holds a vGPU), then the new count', details,
    });
  }
  return 'enable';
}
