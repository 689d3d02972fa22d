/**
 * The sysfs tree vgpud presents for the GPUs it drives itself — the part NVIDIA's kernel driver plays on a real host
 * (docs/reference/nvidia-sysfs-host.md) — as a FuseTree over the VgpuService, so tools written for the kernel's
 * sysfs (NVIDIA's vgpu-device-manager, KubeVirt, a shell) run against the simulated host:
 *
 *   bus/pci/devices/<PF>/      vendor device subsystem_vendor subsystem_device class sriov_totalvfs sriov_numvfs
 *                              sriov_vf_device driver -> ../../drivers/nvidia  virtfnN -> ../<VF>
 *   bus/pci/devices/<VF>/      vendor device class physfn -> ../<PF>  driver -> ../../drivers/nvidia
 *   bus/pci/devices/<VF>/nvidia/{creatable_vgpu_types,current_vgpu_type}
 *   bus/pci/drivers/nvidia/<BDF> -> ../../devices/<BDF>
 *   module/nvidia/version
 *
 * The root is a sysfs root: point a sysfs backend (plugins.linux-sysfs.root) at the mount and it finds the GPUs as it
 * would under /sys. The device directories sit directly under bus/pci/devices (the kernel links them there from
 * /sys/devices/…); the relative links resolve the same way.
 *
 * Nothing about the per-VF ABI is written here: its text and errnos are the VgpuService's (core/manager/vf-type-abi.ts
 * behind readVfAttribute/writeVfAttribute), `sriov_numvfs` parses and checks as the kernel does
 * (core/manager/sriov-numvfs-abi.ts). Formats of the PCI attributes: Linux drivers/pci/pci-sysfs.c (`0x%04x`
 * ids, `0x%06x` class) and drivers/pci/iov.c (`%u` counts, `%x` VF device id).
 */
import { ErrorCode, isVgpuError } from '../../core/contracts/exceptions.js';
import type { GpuSummary, VfInfo, VgpuService } from '../../core/contracts/vgpu-service.js';
import { parseNumVfs } from '../../core/manager/sriov-numvfs-abi.js';
import { ERRNO_NUMBER, VfAbiError } from '../../core/manager/vf-abi-error.js';
import { FuseError, type FuseTree, type NodeStat } from './fuse-tree.js';

/** sysfs's st_size of every attribute file (PAGE_SIZE), whatever a read returns. */
const ATTR_SIZE = 4096;
const DIR: NodeStat = { kind: 'dir', perm: 0o755, size: 0 };
const DRIVER = 'nvidia';
/** The backend whose GPUs the kernel drives: presenting them again would be a second sysfs over the first. */
const KERNEL_BACKEND = 'linux-sysfs';

type Device = { kind: 'pf'; gpu: GpuSummary; vfs: VfInfo[] } | { kind: 'vf'; gpu: GpuSummary; vf: VfInfo };

interface Attribute {
  perm: number;
  read: () => string;
  write?: (text: string) => Promise<void> | void;
}

const hex4 = (n: number): string => `0x${n.toString(16).padStart(4, '0')}\n`;

/** The errno a failed service call gives the writer or reader, as the kernel attribute would. */
export function errnoOf(e: unknown): number {
  if (e instanceof VfAbiError) return ERRNO_NUMBER[e.errno];
  if (!isVgpuError(e)) return ERRNO_NUMBER.EIO;
  switch (e.code) {
    case ErrorCode.NotFound: return ERRNO_NUMBER.ENOENT;
    case ErrorCode.InvalidArgument: return ERRNO_NUMBER.EINVAL;
    case ErrorCode.UnknownType: return ERRNO_NUMBER.ENODEV;
    case ErrorCode.Busy: case ErrorCode.IllegalState: return ERRNO_NUMBER.EBUSY;
    case ErrorCode.NoSpace: return ERRNO_NUMBER.ENOSPC;
    case ErrorCode.OutOfMemory: return ERRNO_NUMBER.ENOMEM;
    case ErrorCode.PermissionDenied: return ERRNO_NUMBER.EACCES;
    case ErrorCode.GpuLost: return ERRNO_NUMBER.ENODEV;
    default: return ERRNO_NUMBER.EIO;
  }
}

export class SysfsTree implements FuseTree {
  constructor(private readonly service: VgpuService) {}

  stat(path: string): NodeStat | undefined {
    const p = this.parse(path);
    if (p === undefined) return undefined;
    if (p.kind === 'dir') return DIR;
    if (p.kind === 'link') return { kind: 'link', perm: 0o777, size: Buffer.byteLength(p.target) };
    return { kind: 'file', perm: p.attr.perm, size: ATTR_SIZE };
  }

  list(path: string): string[] | undefined {
    const p = this.parse(path);
    return p?.kind === 'dir' ? p.children() : undefined;
  }

  readlink(path: string): string | undefined {
    const p = this.parse(path);
    return p?.kind === 'link' ? p.target : undefined;
  }

  read(path: string): Buffer {
    const p = this.parse(path);
    if (p?.kind !== 'file') throw new FuseError(p === undefined ? ERRNO_NUMBER.ENOENT : ERRNO_NUMBER.EISDIR, `${path} is not a file`);
    try {
      return Buffer.from(p.attr.read(), 'latin1');
    } catch (e) {
      throw new FuseError(errnoOf(e), e instanceof Error ? e.message : String(e));
    }
  }

  async write(path: string, data: Buffer): Promise<number> {
    const p = this.parse(path);
    if (p?.kind !== 'file') throw new FuseError(ERRNO_NUMBER.ENOENT, `${path} is not a file`);
    if (p.attr.write === undefined) throw new FuseError(ERRNO_NUMBER.EACCES, `${path} is read-only`);
    try {
      // Bytes as the store sees them (latin1 keeps one char per byte, so the count is the byte count).
      await p.attr.write(data.toString('latin1'));
    } catch (e) {
      throw new FuseError(errnoOf(e), e instanceof Error ? e.message : String(e));
    }
    return data.length;
  }

  // ---- the layout ----

  /** The GPUs vgpud drives itself (those the kernel drives have their own sysfs). */
  private presented(): GpuSummary[] {
    return this.service.gpus().filter((g) => g.backend !== KERNEL_BACKEND);
  }

  private devices(): Map<string, Device> {
    const out = new Map<string, Device>();
    for (const gpu of this.presented()) {
      const vfs = this.service.vfs?.(gpu.bdf) ?? [];
      out.set(gpu.bdf.toLowerCase(), { kind: 'pf', gpu, vfs });
      for (const vf of vfs) out.set(vf.bdf.toLowerCase(), { kind: 'vf', gpu, vf });
    }
    return out;
  }

  private parse(path: string):
    | { kind: 'dir'; children: () => string[] }
    | { kind: 'link'; target: string }
    | { kind: 'file'; attr: Attribute }
    | undefined {
    const parts = path === '' ? [] : path.split('/');
    const dir = (children: () => string[]) => ({ kind: 'dir' as const, children });
    const [a, b, c, d, e, f] = parts;
    if (parts.length === 0) return dir(() => ['bus', 'module']);
    if (a === 'module') {
      if (parts.length === 1) return dir(() => [DRIVER]);
      if (b !== DRIVER) return undefined;
      if (parts.length === 2) return dir(() => ['version']);
      if (parts.length === 3 && c === 'version') return { kind: 'file', attr: { perm: 0o444, read: () => `${this.presented()[0]?.firmwareVersion ?? ''}\n` } };
      return undefined;
    }
    if (a !== 'bus') return undefined;
    if (parts.length === 1) return dir(() => ['pci']);
    if (b !== 'pci') return undefined;
    if (parts.length === 2) return dir(() => ['devices', 'drivers']);
    if (c === 'drivers') {
      if (parts.length === 3) return dir(() => [DRIVER]);
      if (d !== DRIVER) return undefined;
      if (parts.length === 4) return dir(() => [...this.devices().keys()].sort());
      if (parts.length === 5 && this.devices().has(e!)) return { kind: 'link', target: `../../devices/${e!}` };
      return undefined;
    }
    if (c !== 'devices') return undefined;
    if (parts.length === 3) return dir(() => [...this.devices().keys()].sort());
    const dev = this.devices().get(d!);
    if (dev === undefined) return undefined;
    if (parts.length === 4) return dir(() => this.deviceEntries(dev));
    if (dev.kind === 'vf' && e === DRIVER) {
      if (parts.length === 5) return dir(() => ['creatable_vgpu_types', 'current_vgpu_type']);
      if (parts.length !== 6) return undefined;
      const vf = dev.vf.bdf;
      if (f === 'creatable_vgpu_types') return { kind: 'file', attr: { perm: 0o444, read: () => this.service.readVfAttribute(vf, 'creatable_vgpu_types') } };
      if (f === 'current_vgpu_type') {
        return {
          kind: 'file', attr: {
            perm: 0o644, read: () => this.service.readVfAttribute(vf, 'current_vgpu_type'),
            write: (text) => this.service.writeVfAttribute(vf, 'current_vgpu_type', text),
          },
        };
      }
      return undefined;
    }
    if (parts.length !== 5) return undefined;
    return this.deviceNode(dev, e!);
  }

  private deviceEntries(dev: Device): string[] {
    const out = ['vendor', 'device', 'driver'];
    if (dev.gpu.pciClass !== undefined) out.push('class');
    if (dev.kind === 'pf') {
      if (dev.gpu.pciSubsystem !== undefined) out.push('subsystem_vendor', 'subsystem_device');
      out.push('sriov_totalvfs', 'sriov_numvfs');
      if (dev.vfs[0]?.deviceId !== undefined) out.push('sriov_vf_device');
      for (const vf of dev.vfs) out.push(`virtfn${vf.index}`);
    } else {
      out.push('physfn', DRIVER);
    }
    return out.sort();
  }

  private deviceNode(dev: Device, name: string): { kind: 'link'; target: string } | { kind: 'file'; attr: Attribute } | undefined {
    const g = dev.gpu;
    const ro = (read: () => string) => ({ kind: 'file' as const, attr: { perm: 0o444, read } });
    if (!this.deviceEntries(dev).includes(name)) return undefined;
    switch (name) {
      case 'vendor': return ro(() => hex4(g.pciVendorId ?? 0x10de));
      case 'device': return ro(() => hex4(dev.kind === 'pf' ? g.pciDeviceId : dev.vf.deviceId ?? g.pciDeviceId));
      case 'class': return ro(() => `0x${g.pciClass!.toString(16).padStart(6, '0')}\n`);
      case 'driver': return { kind: 'link', target: `../../drivers/${DRIVER}` };
      case 'subsystem_vendor': return ro(() => hex4(g.pciSubsystem!.vendorId));
      case 'subsystem_device': return ro(() => hex4(g.pciSubsystem!.deviceId));
      case 'sriov_totalvfs': return ro(() => `${g.totalVfs}\n`);
      case 'sriov_vf_device': return ro(() => `${(dev as { vfs: VfInfo[] }).vfs[0]!.deviceId!.toString(16)}\n`);
      case 'sriov_numvfs':
        return {
          kind: 'file', attr: {
            perm: 0o664, read: () => `${this.currentNumVfs(g.bdf)}\n`,
            write: async (text) => {
              const n = parseNumVfs(text);
              if (this.service.configureVfs === undefined) throw new VfAbiError('ENOENT', 'the driver cannot configure SR-IOV', { hint: 'none' });
              await this.service.configureVfs(g.bdf, n);
            },
          },
        };
      case 'physfn': return { kind: 'link', target: `../${g.bdf.toLowerCase()}` };
      default: {
        const m = /^virtfn(\d+)$/.exec(name);
        const vf = m === null || dev.kind !== 'pf' ? undefined : dev.vfs.find((v) => v.index === Number(m[1]));
        return vf === undefined ? undefined : { kind: 'link', target: `../${vf.bdf.toLowerCase()}` };
      }
    }
  }

  private currentNumVfs(gpu: string): number {
    return this.service.gpus().find((g) => g.bdf === gpu)?.numVfs ?? this.service.vfs?.(gpu).length ?? 0;
  }
}
