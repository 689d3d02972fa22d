/**
 * The per-VF admin ABI of the upstream driver's sysfs group `nvidia/` (seed spec §3.5), byte for byte:
 * `creatable_vgpu_types` (read) and `current_vgpu_type` (read/write). Front ends (a FUSE/sysfs shim, the HTTP API,
 * the CLI) call these and return the text or the errno unchanged, so tools written for the kernel ABI work.
 *
 * Format (vfio_sysfs.c): header "ID    : vGPU Name\n", then per type `sprintf("%-5d : %s\n", id, name)` — the id
 * left-justified in 5 columns (wider ids are not cut), " : ", the name, a newline.
 */
import type { VgpuTypeRecord } from '../metadata/metadata-file.js';
import type { TypePolicy } from './type-policy.js';
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

/** Largest value `kstrtou32` accepts. */
const U32_MAX = 0xffff_ffff;

/**
 * Parse like the kernel's kstrtou32(buf, 10): optional '+', decimal digits, one optional trailing newline; nothing
 * else (no spaces, no sign '-'). Overflow is ERANGE, anything malformed EINVAL.
 */
export function parseTypeId(text: string): number {
  const m = /^\+?([0-9]+)\n?$/.exec(text);
  if (m === null) {
    throw new VfAbiError('EINVAL', `"${text.replace(/\n/g, '\\n')}" is not a decimal vGPU type id`, {
      hint: 'write a type id from creatable_vgpu_types, or 0 to deselect',
    });
  }
  const digits = m[1]!;
  const value = Number(digits);
  if (digits.length > 10 || value > U32_MAX) {
    throw new VfAbiError('ERANGE', `${digits} does not fit a 32-bit type id`, { hint: 'write a type id from creatable_vgpu_types' });
  }
  return value;
}

export class VfTypeAbi {
  constructor(
    private readonly policy: () => TypePolicy,
    private readonly opts: VfTypeAbiOptions,
  ) {}

  /**
   * `creatable_vgpu_types`. Homogeneous (upstream): the header plus every type while no type is active; once one
   * is, only its line (no header) while instances < max_instance; empty when this VF has a type or the GPU is
   * full. Heterogeneous: the header plus each type that still fits (count, FB room), or empty when none fits.
   */
  readCreatable(vf: number): string {
    this.checkVf(vf);
    const p = this.policy();
    const types = p.creatable(vf);
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
   * Errors (VfAbiError.errno): EINVAL/ERANGE parse; EBUSY the VF is open; ENODEV unknown (or ECC-incapable) type;
   * EINVAL a different type in homogeneous mode, or a VF that already has another type; ENOSPC no room.
   */
  writeCurrent(vf: number, text: string): number {
    const id = parseTypeId(text);
    this.checkVf(vf);
    if (this.opts.isVfOpen(vf)) {
      throw new VfAbiError('EBUSY', `VF ${vf} is open (its vGPU is running); its type cannot change`, {
        hint: 'stop the VM (close the VFIO device) first', details: { vf },
      });
    }
    const p = this.policy();
    if (id === 0) p.deselect(vf);
    else p.select(vf, id);
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
