/**
 * PCI configuration space of the simulated PF and its VFs (4 KiB each), as the device presents them: what
 * `lspci -xxxx` of a real board would show, reduced to the registers vgpud and the later VFIO emulation read.
 *
 * PF:  type-0 header; capability list 0x34 → 0x60 Power Management → 0x78 PCI Express (endpoint);
 *      extended capability at 0x100: SR-IOV (id 0x0010, v1) with TotalVFs/NumVFs/VF offset/stride/VF device id
 *      and the VF BAR flag words.
 * VF:  type-0 header, class 0x030200; capability list 0x34 → 0x40 PCI Express v2 (endpoint, FLR capable, used by
 *      the VF FLR of docs/reference/create-order.md; a v2 structure is 0x3C bytes, so it ends at 0x7B) → 0x7C MSI-X
 *      (the window the VFIO emulation passes through, docs/reference/ada-chips.md). The capabilities must not
 *      overlap: QEMU refuses a device whose capabilities do (hw/pci/pci.c pci_add_capability). Simplification: the
 *      PCIe spec has a VF answer 0xFFFF for vendor/device and Linux substitutes the PF's values; the simulated VF
 *      stores what `lspci` finally shows (0x10de / VF device id).
 *
 * Register offsets are the PCI / PCIe specification's.
 */
import type { AdaBoard } from '../chips.js';
import { CLASS_3D_CONTROLLER } from '../chips.js';

export const Cfg = {
  VENDOR_ID: 0x00,
  DEVICE_ID: 0x02,
  COMMAND: 0x04,
  STATUS: 0x06,
  REVISION: 0x08,
  CLASS_PROG_IF: 0x09,
  HEADER_TYPE: 0x0e,
  BAR0: 0x10,
  BAR1: 0x14,
  BAR2: 0x18,
  BAR3: 0x1c,
  BAR4: 0x20,
  BAR5: 0x24,
  SUBSYSTEM_VENDOR_ID: 0x2c,
  SUBSYSTEM_ID: 0x2e,
  CAP_PTR: 0x34,
  INTERRUPT_PIN: 0x3d,
  STATUS_CAP_LIST: 0x0010,
} as const;

export const CAP_ID_PM = 0x01;
export const CAP_ID_PCIE = 0x10;
export const CAP_ID_MSIX = 0x11;
export const EXT_CAP_ID_SRIOV = 0x0010;

/** Where our capabilities sit. */
export const PF_PM_CAP = 0x60;
export const PF_PCIE_CAP = 0x78;
export const SRIOV_CAP = 0x100;
export const VF_PCIE_CAP = 0x40;
export const VF_MSIX_CAP = 0x7c;

/** SR-IOV extended capability register offsets (relative to the capability). */
export const Sriov = {
  HEADER: 0x00,
  CAPABILITIES: 0x04,
  CONTROL: 0x08,
  STATUS: 0x0a,
  INITIAL_VFS: 0x0c,
  TOTAL_VFS: 0x0e,
  NUM_VFS: 0x10,
  FUNC_DEP_LINK: 0x12,
  FIRST_VF_OFFSET: 0x14,
  VF_STRIDE: 0x16,
  VF_DEVICE_ID: 0x1a,
  SUPPORTED_PAGE_SIZES: 0x1c,
  SYSTEM_PAGE_SIZE: 0x20,
  VF_BAR0: 0x24,
  CONTROL_VF_ENABLE: 0x0001,
  CONTROL_VF_MSE: 0x0008,
  CONTROL_ARI: 0x0010,
} as const;

/** BAR flag bits: 32-bit non-prefetchable memory = 0; 64-bit prefetchable memory = 0b1100. */
const BAR_MEM32 = 0x0;
const BAR_MEM64_PREFETCH = 0xc;

/** PCIe Device Capabilities bit 28: Function Level Reset capable. */
const PCIE_DEVCAP_FLR = 1 << 28;
/**
 * PCIe Device Control (capability + 8), bit 15 "Initiate Function Level Reset": the host sets it to reset the
 * function and the bit reads back 0 (Linux drivers/pci/pci.c pcie_flr() sets PCI_EXP_DEVCTL_BCR_FLR and waits
 * 100 ms; QEMU hw/pci/pcie.c pcie_cap_flr_write_config() resets the device and clears the bit).
 */
export const PCIE_DEVCTL = 8;
export const PCIE_DEVCTL_BCR_FLR = 0x8000;
/** MSI-X vectors a VF offers [unverified; simulator choice]. */
const VF_MSIX_VECTORS = 32;

function writeClass(buf: Buffer, classCode: number, revision: number): void {
  buf.writeUInt8(revision, Cfg.REVISION);
  buf.writeUInt8(classCode & 0xff, 0x09); // prog-if
  buf.writeUInt8((classCode >> 8) & 0xff, 0x0a); // subclass
  buf.writeUInt8((classCode >> 16) & 0xff, 0x0b); // base class
}

/** Fill a zeroed 4 KiB buffer with the PF's config space. `numVfs` VFs are enabled (VF Enable + MSE set). */
export function buildPfConfig(buf: Buffer, board: AdaBoard, numVfs: number): void {
  buf.fill(0);
  buf.writeUInt16LE(board.vendorId, Cfg.VENDOR_ID);
  buf.writeUInt16LE(board.deviceId, Cfg.DEVICE_ID);
  buf.writeUInt16LE(0x0006, Cfg.COMMAND); // memory space + bus master, as a bound driver leaves it
  buf.writeUInt16LE(Cfg.STATUS_CAP_LIST, Cfg.STATUS);
  writeClass(buf, CLASS_3D_CONTROLLER, board.revision);
  buf.writeUInt32LE(BAR_MEM32, Cfg.BAR0);
  buf.writeUInt32LE(BAR_MEM64_PREFETCH, Cfg.BAR1);
  buf.writeUInt32LE(BAR_MEM64_PREFETCH, Cfg.BAR3);
  buf.writeUInt16LE(board.subsystemVendorId, Cfg.SUBSYSTEM_VENDOR_ID);
  buf.writeUInt16LE(board.subsystemId, Cfg.SUBSYSTEM_ID);
  buf.writeUInt8(PF_PM_CAP, Cfg.CAP_PTR);
  buf.writeUInt8(1, Cfg.INTERRUPT_PIN); // INTA
  // Power management capability, version 3.
  buf.writeUInt8(CAP_ID_PM, PF_PM_CAP);
  buf.writeUInt8(PF_PCIE_CAP, PF_PM_CAP + 1);
  buf.writeUInt16LE(0x0003, PF_PM_CAP + 2);
  // PCI Express capability v2, endpoint; FLR capable.
  buf.writeUInt8(CAP_ID_PCIE, PF_PCIE_CAP);
  buf.writeUInt8(0, PF_PCIE_CAP + 1);
  buf.writeUInt16LE(0x0002, PF_PCIE_CAP + 2);
  buf.writeUInt32LE(PCIE_DEVCAP_FLR >>> 0, PF_PCIE_CAP + 4);
  // SR-IOV extended capability, version 1, last in the list.
  const s = SRIOV_CAP;
  buf.writeUInt32LE((EXT_CAP_ID_SRIOV | (1 << 16)) >>> 0, s + Sriov.HEADER);
  buf.writeUInt32LE(0, s + Sriov.CAPABILITIES);
  buf.writeUInt16LE(numVfs > 0 ? Sriov.CONTROL_VF_ENABLE | Sriov.CONTROL_VF_MSE | Sriov.CONTROL_ARI : Sriov.CONTROL_ARI,
    s + Sriov.CONTROL);
  buf.writeUInt16LE(board.totalVfs, s + Sriov.INITIAL_VFS);
  buf.writeUInt16LE(board.totalVfs, s + Sriov.TOTAL_VFS);
  buf.writeUInt16LE(numVfs, s + Sriov.NUM_VFS);
  buf.writeUInt16LE(board.firstVfOffset, s + Sriov.FIRST_VF_OFFSET);
  buf.writeUInt16LE(board.vfStride, s + Sriov.VF_STRIDE);
  buf.writeUInt16LE(board.vfDeviceId, s + Sriov.VF_DEVICE_ID);
  buf.writeUInt32LE(0x553, s + Sriov.SUPPORTED_PAGE_SIZES); // 4K, 8K(… ) as common SR-IOV devices report
  buf.writeUInt32LE(0x1, s + Sriov.SYSTEM_PAGE_SIZE); // 4 KiB
  // VF BARs: BAR0 32-bit, BAR1 and BAR3 64-bit prefetchable (each 64-bit BAR takes two dwords).
  buf.writeUInt32LE(BAR_MEM32, s + Sriov.VF_BAR0);
  buf.writeUInt32LE(BAR_MEM64_PREFETCH, s + Sriov.VF_BAR0 + 4);
  buf.writeUInt32LE(BAR_MEM64_PREFETCH, s + Sriov.VF_BAR0 + 12);
}

/** Fill a zeroed 4 KiB buffer with VF `index`'s config space. */
export function buildVfConfig(buf: Buffer, board: AdaBoard): void {
  buf.fill(0);
  buf.writeUInt16LE(board.vendorId, Cfg.VENDOR_ID);
  buf.writeUInt16LE(board.vfDeviceId, Cfg.DEVICE_ID);
  buf.writeUInt16LE(Cfg.STATUS_CAP_LIST, Cfg.STATUS);
  writeClass(buf, CLASS_3D_CONTROLLER, board.revision);
  buf.writeUInt16LE(board.subsystemVendorId, Cfg.SUBSYSTEM_VENDOR_ID);
  buf.writeUInt16LE(board.subsystemId, Cfg.SUBSYSTEM_ID);
  buf.writeUInt8(VF_PCIE_CAP, Cfg.CAP_PTR);
  buf.writeUInt8(CAP_ID_PCIE, VF_PCIE_CAP);
  buf.writeUInt8(VF_MSIX_CAP, VF_PCIE_CAP + 1);
  buf.writeUInt16LE(0x0002, VF_PCIE_CAP + 2); // version 2, endpoint
  buf.writeUInt32LE((PCIE_DEVCAP_FLR | 0x1) >>> 0, VF_PCIE_CAP + 4); // FLR, max payload 256 B [simulator choice]
  // Link capabilities and status: 16 GT/s (PCIe 4.0) x16, as the board's datasheet gives its host interface
  // (RTX 6000 Ada / L40 / L40S: "PCIe Gen 4 x16").
  buf.writeUInt32LE((4 | (16 << 4)) >>> 0, VF_PCIE_CAP + 0x0c);
  buf.writeUInt16LE(4 | (16 << 4), VF_PCIE_CAP + 0x12);
  buf.writeUInt8(CAP_ID_MSIX, VF_MSIX_CAP);
  buf.writeUInt8(0, VF_MSIX_CAP + 1);
  buf.writeUInt16LE(VF_MSIX_VECTORS - 1, VF_MSIX_CAP + 2); // table size − 1
  buf.writeUInt32LE(0x00b90000, VF_MSIX_CAP + 4); // table in BAR0 at 0xB90000 [unverified]
  buf.writeUInt32LE(0x00ba0000, VF_MSIX_CAP + 8); // PBA in BAR0 at 0xBA0000 [unverified]
}

export interface PciIdentity {
  vendorId: number;
  deviceId: number;
  subsystemVendorId: number;
  subsystemId: number;
  classCode: number;
  revision: number;
}

export function readIdentity(buf: Buffer): PciIdentity {
  return {
    vendorId: buf.readUInt16LE(Cfg.VENDOR_ID),
    deviceId: buf.readUInt16LE(Cfg.DEVICE_ID),
    subsystemVendorId: buf.readUInt16LE(Cfg.SUBSYSTEM_VENDOR_ID),
    subsystemId: buf.readUInt16LE(Cfg.SUBSYSTEM_ID),
    classCode: (buf.readUInt8(0x0b) << 16) | (buf.readUInt8(0x0a) << 8) | buf.readUInt8(0x09),
    revision: buf.readUInt8(Cfg.REVISION),
  };
}

export interface SriovInfo {
  totalVfs: number;
  numVfs: number;
  firstVfOffset: number;
  vfStride: number;
  vfDeviceId: number;
}

/** Walk the extended capability list for SR-IOV, as a driver would; undefined when the PF has none. */
export function readSriov(buf: Buffer): SriovInfo | undefined {
  let off = 0x100;
  for (let hops = 0; off >= 0x100 && off < 0x1000 && hops < 64; hops++) {
    const hdr = buf.readUInt32LE(off);
    if (hdr === 0 || hdr === 0xffffffff) return undefined;
    if ((hdr & 0xffff) === EXT_CAP_ID_SRIOV) {
      return {
        totalVfs: buf.readUInt16LE(off + Sriov.TOTAL_VFS),
        numVfs: buf.readUInt16LE(off + Sriov.NUM_VFS),
        firstVfOffset: buf.readUInt16LE(off + Sriov.FIRST_VF_OFFSET),
        vfStride: buf.readUInt16LE(off + Sriov.VF_STRIDE),
        vfDeviceId: buf.readUInt16LE(off + Sriov.VF_DEVICE_ID),
      };
    }
    off = hdr >>> 20;
  }
  return undefined;
}

/** "0000:41:00.0" → numbers; throws on a malformed BDF. */
export function parseBdf(bdf: string): { domain: number; bus: number; device: number; fn: number } {
  const m = /^([0-9a-fA-F]{4}):([0-9a-fA-F]{2}):([0-1][0-9a-fA-F])\.([0-7])$/.exec(bdf);
  if (!m || parseInt(m[3]!, 16) > 0x1f) throw new RangeError(`"${bdf}" is not a PCI address like 0000:41:00.0`);
  return { domain: parseInt(m[1]!, 16), bus: parseInt(m[2]!, 16), device: parseInt(m[3]!, 16), fn: parseInt(m[4]!, 10) };
}

/** BDF of VF `index` (0-based): routing id = PF routing id + firstVfOffset + index × stride (PCIe SR-IOV, ARI). */
export function vfBdf(pfBdf: string, index: number, firstVfOffset: number, stride: number): string {
  const p = parseBdf(pfBdf);
  const rid = (p.bus << 8) + (p.device << 3) + p.fn + firstVfOffset + index * stride;
  const bus = (rid >> 8) & 0xff;
  const devfn = rid & 0xff;
  const hex = (n: number, w: number): string => n.toString(16).padStart(w, '0');
  return `${hex(p.domain, 4)}:${hex(bus, 2)}:${hex(devfn >> 3, 2)}.${devfn & 7}`;
}
