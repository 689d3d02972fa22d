/**
 * One vGPU's VF as a vfio-user PCI device (server/vfio-user-device.ts): config space emulated here
 * (pci-config-space.ts), BAR0 and BAR3 trapped to the device model (GuestVf, the HAL's guest side), BAR1 the vGPU's
 * FB slice — mmap-able through a descriptor of the device's FB file — MSI-X/ERR/REQ through eventfds
 * (irq-lines.ts), reset and migration through the manager (manager-link.ts).
 *
 * BAR1: offset x is FB byte x of the slice for x < min(BAR1 size, slice size); the sparse-mmap area is exactly that
 * span and the region's mmap offset is the slice's offset in the FB file. Past the slice BAR1 reads zeros and drops
 * writes, so the guest cannot reach another vGPU's memory.
 */
import type { GuestVf } from '../../../core/contracts/guest-port.js';
import type { Logger } from '../../../core/contracts/logger.js';
import type { FdOps } from '../../../native/fd-ops.js';
import { DeviceFlags, Errno, Feature, FeatureFlags, IrqIndex, MigDeviceState, NUM_IRQS, NUM_REGIONS, RegionIndex } from '../protocol/constants.js';
import { refuse } from '../protocol/protocol-error.js';
import { checkFeature } from '../server/handlers/feature-handlers.js';
import type { ClientInfo, DmaPort, IrqInfo, IrqSetRequest, RegionInfo, VfioUserDevice } from '../server/vfio-user-device.js';
import { IrqLines } from './irq-lines.js';
import type { ManagerLink } from './manager-link.js';
import { MsixTable } from './msix-table.js';
import { CONFIG_SIZE, PciConfigSpace } from './pci-config-space.js';

export interface VgpuPciDeviceOptions {
  ops: FdOps;
  guest: GuestVf;
  link: ManagerLink;
  logger: Logger;
  /** Descriptor of the FB file (shared by every VF of the GPU; kept open by the front), or null (worker mode). */
  fbFd: number | null;
  /** Told when a client attaches or leaves (the front tells the daemon). */
  onClient?: (client: ClientInfo | null) => void;
}

/** vfio_device_feature_mig_state.data_fd: unused in vfio-user; -1 as the kernel reports "no fd". */
const NO_DATA_FD = 0xffffffff;

export class VgpuPciDevice implements VfioUserDevice {
  readonly deviceFlags = DeviceFlags.RESET | DeviceFlags.PCI;
  readonly numRegions = NUM_REGIONS;
  readonly numIrqs = NUM_IRQS;
  readonly config: PciConfigSpace;
  readonly irqs: IrqLines;
  private readonly msix: MsixTable;
  private msixTableUsed = false;
  private client: ClientInfo | null = null;
  private resetting: Promise<void> | null = null;
  private readonly log: Logger;
  private readonly bar0Size: number;

  constructor(private readonly o: VgpuPciDeviceOptions) {
    this.log = o.logger;
    const bars = o.guest.bars();
    this.config = new PciConfigSpace(o.guest.configSpace(), bars);
    this.bar0Size = Number(bars.bar0);
    const cfg = this.config.read(0, CONFIG_SIZE);
    const cap = this.config.caps.msix;
    let vectors = 0;
    let table = 0;
    let pba = 0;
    if (cap !== null) {
      const v = new DataView(cfg.buffer, cfg.byteOffset);
      vectors = (v.getUint16(cap + 2, true) & 0x7ff) + 1;
      table = v.getUint32(cap + 4, true) & ~7; // BIR 0 = BAR0
      pba = v.getUint32(cap + 8, true) & ~7;
    }
    this.msix = new MsixTable(vectors, table, pba);
    this.irqs = new IrqLines(o.ops, vectors);
  }

  get attachedClient(): ClientInfo | null {
    return this.client;
  }

  // ---- regions ----

  regionInfo(index: number, opts: { canSendFd: boolean }): RegionInfo {
    const bars = this.config.barSizes;
    switch (index) {
      case RegionIndex.BAR0: return { readable: true, writable: true, size: bars.bar0 };
      case RegionIndex.BAR1: {
        const info: RegionInfo = { readable: true, writable: true, size: bars.bar1 };
        const slice = this.o.guest.fbSlice();
        const file = this.o.guest.fbFile();
        if (slice !== null && file !== null && this.o.fbFd !== null && opts.canSendFd) {
          const span = slice.size < bars.bar1 ? slice.size : bars.bar1;
          info.mmap = { fd: this.o.fbFd, offset: file.offset + slice.offset, areas: [{ offset: 0n, size: span }] };
        }
        return info;
      }
      case RegionIndex.BAR3: return { readable: true, writable: true, size: bars.bar3 };
      case RegionIndex.CONFIG: return { readable: true, writable: true, size: BigInt(CONFIG_SIZE) };
      case RegionIndex.VGA: throw refuse(Errno.EINVAL, 'the VF is a 3D controller, not a VGA device: no VGA region');
      case RegionIndex.BAR2: case RegionIndex.BAR4: case RegionIndex.BAR5: case RegionIndex.ROM:
        return { readable: false, writable: false, size: 0n };
      default: throw refuse(Errno.EINVAL, `region index ${index} is out of range`);
    }
  }

  regionRead(index: number, offset: bigint, count: number): Uint8Array {
    const off = Number(offset);
    switch (index) {
      case RegionIndex.CONFIG: return this.config.read(off, count);
      case RegionIndex.BAR0: return this.barRead(0, off, count);
      case RegionIndex.BAR3: return new Uint8Array(count);
      case RegionIndex.BAR1: return this.fbRead(offset, count);
      default: throw refuse(Errno.EINVAL, `region ${index} is not readable`);
    }
  }

  regionWrite(index: number, offset: bigint, data: Uint8Array): void | Promise<void> {
    const off = Number(offset);
    switch (index) {
      case RegionIndex.CONFIG: return this.configWrite(off, data);
      case RegionIndex.BAR0: return this.barWrite(off, data);
      case RegionIndex.BAR3: return;
      case RegionIndex.BAR1: return this.fbWrite(offset, data);
      default: throw refuse(Errno.EINVAL, `region ${index} is not writable`);
    }
  }

  /** BAR0 reads: the MSI-X table/PBA are ours, the rest is the device's registers, one dword at a time. */
  private barRead(bar: number, off: number, count: number): Uint8Array {
    if (this.msix.covers(off, count)) return this.msix.read(off, count);
    const out = new Uint8Array(count);
    this.registersInto(bar, off, count, out, 0);
    return out;
  }

  private registersInto(bar: number, off: number, count: number, out: Uint8Array, into: number): void {
    for (let i = 0; i < count;) {
      const at = off + i;
      const dword = at & ~3;
      const v = this.o.guest.read32(bar, dword);
      for (let b = at - dword; b < 4 && i < count; b++, i++) out[into + i] = (v >>> (8 * b)) & 0xff;
    }
  }

  /**
   * A trapped BAR0 register read straight into the server's reply (server/fast-region-read.ts): the device's
   * registers only — MSI-X table and PBA reads, other regions and anything out of range go through regionRead.
   */
  readRegisterInto(index: number, offset: number, count: number, out: Buffer, at: number): boolean {
    if (index !== RegionIndex.BAR0 || offset + count > this.bar0Size || this.msix.covers(offset, count)) return false;
    this.registersInto(0, offset, count, out, at);
    return true;
  }

  private barWrite(off: number, data: Uint8Array): void {
    if (this.msix.covers(off, data.length)) {
      this.msixTableUsed = true;
      for (const v of this.msix.write(off, data, this.config.msixControl.masked)) this.irqs.fire(IrqIndex.MSIX, v);
      return;
    }
    for (let i = 0; i < data.length;) {
      const at = off + i;
      const dword = at & ~3;
      let value = 0;
      let mask = 0;
      for (let b = at - dword; b < 4 && i < data.length; b++, i++) {
        value |= data[i]! << (8 * b);
        mask |= 0xff << (8 * b);
      }
      this.o.guest.write32(0, dword, value >>> 0, mask >>> 0);
    }
    // A guest-triggered interrupt bit is delivered like a device one.
    this.deliverInterrupts();
  }

  private fbRead(offset: bigint, count: number): Uint8Array {
    const slice = this.o.guest.fbSlice();
    const out = new Uint8Array(count);
    if (slice === null || offset >= slice.size) return out;
    const n = offset + BigInt(count) <= slice.size ? count : Number(slice.size - offset);
    out.set(this.o.guest.fbRead(offset, n));
    return out;
  }

  private fbWrite(offset: bigint, data: Uint8Array): void {
    const slice = this.o.guest.fbSlice();
    if (slice === null || offset >= slice.size) return; // past the slice: dropped
    const n = offset + BigInt(data.length) <= slice.size ? data.length : Number(slice.size - offset);
    this.o.guest.fbWrite(offset, data.subarray(0, n));
  }

  private configWrite(off: number, data: Uint8Array): void | Promise<void> {
    const fx = this.config.write(off, data);
    if (fx.busMaster !== undefined) {
      this.o.guest.setBusMaster(fx.busMaster);
      this.o.link.busMaster(fx.busMaster);
    }
    if (fx.msix !== undefined && !fx.msix.masked) {
      for (const v of this.msix.releasable()) this.irqs.fire(IrqIndex.MSIX, v);
    }
    if (fx.flr === true) {
      // The write is answered once the function is reset, as Linux vfio-pci does it: the FLR runs inside the config
      // write (drivers/vfio/pci/vfio_pci_config.c vfio_exp_config_write → pci_try_reset_function), so when the
      // VMM's write returns the VF is reset and the next command sees it. A reset that fails is logged and the
      // write still succeeds, as there (vfio-pci ignores pci_try_reset_function's result; Initiate FLR reads 0).
      return this.functionReset().catch((error: unknown) => this.log.warn('VF function-level reset failed', { error }));
    }
  }

  // ---- interrupts ----

  irqInfo(index: number): IrqInfo {
    return this.irqs.info(index);
  }

  setIrqs(req: IrqSetRequest): void {
    this.irqs.set(req);
  }

  /** The device raised something for this VF: deliver the MSI-X vectors its guest lets through. */
  deliverInterrupts(): void {
    const fn = this.config.msixControl;
    for (const v of this.o.guest.takeInterrupts()) {
      if (this.msix.signal(v, fn.masked, this.msixTableUsed)) this.irqs.fire(IrqIndex.MSIX, v);
    }
  }

  /** Tell the VMM the host wants the device back (REQ) or that the GPU failed (ERR). */
  signalRequest(): boolean {
    return this.irqs.fire(IrqIndex.REQ, 0);
  }

  signalError(): boolean {
    return this.irqs.fire(IrqIndex.ERR, 0);
  }

  // ---- reset ----

  /** VFIO_USER_DEVICE_RESET: the vGPU's reset (through the manager), then the guest-visible registers. Config space
   *  stays (vfio-pci saves and restores it around a reset). */
  async reset(): Promise<void> {
    if (this.resetting !== null) await this.resetting.catch(() => undefined);
    await this.o.link.reset();
    this.o.guest.reset();
  }

  private async functionReset(): Promise<void> {
    const run = (async () => {
      await this.o.link.reset();
      this.o.guest.reset();
      this.config.resetToPowerOn();
      this.o.guest.setBusMaster(false);
      this.msix.reset();
      this.msixTableUsed = false;
    })();
    this.resetting = run;
    try {
      await run;
    } finally {
      if (this.resetting === run) this.resetting = null;
    }
  }

  // ---- features and migration ----

  async feature(feature: number, flags: number, data: Buffer, argsz: number): Promise<Buffer | null> {
    const mig = this.o.link.migrationFlags();
    switch (feature) {
      case Feature.MIGRATION: {
        if (mig === 0) throw refuse(Errno.ENOTTY, 'this vGPU offers no migration through vfio-user');
        if (checkFeature(flags, argsz, FeatureFlags.GET, 8) === 'probe') return null;
        const out = Buffer.alloc(8);
        out.writeBigUInt64LE(BigInt(mig), 0);
        return out;
      }
      case Feature.MIG_DEVICE_STATE: {
        if (mig === 0) throw refuse(Errno.ENOTTY, 'this vGPU offers no migration through vfio-user');
        if (checkFeature(flags, argsz, FeatureFlags.GET | FeatureFlags.SET, 8) === 'probe') return null;
        if ((flags & FeatureFlags.GET) !== 0) {
          const out = Buffer.alloc(8);
          out.writeUInt32LE(await this.o.link.migrationState(), 0);
          out.writeUInt32LE(NO_DATA_FD, 4);
          return out;
        }
        if (data.length < 8) throw refuse(Errno.EINVAL, 'MIG_DEVICE_STATE SET needs device_state and data_fd');
        const state = data.readUInt32LE(0);
        if (state > MigDeviceState.PRE_COPY_P2P) throw refuse(Errno.EINVAL, `device_state ${state} is not a VFIO migration state`);
        await this.o.link.setMigrationState(state);
        // Interrupts the device raised before it stopped reach the VMM before this answer does: once a stopped state
        // is acknowledged the device raises nothing more (hal/sim/device/vf/guest-rpc-service.ts), so nothing
        // signals after it either.
        this.deliverInterrupts();
        return null;
      }
      default:
        throw refuse(Errno.ENOTTY, `device feature ${feature} is not supported`);
    }
  }

  migrationRead(max: number, alloc?: (length: number) => Buffer): Promise<Buffer> {
    return this.o.link.migrationRead(max, alloc);
  }

  migrationWrite(data: Buffer): Promise<void> {
    return this.o.link.migrationWrite(data);
  }

  // ---- client ----

  attach(client: ClientInfo, dma: DmaPort): void {
    this.client = client;
    this.o.guest.serveDma(dma);
    this.o.guest.setBusMaster(this.config.busMaster);
    this.o.onClient?.(client);
  }

  detach(): void {
    this.client = null;
    this.o.guest.serveDma(null);
    this.irqs.closeAll();
    this.msix.reset();
    this.msixTableUsed = false;
    this.o.onClient?.(null);
  }
}
