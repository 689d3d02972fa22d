/**
 * `device-filter` PCI ids as NVIDIA's layout files write them (docs/reference/vgpu-device-manager-layouts.md):
 * one 32-bit number, device id in the high 16 bits and vendor id in the low 16, so `0x26B110DE` is device 0x26B1
 * of vendor 0x10DE (NVIDIA/vgpu-device-manager pkg/types/device.go: NewDeviceID, NewDeviceIDFromString parses it
 * with Go's strconv.ParseUint(s, 0, 32), i.e. 0x-hex or decimal). NVIDIA/mig-parted pkg/types/device.go adds an
 * optional subsystem qualifier after a colon, `0x26B110DE:0x16A110DE` (subsystem device, subsystem vendor), which
 * then must match too; without it only device and vendor are compared.
 *
 * NVIDIA ignores a filter string it cannot parse (it matches no GPU, silently). Here it is a validation error:
 * a typo in a filter should not quietly turn an entry into a no-op.
 */
import type { GpuSummary } from '../contracts/vgpu-service.js';

export interface PciIdFilter {
  device: number;
  vendor: number;
  subsystem?: { device: number; vendor: number };
  /** As written in the file, for notes and errors. */
  text: string;
}

const NUMBER = /^(?:0[xX][0-9a-fA-F]{1,8}|[1-9][0-9]{0,9}|0)$/;
/** zod-friendly check of one filter string. */
export const PCI_ID_FILTER_PATTERN = /^\s*(?:0[xX][0-9a-fA-F]{1,8}|[1-9][0-9]{0,9}|0)(?::(?:0[xX][0-9a-fA-F]{1,8}|[1-9][0-9]{0,9}|0))?\s*$/;

/** NVIDIA vendor id, the vendor of every GPU a summary without `pciVendorId` describes. */
export const NVIDIA_VENDOR_ID = 0x10de;

function parse32(s: string): number | undefined {
  if (!NUMBER.test(s)) return undefined;
  const v = Number(s); // Number() reads 0x-hex and decimal exactly like ParseUint(s, 0, 32) for these forms
  return Number.isSafeInteger(v) && v >= 0 && v <= 0xffffffff ? v : undefined;
}

/** Parse one filter string; undefined if it is not `<devvendor>` or `<devvendor>:<subdevsubvendor>`. */
export function parsePciIdFilter(text: string): PciIdFilter | undefined {
  const parts = text.trim().split(':');
  if (parts.length > 2) return undefined;
  const main = parse32(parts[0]!);
  if (main === undefined) return undefined;
  const f: PciIdFilter = { device: main >>> 16, vendor: main & 0xffff, text: text.trim() };
  if (parts.length === 2) {
    const sub = parse32(parts[1]!);
    if (sub === undefined) return undefined;
    f.subsystem = { device: sub >>> 16, vendor: sub & 0xffff };
  }
  return f;
}

/** Does `gpu` match the filter? A filter with a subsystem needs a GPU whose subsystem ids are known and equal. */
export function filterMatches(f: PciIdFilter, gpu: Pick<GpuSummary, 'pciDeviceId' | 'pciVendorId' | 'pciSubsystem'>): boolean {
  if (f.device !== gpu.pciDeviceId || f.vendor !== (gpu.pciVendorId ?? NVIDIA_VENDOR_ID)) return false;
  if (f.subsystem === undefined) return true;
  const s = gpu.pciSubsystem;
  return s !== undefined && s.deviceId === f.subsystem.device && s.vendorId === f.subsystem.vendor;
}

/** "0x26B110DE" for a GPU, the way NVIDIA's tools print a device id (for notes). */
export function pciIdText(gpu: Pick<GpuSummary, 'pciDeviceId' | 'pciVendorId'>): string {
  const hex4 = (n: number): string => n.toString(16).toUpperCase().padStart(4, '0');
  return `0x${hex4(gpu.pciDeviceId)}${hex4(gpu.pciVendorId ?? NVIDIA_VENDOR_ID)}`;
}
