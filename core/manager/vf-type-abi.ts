/**
 * The per-VF admin ABI of the upstream driver's sysfs group `nvidia/` (RFC v2 drivers/vfio/pci/nvidia-vgpu/
 * vfio_sysfs.c; docs/reference/sysfs-abi.md), byte for byte:
 * `creatable_vgpu_types` (read) and `current_vgpu_type` (read/write). Front ends (a FUSE/sysfs shim, the HTTP API,
 * the CLI) call these and return the text or the errno unchanged, so tools written for the kernel ABI work.
 *
 * Format (vfio_sysfs.c): header "ID    : vGPU Name\n", then per type `sprintf("%-5d : %s\n", id, name)` — the id
 * left-justified in 5 columns (wider ids are not cut), " : ", the name, a newline.
 */
import type { VgpuTypeRecord } from '../metadata/metadata-file.js';
import type { TypePolicy } from './type-policy.js';
import { kstrtoull } from './kstrtox.js';
import { VfAbiError } from './vf-abi-error.js';

export const CREATABLE_HEADER = 'ID    : vGPU Name\n';

/** One line of `creatable_vgpu_types`: C `%-5d : %s\n`. */
export function creatableLine(type: Pick<VgpuTypeRecord, 'id' | 'name'>): string {
  return `${String(type.id).padEnd(5, ' ')} : ${type.name}\n`;
}

export interface VfTypeAbiOptions {
  /** True while the VF's VFIO device is open (a vGPU exists): its type cannot change then (EBUSY). */
  isVfOpen(vf: number): boolean;
  /** Number of VFs currently enabled (sriov_numvfs): VF indexes 0..n−1 have the files. */
  vfCount(): number;
}

/**
 * Parse a `current_vgpu_type` write as upstream does: `kstrtoul(buf, 10, &id)` (RFC v2 vfio_sysfs.c), i.e. the
 * kernel's `kstrtoull` in base 10 on a 64-bit kernel (core/manager/kstrtox.ts: an optional '+', decimal digits, at
 * most one '\n'; overflow is ERANGE, checked before the trailing characters, so "99999999999999999999x" is ERANGE,
 * not EINVAL). The result is a full unsigned long: an id above 2^32−1 parses, and then matches no (u32) type id.
 */
export function parseTypeId(text: string): bigint {
  const r = kstrtoull(text, 10);
  if (r.ok) return r.value;
  const nul = text.indexOf('\0');
  const shown = (nul < 0 ? text : text.slice(0, nul)).replace(/\n/g, '\\n');
  if (r.errno === 'ERANGE') {
    throw new VfAbiError('ERANGE', `"${shown}" overflows an unsigned long`, { hint: 'write a type id from creatable_vgpu_types' });
  }
  throw new VfAbiError('EINVAL', `"${shown}" is not a decimal vGPU type id`, {
    hint: 'write a type id from creatable_vgpu_types, or 0 to deselect',
  });
}

export class VfTypeAbi {
  constructor(
    private readonly policy: () => TypePolicy,
    private readonly opts: VfTypeAbiOptions,
  ) {}

  /**
   * `creatable_vgpu_types`. Homogeneous (upstream, RFC v2 vfio_sysfs.c): the header plus EVERY type of the metadata
   * while no type is active — ECC-incapable types too: upstream does not hide them, their create fails (ENODEV);
   * once a type is active, only its line (no header) while instances < max_instance; empty when this VF has a type.
   * Heterogeneous (this project's extension): the header plus each type that can still be created (count, FB and
   * heap room, ECC), or empty when none can.
   */
  readCreatable(vf: number): string {
    this.checkVf(vf);
    const p = this.policy();
    if (p.policy === 'homogeneous' && p.activeType() === null && p.selectionOf(vf) === undefined) {
      return CREATABLE_HEADER + p.types.map(creatableLine).join('');
    }
    const types = p.selectable(vf);
    if (types.length === 0) return '';
    const lines = types.map(creatableLine).join('');
    if (p.policy === 'homogeneous' && p.activeType() !== null) return lines;
    return CREATABLE_HEADER + lines;
  }

  /** `current_vgpu_type`: the VF's type id and a newline, "0\n" when none. */
  readCurrent(vf: number): string {
    this.checkVf(vf);
    return `${this.policy().selectionOf(vf)?.type.id ?? 0}\n`;
  }

  /**
   * Write `current_vgpu_type`. Returns the number of bytes consumed (the whole write, as sysfs store does).
   * Errors (VfAbiError.errno): EINVAL/ERANGE parse; EBUSY the VF is open; ENODEV unknown type (an ECC-incapable
   * type is accepted here in homogeneous mode, as upstream accepts it: creating its vGPU fails with ENODEV);
   * EINVAL a different type in homogeneous mode, or a VF that already has another type; ENOSPC no room.
   */
  writeCurrent(vf: number, text: string): number {
    const parsed = parseTypeId(text);
    this.checkVf(vf);
    if (this.opts.isVfOpen(vf)) {
      throw new VfAbiError('EBUSY', `VF ${vf} is open (its vGPU is running); its type cannot change`, {
        hint: 'stop the VM (close the VFIO device) first', details: { vf },
      });
    }
    const p = this.policy();
    if (parsed === 0n) p.deselect(vf);
    else if (parsed > 0xffff_ffffn) {
      // Upstream compares the u32 type ids with the unsigned long: nothing matches, find_vgpu_type() → -ENODEV.
      throw new VfAbiError('ENODEV', `vGPU type ${parsed} is not installed on this GPU`, {
        hint: 'read creatable_vgpu_types for the ids this GPU offers', details: { vf, typeId: String(parsed) },
      });
    } else p.select(vf, Number(parsed));
    return Buffer.byteLength(text);
  }

  private checkVf(vf: number): void {
    const n = this.opts.vfCount();
    if (!Number.isInteger(vf) || vf < 0 || vf >= n) {
      throw new VfAbiError('ENOENT', `VF ${vf} does not exist (${n} VFs enabled)`, {
        hint: 'enable more VFs (sriov_numvfs) or use an index below the VF count', details: { vf, vfCount: n },
      });
    }
  }
}
