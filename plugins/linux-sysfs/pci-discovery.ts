/**
 * Find the host's NVIDIA SR-IOV PFs in sysfs and read what the kernel says about them, the way NVIDIA's own tool
 * does (vgpu-device-manager PR #195 pkg/vgpu/vfio/sysfs.go; docs/reference/nvidia-sysfs-host.md):
 *
 * - a GPU is a PCI function with `vendor` 0x10de and `class` 0x030000 (VGA) or 0x030200 (3D controller);
 * - a VF has a `physfn` link; only PFs are GPUs here;
 * - a vGPU-capable PF has `sriov_totalvfs` and its `driver` link ends in `nvidia`;
 * - its VFs are its `virtfnN` links (N = VF index), each to the VF's directory;
 * - the GPU index NVIDIA's tools use (layouts' `devices: [0]`) is the position among the NVIDIA display and 3D PFs
 *   sorted by PCI address (go-nvlib nvpci).
 * Every read is of a file the kernel generates; nothing is written here.
 */
import { basename, join } from 'node:path';
import type { SysfsIo } from './sysfs-io.js';

export const NVIDIA_VENDOR = 0x10de;
export const NVIDIA_DRIVER = 'nvidia';
const GPU_CLASSES = new Set([0x030000, 0x030200]);

export interface HostVf {
  index: number;
  bdf: string;
}

export interface HostPf {
  bdf: string;
  /** `<root>/bus/pci/devices/<bdf>` */
  dir: string;
  vendorId: number;
  deviceId: number;
  subsystemVendorId?: number;
  subsystemId?: number;
  classCode: number;
  /** Index among the host's NVIDIA display/3D PFs by address. */
  index: number;
  driver: string | undefined;
  totalVfs: number;
  numVfs: number;
  vfDeviceId?: number;
  vfs: HostVf[];
}

/** `<root>/bus/pci/devices` */
export function devicesDir(root: string): string {
  return join(root, 'bus', 'pci', 'devices');
}

function hex(io: SysfsIo, path: string): number | undefined {
  const t = io.readText(path)?.trim();
  if (t === undefined || !/^(0x)?[0-9a-f]+$/i.test(t)) return undefined;
  return Number.parseInt(t.replace(/^0x/i, ''), 16);
}

function dec(io: SysfsIo, path: string): number | undefined {
  const t = io.readText(path)?.trim();
  return t === undefined || !/^\d+$/.test(t) ? undefined : Number(t);
}

const addressKey = (bdf: string): number => Number.parseInt(bdf.replace(/[:.]/g, ''), 16);

/** The VFs of a PF from its `virtfnN` links, by index. */
export function readVfs(io: SysfsIo, pfDir: string): HostVf[] {
  const out: HostVf[] = [];
  for (const name of io.list(pfDir)) {
    const m = /^virtfn(\d+)$/.exec(name);
    if (m === null) continue;
    const target = io.readLink(join(pfDir, name));
    if (target === undefined) continue;
    out.push({ index: Number(m[1]), bdf: basename(target).toLowerCase() });
  }
  return out.sort((a, b) => a.index - b.index);
}

/** Read one PF (undefined when it is not an NVIDIA GPU PF with SR-IOV). */
export function readPf(io: SysfsIo, root: string, bdf: string, index = 0): HostPf | undefined {
  const dir = join(devicesDir(root), bdf);
  const vendorId = hex(io, join(dir, 'vendor'));
  const classCode = hex(io, join(dir, 'class'));
  if (vendorId !== NVIDIA_VENDOR || classCode === undefined || !GPU_CLASSES.has(classCode)) return undefined;
  if (io.readLink(join(dir, 'physfn')) !== undefined) return undefined;
  const totalVfs = dec(io, join(dir, 'sriov_totalvfs'));
  if (totalVfs === undefined) return undefined;
  const driverLink = io.readLink(join(dir, 'driver'));
  const subsystemVendorId = hex(io, join(dir, 'subsystem_vendor'));
  const subsystemId = hex(io, join(dir, 'subsystem_device'));
  const vfDeviceId = hex(io, join(dir, 'sriov_vf_device'));
  return {
    bdf: bdf.toLowerCase(), dir, vendorId, deviceId: hex(io, join(dir, 'device')) ?? 0, classCode, index,
    ...(subsystemVendorId !== undefined ? { subsystemVendorId } : {}), ...(subsystemId !== undefined ? { subsystemId } : {}),
    ...(vfDeviceId !== undefined ? { vfDeviceId } : {}),
    driver: driverLink === undefined ? undefined : basename(driverLink),
    totalVfs, numVfs: dec(io, join(dir, 'sriov_numvfs')) ?? 0, vfs: readVfs(io, dir),
  };
}

/**
 * Every NVIDIA GPU PF under `root` bound to the `nvidia` driver with SR-IOV, with its index; `only` restricts the
 * result to those addresses. A PF bound elsewhere (vfio-pci for passthrough, pci-pf-stub half-way through
 * sriov-manage) is not vGPU-capable now and is left out.
 */
export function discoverPfs(io: SysfsIo, root: string, only?: readonly string[]): HostPf[] {
  const gpus: { bdf: string; vendor: number; cls: number }[] = [];
  for (const name of io.list(devicesDir(root))) {
    const dir = join(devicesDir(root), name);
    const vendor = hex(io, join(dir, 'vendor'));
    const cls = hex(io, join(dir, 'class'));
    if (vendor !== NVIDIA_VENDOR || cls === undefined || !GPU_CLASSES.has(cls)) continue;
    if (io.readLink(join(dir, 'physfn')) !== undefined) continue;
    gpus.push({ bdf: name.toLowerCase(), vendor, cls });
  }
  gpus.sort((a, b) => addressKey(a.bdf) - addressKey(b.bdf));
  const out: HostPf[] = [];
  gpus.forEach((g, index) => {
    if (only !== undefined && !only.includes(g.bdf)) return;
    const pf = readPf(io, root, g.bdf, index);
    if (pf !== undefined && pf.driver === NVIDIA_DRIVER) out.push(pf);
  });
  return out;
}
