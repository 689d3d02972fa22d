/**
 * What a guest OS learns from the device's config space (region 7, trapped), the way Linux learns it:
 * the type-0 header, the capability list, the extended capabilities, and each BAR's size by writing all-ones and
 * reading back what the hardware keeps (drivers/pci/probe.c __pci_read_base, with memory decoding off while
 * sizing, as pci_read_bases does). Register offsets and bits: the PCI Local Bus / PCI Express base specifications
 * as Linux's include/uapi/linux/pci_regs.h names them.
 */
import type { VfioUserClient } from '../vfio-user-client.js';

/** include/uapi/linux/pci_regs.h offsets and bits used here. */
export const Pci = {
  VENDOR_ID: 0x00,
  DEVICE_ID: 0x02,
  COMMAND: 0x04,
  STATUS: 0x06,
  REVISION_ID: 0x08,
  CLASS_PROG: 0x09,
  HEADER_TYPE: 0x0e,
  BASE_ADDRESS_0: 0x10,
  SUBSYSTEM_VENDOR_ID: 0x2c,
  SUBSYSTEM_ID: 0x2e,
  ROM_ADDRESS: 0x30,
  CAPABILITY_LIST: 0x34,
  INTERRUPT_PIN: 0x3d,
  COMMAND_IO: 0x1,
  COMMAND_MEMORY: 0x2,
  COMMAND_MASTER: 0x4,
  COMMAND_INTX_DISABLE: 0x400,
  STATUS_CAP_LIST: 0x10,
  BASE_ADDRESS_SPACE_IO: 0x1,
  BASE_ADDRESS_MEM_TYPE_MASK: 0x6,
  BASE_ADDRESS_MEM_TYPE_64: 0x4,
  BASE_ADDRESS_MEM_PREFETCH: 0x8,
  ROM_ADDRESS_MASK: 0xfffff800,
  CAP_ID_EXP: 0x10,
  CAP_ID_MSIX: 0x11,
  // PCI Express capability (offsets from the capability)
  EXP_FLAGS: 0x02,
  EXP_DEVCAP: 0x04,
  EXP_DEVCTL: 0x08,
  EXP_DEVCAP_FLR: 1 << 28,
  EXP_DEVCTL_BCR_FLR: 0x8000,
  // MSI-X capability (offsets from the capability)
  MSIX_FLAGS: 0x02,
  MSIX_TABLE: 0x04,
  MSIX_PBA: 0x08,
  MSIX_FLAGS_QSIZE: 0x07ff,
  MSIX_FLAGS_MASKALL: 0x4000,
  MSIX_FLAGS_ENABLE: 0x8000,
  MSIX_BIR_MASK: 0x7,
  EXT_CAP_START: 0x100,
} as const;

/** Linux stops a capability walk after 48 entries (drivers/pci/pci.c PCI_FIND_CAP_TTL): a loop cannot hang it. */
const CAP_TTL = 48;

export interface BarInfo {
  index: number;
  /** 0 = not implemented (reads 0 after writing all-ones). */
  size: bigint;
  is64: boolean;
  prefetchable: boolean;
  io: boolean;
  /** What the BAR read before sizing, and after its value was put back. */
  before: number;
  after: number;
}

export interface MsixCap {
  at: number;
  tableSize: number;
  tableBar: number;
  tableOffset: number;
  pbaBar: number;
  pbaOffset: number;
}

export interface PcieCap {
  at: number;
  version: number;
  /** Device/port type (0 = PCI Express endpoint). */
  type: number;
  flr: boolean;
}

export interface ConfigWalk {
  vendor: number;
  device: number;
  command: number;
  status: number;
  revision: number;
  classCode: number;
  headerType: number;
  subsystemVendor: number;
  subsystem: number;
  interruptPin: number;
  /** Standard capabilities in list order: id and offset. */
  caps: { id: number; at: number }[];
  /** Extended capabilities from 0x100 (empty when 0x100 reads 0). */
  extCaps: { id: number; at: number }[];
  pcie: PcieCap | undefined;
  msix: MsixCap | undefined;
}

export async function walkConfig(c: VfioUserClient): Promise<ConfigWalk> {
  const status = await c.config(Pci.STATUS, 2);
  const caps: { id: number; at: number }[] = [];
  if ((status & Pci.STATUS_CAP_LIST) !== 0) {
    const seen = new Set<number>();
    let at = (await c.config(Pci.CAPABILITY_LIST, 1)) & 0xfc;
    for (let ttl = CAP_TTL; at >= 0x40 && ttl > 0; ttl--) {
      if (seen.has(at)) throw new Error(`config space capability list loops back to 0x${at.toString(16)}`);
      seen.add(at);
      const id = await c.config(at, 1);
      caps.push({ id, at });
      at = (await c.config(at + 1, 1)) & 0xfc;
    }
  }
  const extCaps: { id: number; at: number }[] = [];
  for (let at: number = Pci.EXT_CAP_START, ttl = 480; at !== 0 && ttl > 0; ttl--) {
    const h = await c.config(at, 4);
    if (h === 0 || h === 0xffffffff) break;
    extCaps.push({ id: h & 0xffff, at });
    at = (h >>> 20) & 0xffc;
    if (at !== 0 && at < Pci.EXT_CAP_START) break;
  }
  let pcie: PcieCap | undefined;
  const exp = caps.find((x) => x.id === Pci.CAP_ID_EXP);
  if (exp !== undefined) {
    const flags = await c.config(exp.at + Pci.EXP_FLAGS, 2);
    const devcap = await c.config(exp.at + Pci.EXP_DEVCAP, 4);
    pcie = { at: exp.at, version: flags & 0xf, type: (flags >> 4) & 0xf, flr: (devcap & Pci.EXP_DEVCAP_FLR) !== 0 };
  }
  let msix: MsixCap | undefined;
  const mx = caps.find((x) => x.id === Pci.CAP_ID_MSIX);
  if (mx !== undefined) {
    const flags = await c.config(mx.at + Pci.MSIX_FLAGS, 2);
    const table = await c.config(mx.at + Pci.MSIX_TABLE, 4);
    const pba = await c.config(mx.at + Pci.MSIX_PBA, 4);
    msix = {
      at: mx.at, tableSize: (flags & Pci.MSIX_FLAGS_QSIZE) + 1,
      tableBar: table & Pci.MSIX_BIR_MASK, tableOffset: table & ~Pci.MSIX_BIR_MASK, pbaBar: pba & Pci.MSIX_BIR_MASK, pbaOffset: pba & ~Pci.MSIX_BIR_MASK,
    };
  }
  const classRev = await c.config(Pci.REVISION_ID, 4);
  return {
    vendor: await c.config(Pci.VENDOR_ID, 2),
    device: await c.config(Pci.DEVICE_ID, 2),
    command: await c.config(Pci.COMMAND, 2),
    status,
    revision: classRev & 0xff,
    classCode: classRev >>> 8,
    headerType: await c.config(Pci.HEADER_TYPE, 1),
    subsystemVendor: await c.config(Pci.SUBSYSTEM_VENDOR_ID, 2),
    subsystem: await c.config(Pci.SUBSYSTEM_ID, 2),
    interruptPin: await c.config(Pci.INTERRUPT_PIN, 1),
    caps,
    extCaps,
    pcie,
    msix,
  };
}

/**
 * Size the six BARs as Linux does: memory decoding off, write all-ones, read back, put the old value back (and
 * decoding as it was). A 64-bit BAR takes the next slot as its upper half.
 */
export async function sizeBars(c: VfioUserClient): Promise<BarInfo[]> {
  const cmd = await c.config(Pci.COMMAND, 2);
  await c.setConfig(Pci.COMMAND, 2, cmd & ~(Pci.COMMAND_MEMORY | Pci.COMMAND_IO));
  const bars: BarInfo[] = [];
  try {
    for (let i = 0; i < 6; i++) {
      const off = Pci.BASE_ADDRESS_0 + 4 * i;
      const before = await c.config(off, 4);
      await c.setConfig(off, 4, 0xffffffff);
      const lo = await c.config(off, 4);
      await c.setConfig(off, 4, before);
      const io = (lo & Pci.BASE_ADDRESS_SPACE_IO) !== 0;
      const is64 = !io && (lo & Pci.BASE_ADDRESS_MEM_TYPE_MASK) === Pci.BASE_ADDRESS_MEM_TYPE_64 && i < 5;
      let hiBefore = 0;
      let size: bigint;
      if (io) {
        const m = (lo & 0xfffffffc) >>> 0;
        size = m === 0 ? 0n : BigInt(((~m) >>> 0) + 1);
      } else if (is64) {
        hiBefore = await c.config(off + 4, 4);
        await c.setConfig(off + 4, 4, 0xffffffff);
        const hi = await c.config(off + 4, 4);
        await c.setConfig(off + 4, 4, hiBefore);
        const m = (BigInt(hi >>> 0) << 32n) | BigInt((lo & 0xfffffff0) >>> 0);
        size = m === 0n ? 0n : ((~m) & 0xffffffffffffffffn) + 1n;
      } else {
        const m = (lo & 0xfffffff0) >>> 0;
        size = m === 0 ? 0n : BigInt(((~m) >>> 0) + 1);
      }
      bars.push({ index: i, size, is64, prefetchable: (lo & Pci.BASE_ADDRESS_MEM_PREFETCH) !== 0, io, before, after: await c.config(off, 4) });
      if (is64) {
        bars.push({ index: i + 1, size: 0n, is64: false, prefetchable: false, io: false, before: hiBefore, after: await c.config(off + 4, 4) });
        i++;
      }
    }
  } finally {
    await c.setConfig(Pci.COMMAND, 2, cmd);
  }
  return bars;
}

/** The expansion ROM's size by the same rule (0 = no ROM). */
export async function sizeRom(c: VfioUserClient): Promise<bigint> {
  const before = await c.config(Pci.ROM_ADDRESS, 4);
  await c.setConfig(Pci.ROM_ADDRESS, 4, Pci.ROM_ADDRESS_MASK);
  const v = (await c.config(Pci.ROM_ADDRESS, 4)) & Pci.ROM_ADDRESS_MASK;
  await c.setConfig(Pci.ROM_ADDRESS, 4, before);
  return v === 0 ? 0n : BigInt(((~v) >>> 0) + 1);
}
