/**
 * The VF's PCI config space as the VMM sees it (region 7): a virtual copy of what the device presents, with the
 * write rules of PCI hardware — read-only fields ignore writes, status error bits are write-1-to-clear, BARs answer
 * sizing writes with their size mask, Bus Master / Memory Space are writable (vfio-pci virtualises a VF's Memory
 * Space Enable the same way), and *Initiate Function Level Reset* starts a reset.
 *
 * The device's own VF config supplies identity and capabilities. The BARs are virtual: a VF's real BAR registers
 * read 0 (the PF's SR-IOV capability sizes them), so, like the upstream RFC's vfio_access.c
 * (docs/reference/ada-chips.md) and vfio-pci, they are emulated here: BAR0 32-bit non-prefetchable, BAR1/2 and BAR3/4
 * 64-bit prefetchable, sizes from the chip table; BAR5 and the expansion ROM are absent. Interrupt Pin is 0 (SR-IOV
 * VFs have no INTx).
 *
 * Accesses of any size and alignment are applied byte by byte against per-byte masks (the way vfio-pci's
 * permission bits work), so a 1-, 2- or 4-byte write to a register composes exactly as on hardware.
 */
import { Errno } from '../protocol/constants.js';
import { refuse } from '../protocol/protocol-error.js';

export const CONFIG_SIZE = 4096;

const PCI_COMMAND = 0x04;
const PCI_STATUS = 0x06;
const PCI_BAR0 = 0x10;
const PCI_CAP_PTR = 0x34;
const PCI_INTERRUPT_LINE = 0x3c;
const PCI_INTERRUPT_PIN = 0x3d;
const PCI_CACHE_LINE = 0x0c;
const CAP_ID_PCIE = 0x10;
const CAP_ID_MSIX = 0x11;

/** Command register bits (PCI Local Bus 3.0 §6.2.2). */
export const Command = { IO: 1 << 0, MEMORY: 1 << 1, MASTER: 1 << 2, PARITY: 1 << 6, SERR: 1 << 8, INTX_DISABLE: 1 << 10 } as const;
/** Status bits that are write-1-to-clear: master data parity error, signaled/received target abort, received
 *  master abort, signaled system error, detected parity error. */
const STATUS_W1C = (1 << 8) | (1 << 11) | (1 << 12) | (1 << 13) | (1 << 14) | (1 << 15);

export interface BarLayout {
  bar0: bigint;
  bar1: bigint;
  bar3: bigint;
}

export interface ConfigEffects {
  /** Bus Master Enable changed to this value. */
  busMaster?: boolean;
  /** Initiate Function Level Reset was written. */
  flr?: boolean;
  /** MSI-X Enable or Function Mask changed. */
  msix?: { enabled: boolean; masked: boolean };
}

export interface Capabilities {
  pcie: number | null;
  msix: number | null;
}

/** Walk the standard capability list (bounded: a corrupt list cannot loop). */
export function findCapabilities(cfg: Uint8Array): Capabilities {
  const out: Capabilities = { pcie: null, msix: null };
  let at = cfg[PCI_CAP_PTR]! & 0xfc;
  for (let hops = 0; at >= 0x40 && at < 0x100 && hops < 48; hops++) {
    const id = cfg[at]!;
    if (id === CAP_ID_PCIE && out.pcie === null) out.pcie = at;
    if (id === CAP_ID_MSIX && out.msix === null) out.msix = at;
    at = cfg[at + 1]! & 0xfc;
  }
  return out;
}

export class PciConfigSpace {
  private readonly bytes = new Uint8Array(CONFIG_SIZE);
  private readonly wmask = new Uint8Array(CONFIG_SIZE);
  private readonly w1c = new Uint8Array(CONFIG_SIZE);
  private readonly powerOn: Uint8Array;
  readonly caps: Capabilities;
  /** Offset of the FLR byte (PCIe Device Control high byte) and its bit. */
  private readonly flrByte: number | null;

  constructor(device: Uint8Array, private readonly bars: BarLayout) {
    if (device.length < 256) throw refuse(Errno.EINVAL, 'device config space shorter than 256 bytes');
    this.bytes.set(device.subarray(0, Math.min(CONFIG_SIZE, device.length)));
    this.caps = findCapabilities(this.bytes);
    // Command 0, Status: capability list only (power-on values).
    this.put16(PCI_COMMAND, 0);
    this.put16(PCI_STATUS, 0x0010);
    // Virtual BARs: only their type bits at power-on.
    this.put32(PCI_BAR0, 0x0);
    this.put32(PCI_BAR0 + 4, 0xc);
    this.put32(PCI_BAR0 + 8, 0x0);
    this.put32(PCI_BAR0 + 12, 0xc);
    this.put32(PCI_BAR0 + 16, 0x0);
    this.put32(PCI_BAR0 + 20, 0x0);
    this.put32(0x30, 0); // no expansion ROM
    this.bytes[PCI_INTERRUPT_PIN] = 0;
    this.bytes[PCI_INTERRUPT_LINE] = 0;
    // Writable bits.
    this.mask16(PCI_COMMAND, Command.MEMORY | Command.MASTER | Command.PARITY | Command.SERR | Command.INTX_DISABLE);
    this.w1c16(PCI_STATUS, STATUS_W1C);
    this.wmask[PCI_CACHE_LINE] = 0xff;
    this.wmask[PCI_INTERRUPT_LINE] = 0xff;
    this.barMask(0, bars.bar0, false);
    this.barMask(1, bars.bar1, true);
    this.barMask(3, bars.bar3, true);
    this.flrByte = null;
    if (this.caps.pcie !== null) {
      const p = this.caps.pcie;
      this.mask16(p + 0x08, 0x7fff); // Device Control; bit 15 (Initiate FLR) is handled on its own
      this.w1c16(p + 0x0a, 0x000f); // Device Status error bits
      this.mask16(p + 0x10, 0x01cb); // Link Control: ASPM, RCB, common clock, extended sync, clock PM
      this.flrByte = p + 0x09;
    }
    if (this.caps.msix !== null) this.mask16(this.caps.msix + 2, 0xc000); // MSI-X Enable, Function Mask
    this.powerOn = Uint8Array.from(this.bytes);
  }

  private put16(at: number, v: number): void {
    this.bytes[at] = v & 0xff;
    this.bytes[at + 1] = (v >> 8) & 0xff;
  }

  private put32(at: number, v: number): void {
    for (let i = 0; i < 4; i++) this.bytes[at + i] = (v >>> (8 * i)) & 0xff;
  }

  private mask16(at: number, m: number): void {
    this.wmask[at] = m & 0xff;
    this.wmask[at + 1] = (m >> 8) & 0xff;
  }

  private w1c16(at: number, m: number): void {
    this.w1c[at] = m & 0xff;
    this.w1c[at + 1] = (m >> 8) & 0xff;
  }

  /** Writable address bits of BAR `index` (and of its upper half for a 64-bit BAR). */
  private barMask(index: number, size: bigint, is64: boolean): void {
    const at = PCI_BAR0 + 4 * index;
    if (size === 0n) return;
    const addrMask = ~(size - 1n) & ((1n << 64n) - 1n);
    const lo = Number(addrMask & 0xfffffff0n);
    for (let i = 0; i < 4; i++) this.wmask[at + i] = (lo >>> (8 * i)) & 0xff;
    if (is64) {
      const hi = Number((addrMask >> 32n) & 0xffffffffn);
      for (let i = 0; i < 4; i++) this.wmask[at + 4 + i] = (hi >>> (8 * i)) & 0xff;
    }
  }

  read(offset: number, count: number): Uint8Array {
    return this.bytes.slice(offset, offset + count);
  }

  get command(): number {
    return this.bytes[PCI_COMMAND]! | (this.bytes[PCI_COMMAND + 1]! << 8);
  }

  get busMaster(): boolean {
    return (this.command & Command.MASTER) !== 0;
  }

  /** MSI-X Enable / Function Mask as the guest set them. */
  get msixControl(): { enabled: boolean; masked: boolean } {
    if (this.caps.msix === null) return { enabled: false, masked: false };
    const hi = this.bytes[this.caps.msix + 3]!;
    return { enabled: (hi & 0x80) !== 0, masked: (hi & 0x40) !== 0 };
  }

  /** Apply a write of `data` at `offset` (already checked to lie inside the 4 KiB). */
  write(offset: number, data: Uint8Array): ConfigEffects {
    const bme = this.busMaster;
    const msix = this.msixControl;
    let flr = false;
    for (let i = 0; i < data.length; i++) {
      const at = offset + i;
      const v = data[i]!;
      if (at === this.flrByte && (v & 0x80) !== 0) flr = true;
      const old = this.bytes[at]!;
      const w = this.wmask[at]!;
      const c = this.w1c[at]!;
      this.bytes[at] = ((old & ~w & ~(v & c)) | (v & w)) & 0xff;
    }
    const effects: ConfigEffects = {};
    if (this.busMaster !== bme) effects.busMaster = this.busMaster;
    const m = this.msixControl;
    if (m.enabled !== msix.enabled || m.masked !== msix.masked) effects.msix = m;
    if (flr) effects.flr = true;
    return effects;
  }

  /** Function Level Reset: config back to power-on (BARs and command included). */
  resetToPowerOn(): void {
    this.bytes.set(this.powerOn);
  }

  /** The BAR sizes this config space decodes. */
  get barSizes(): BarLayout {
    return this.bars;
  }
}
