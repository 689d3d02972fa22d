/**
 * One opened Ada GPU (core/contracts/hal.ts PhysicalGpu): the device region mapped, its Firmware, its FB as a
 * FramebufferMemory over the region's FB part, its reserved CHID pool and its BAR0 register window.
 */
import type { ChannelPool } from '../../core/contracts/channels.js';
import type {
  GpuResetOptions, HalCapability, HardwareConfig, HostEventListener, PhysicalGpu, RegisterWindow, VirtualFunction,
} from '../../core/contracts/hal.js';
import { ErrorCode, VgpuError } from '../../core/contracts/exceptions.js';
import type { FramebufferMemory } from '../../core/contracts/memory.js';
import type { Logger } from '../../core/contracts/logger.js';
import type { GuestPortLocator } from '../../core/contracts/guest-port.js';
import type { SharedArena } from '../../native/native-ops.js';
import type { AdaFirmwareClient } from './ada-firmware-client.js';
import { DeviceState, Header, MAX_VFS, Region, vfConfigOffset } from './sim/device-layout.js';
import { readHeader } from './sim/device-region.js';
import { PCIE_DEVCTL, PCIE_DEVCTL_BCR_FLR, PF_PCIE_CAP, readIdentity, readSriov, vfBdf } from './sim/pci-config.js';
import { hostEventSeq, readHostEvents } from './sim/host-events.js';
import { readIrqAddress, ringDevice, type IrqMessage } from './sim/irq-protocol.js';
import { IrqLink } from './irq-link.js';

/**
 * What the Ada HAL can do (docs/reference/core-driver-interface.md driver_caps). CE channels and pushbuffers:
 * ada-copy-channel.ts (scrub issue).
 */
export const ADA_CAPS: ReadonlySet<HalCapability> = new Set<HalCapability>([
  'gsp-client-alloc', 'rm-alloc', 'chid-alloc', 'fb-mem-alloc', 'fb-mem-bar1-map', 'pf-event-delivery',
  'chan-mem-map', 'ce-chan-alloc', 'pushbuf-submit', 'gpu-reset', 'sriov-configure',
]);

export class AdaRegisterWindow implements RegisterWindow {
  constructor(private readonly arena: SharedArena, private readonly size: number) {}

  read32(offset: number): number {
    return this.arena.load32(this.at(offset));
  }
  write32(offset: number, value: number): void {
    const at = this.at(offset);
    this.arena.store32(at, value >>> 0);
    // A register write is an event for the device (the VF priv doorbell above all): wake whoever sleeps on it.
    this.arena.wake32(at);
  }
  private at(offset: number): bigint {
    if (!Number.isInteger(offset) || offset < 0 || offset + 4 > this.size || offset % 4 !== 0) {
      throw new VgpuError(ErrorCode.InvalidArgument, `BAR0 offset 0x${offset.toString(16)} is not an aligned register in the ${this.size}-byte window`, {
        hint: 'use a 4-byte aligned offset inside PF BAR0',
      });
    }
    return BigInt(Region.BAR0 + offset);
  }
}

export interface AdaPhysicalGpuParts {
  bdf: string;
  /** Where a VF front opens this GPU's guest side (sim/vf/vf-guest-port.ts). */
  guestPort?: GuestPortLocator;
  arena: SharedArena;
  config: HardwareConfig;
  firmware: AdaFirmwareClient;
  memory: FramebufferMemory;
  channels: ChannelPool;
  logger: Logger;
  /** The device's interrupt link (irq-link.ts), connected by the HAL's open. */
  link: IrqLink;
  /**
   * Program NumVFs and VF Enable in the PF's SR-IOV capability (what `pci_enable_sriov`/`pci_disable_sriov` write);
   * the device's VF config spaces follow (sim/sriov-configure.ts).
   */
  writeSriovControl: (numVfs: number) => void;
}

/** Longest a function-level reset may take before the device is declared broken (Linux allows 60 s, pci.c). */
const FLR_TIMEOUT_MS = 10_000;

export class AdaPhysicalGpu implements PhysicalGpu {
  readonly halId = 'ada-lovelace';
  readonly bdf: string;
  readonly config: HardwareConfig;
  readonly caps = ADA_CAPS;
  readonly firmware: AdaFirmwareClient;
  readonly memory: FramebufferMemory;
  readonly channels: ChannelPool;
  readonly registers: RegisterWindow;
  readonly guestPort?: GuestPortLocator;
  private readonly arena: SharedArena;
  private readonly log: Logger;
  private readonly hostListeners = new Set<HostEventListener>();
  private hostEventCursor: number;
  private link: IrqLink;
  private released = false;
  private readonly writeSriovControl: (numVfs: number) => void;
  private resetting = false;
  /** The last VF list vfs() built, and the SR-IOV state (NumVFs, offset, stride) it was built from. */
  private vfCache: { key: string; list: readonly VirtualFunction[] } | null = null;

  constructor(p: AdaPhysicalGpuParts) {
    this.bdf = p.bdf;
    this.arena = p.arena;
    if (p.guestPort !== undefined) this.guestPort = p.guestPort;
    this.config = p.config;
    this.firmware = p.firmware;
    this.memory = p.memory;
    this.channels = p.channels;
    this.log = p.logger;
    this.registers = new AdaRegisterWindow(p.arena, Region.BAR0_SIZE);
    this.writeSriovControl = p.writeSriovControl;
    // Events posted before we opened the device are history, not news.
    this.hostEventCursor = hostEventSeq(p.arena);
    this.link = p.link;
    this.wireLink(p.link);
  }

  /** Enabled VFs, from the PF's SR-IOV capability (NumVFs) and each VF's config space. */
  vfs(): VirtualFunction[] {
    this.checkOpen();
    const pf = this.arena.window(BigInt(Region.PF_CONFIG), Region.CONFIG_SIZE);
    const s = readSriov(pf);
    if (s === undefined) return [];
    // Every create, select and status asks for the list; building it (each VF's config space and BDF) cost ~0.1 ms
    // of a create. It changes only with the SR-IOV state read above (a VF's device ID is fixed while it is
    // enabled), so it is rebuilt only when that changes.
    const key = `${s.numVfs}/${s.firstVfOffset}/${s.vfStride}`;
    if (this.vfCache?.key === key) return [...this.vfCache.list];
    const out: VirtualFunction[] = [];
    for (let i = 0; i < Math.min(s.numVfs, MAX_VFS); i++) {
      const id = readIdentity(this.arena.window(BigInt(vfConfigOffset(i)), Region.CONFIG_SIZE));
      out.push(Object.freeze({ index: i, gfid: i + 1, bdf: vfBdf(this.bdf, i, s.firstVfOffset, s.vfStride), deviceId: id.deviceId }));
    }
    this.vfCache = { key, list: out };
    return [...out];
  }

  /**
   * Host events arrive through the device's host-event ring (sim/host-events.ts); the device's interrupt link says
   * when to look, so nothing polls the ring.
   */
  onHostEvent(listener: HostEventListener): () => void {
    this.checkOpen();
    this.hostListeners.add(listener);
    return () => { this.hostListeners.delete(listener); };
  }

  /**
   * The core driver's sriov_configure: the HAL is the PF's driver here, so it writes the SR-IOV capability itself
   * and tells its own listeners, as the upstream core driver calls into the vGPU manager (no detour through the
   * device's host-event ring, which carries what the device or the test harness raises). Range checks are the
   * caller's (core/manager/sriov-numvfs-abi.ts); this only refuses what the capability cannot hold.
   */
  async setNumVfs(numVfs: number): Promise<void> {
    this.checkOpen();
    if (!Number.isInteger(numVfs) || numVfs < 0 || numVfs > this.config.totalVfs) {
      throw new VgpuError(ErrorCode.InvalidArgument, `${this.bdf}: ${String(numVfs)} VFs is outside 0..${this.config.totalVfs}`, {
        hint: 'pass a count up to TotalVFs', details: { numVfs, totalVfs: this.config.totalVfs },
      });
    }
    this.writeSriovControl(numVfs);
    this.log.info(`SR-IOV configured: ${numVfs} VFs`);
    for (const l of [...this.hostListeners]) {
      try {
        l({ kind: 'sriov-configure', numVfs });
      } catch (err) {
        this.log.error('host event listener threw', { kind: 'sriov-configure', error: (err as Error).message });
      }
    }
  }

  private wireLink(link: IrqLink): void {
    link.on('irq', (m) => this.onIrq(m));
    link.once('down', (why) => this.onLinkDown(why));
  }

  private onIrq(m: IrqMessage): void {
    if (this.released) return;
    switch (m.src) {
      case 'host-event':
        this.readHostEventRing();
        return;
      case 'log':
        this.firmware.logInterrupt(m.gfids);
        return;
      default:
        // 'gsp': the GSP transport learns state changes from its own doorbell; 'reset' and 'vf' are not ours to act on.
        return;
    }
  }

  /** The device went away under us. On silicon this is "GPU has fallen off the bus" (NVIDIA Xid 79). */
  private onLinkDown(why: string): void {
    if (this.released) return;
    const stopped = this.arena.load32(BigInt(Header.DEVICE_STATE)) === DeviceState.Stopped;
    const reason = `Xid 79 (GPU has fallen off the bus): ${stopped ? 'the simulated device was stopped' : 'the simulated device process is gone'} — ${why}`;
    this.log.error('GPU lost: its device is gone', { reason });
    this.firmware.deviceGone(reason);
  }

  private readHostEventRing(): void {
    const { events, seq } = readHostEvents(this.arena, this.hostEventCursor);
    this.hostEventCursor = seq;
    for (const e of events) {
      this.log.info(`host event ${e.kind}${e.numVfs !== undefined ? ` (numVfs ${e.numVfs})` : ''}`);
      for (const l of [...this.hostListeners]) {
        try {
          l(e);
        } catch (err) {
          this.log.error('host event listener threw', { kind: e.kind, error: (err as Error).message });
        }
      }
    }
  }

  /**
   * GPU reset (core/contracts/hal.ts): the firmware's transport is dropped; a device that is gone is waited for
   * (a new simulator on the same device file); then a PCIe function-level reset of the PF takes GSP-RM and every
   * plugin task down. The firmware is 'off' afterwards: the caller boots it (OpenRM's answer to a fatal GSP error
   * is the same "GPU reset required": kernel_gsp_tu102.c marks the device for reset, gpuMarkDeviceForReset).
   */
  async reset(opts: GpuResetOptions = {}): Promise<void> {
    this.checkOpen();
    if (this.resetting) {
      throw new VgpuError(ErrorCode.Busy, `a reset of ${this.bdf} is already running`, { hint: 'wait for it to finish' });
    }
    this.resetting = true;
    try {
      if (!this.link.isUp) {
        opts.onWaiting?.('the device is gone; waiting for it to come back on the same device file (start vgpu-sim for it again)');
        await this.waitForDevice(opts.signal);
      }
      await this.firmware.forgetForReset();
      await this.functionLevelReset();
      this.hostEventCursor = hostEventSeq(this.arena);
      this.log.info('GPU reset done: GSP-RM halted, plugin tasks gone, FB kept');
    } finally {
      this.resetting = false;
    }
  }

  /**
   * Wait until a device (a new generation) serves this region again and answers on its interrupt link. It wakes the
   * word its link address lives in when it is up; the wait is sliced (1 s) only because a device can come up
   * between our look and our sleep — this runs only while a GPU is lost, never when idle.
   */
  private async waitForDevice(signal?: AbortSignal): Promise<void> {
    const a = this.arena;
    const lenWord = BigInt(Header.IRQ_ADDRESS_LEN);
    const oldGeneration = this.link.hello.generation;
    const onAbort = (): void => a.wake32(lenWord);
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      for (;;) {
        if (signal?.aborted) throw new VgpuError(ErrorCode.Cancelled, `waiting for ${this.bdf} to come back was cancelled`, { hint: 'the GPU stays lost' });
        if (this.released) throw this.closedError();
        const seen = a.load32(lenWord);
        const h = readHeader(a);
        const address = readIrqAddress(a);
        if (h.generation !== oldGeneration && h.deviceState === DeviceState.Running && address !== null) {
          if (h.deviceId !== this.config.pci.deviceId || h.fbBytes !== this.config.fbBytes) {
            throw new VgpuError(ErrorCode.UnsupportedDevice, `${this.bdf} came back as another device (0x${h.deviceId.toString(16)}, ${h.fbBytes} bytes FB)`, {
              hint: 'restart the daemon so it probes the new device',
            });
          }
          try {
            const link = await IrqLink.connect(address);
            this.link = link;
            this.wireLink(link);
            this.log.info('the device is back', { generation: link.hello.generation, pid: link.hello.pid });
            return;
          } catch {
            // It went away again before we got through: keep waiting.
          }
        }
        await a.wait32(lenWord, seen, 1000);
      }
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }

  /** PCIe FLR of the PF: set Device Control's Initiate-FLR bit, tell the device, wait until the bit reads back 0. */
  private async functionLevelReset(): Promise<void> {
    const a = this.arena;
    const word = BigInt(Region.PF_CONFIG + PF_PCIE_CAP + PCIE_DEVCTL);
    this.log.info('function-level reset of the PF');
    a.store32(word, (a.load32(word) | PCIE_DEVCTL_BCR_FLR) >>> 0);
    ringDevice(a);
    const deadline = performance.now() + FLR_TIMEOUT_MS;
    for (let v = a.load32(word); (v & PCIE_DEVCTL_BCR_FLR) !== 0; v = a.load32(word)) {
      const left = deadline - performance.now();
      if (left <= 0 || !this.link.isUp) {
        throw new VgpuError(ErrorCode.GpuLost, `${this.bdf} did not complete its function-level reset${this.link.isUp ? ` within ${FLR_TIMEOUT_MS} ms` : ': the device went away'}`, {
          hint: 'restart the simulated device (vgpu-sim); the GPU stays lost until a reset succeeds',
        });
      }
      await a.wait32(word, v, Math.min(left, 1000));
    }
  }

  async detach(): Promise<void> {
    if (this.released) return;
    this.log.info('detaching: device and firmware keep running');
    await this.firmware.release();
    this.release();
  }

  async close(): Promise<void> {
    if (this.released) return;
    this.log.info('closing: shutting GSP-RM down');
    try {
      await this.firmware.shutdown();
    } finally {
      this.release();
    }
  }

  private release(): void {
    this.released = true;
    this.hostListeners.clear();
    this.link.close();
    // Host mappings of the FB die with the region mapping; for a SAB this only drops our reference.
    this.arena.close();
  }

  private closedError(): VgpuError {
    return new VgpuError(ErrorCode.IllegalState, `GPU ${this.bdf} was detached or closed`, { hint: 'open it again with the HAL' });
  }

  private checkOpen(): void {
    if (this.released) throw this.closedError();
  }
}
