/**
 * One opened Ada GPU (core/contracts/hal.ts PhysicalGpu): the device region mapped, its Firmware, its FB as a
 * FramebufferMemory over the region's FB part, its reserved CHID pool and its BAR0 register window.
 */
import type { ChannelPool } from '../../core/contracts/channels.js';
import type {
  HalCapability, HardwareConfig, HostEventListener, PhysicalGpu, RegisterWindow, VirtualFunction,
} from '../../core/contracts/hal.js';
import { ErrorCode, VgpuError } from '../../core/contracts/exceptions.js';
import type { FramebufferMemory } from '../../core/contracts/memory.js';
import type { Logger } from '../../core/contracts/logger.js';
import type { SharedArena } from '../../native/native-ops.js';
import type { GspFirmwareClient } from './gsp-firmware-client.js';
import { MAX_VFS, Region, vfConfigOffset } from '../sim/device/device-layout.js';
import { readIdentity, readSriov, vfBdf } from '../sim/device/pci-config.js';
import { hostEventSeq, readHostEvents } from '../sim/device/host-events.js';

/** How often the HAL looks at the device's host-event word while someone listens (an unref'd timer). */
const HOST_EVENT_POLL_MS = 20;

/** What a GSP HAL can do (INTF driver_caps). CE channels and pushbuffers: gsp-copy-channel.ts. */
export const GSP_GPU_CAPS: ReadonlySet<HalCapability> = new Set<HalCapability>([
  'gsp-client-alloc', 'rm-alloc', 'chid-alloc', 'fb-mem-alloc', 'fb-mem-bar1-map', 'pf-event-delivery',
  'chan-mem-map', 'ce-chan-alloc', 'pushbuf-submit',
]);

export class GspRegisterWindow implements RegisterWindow {
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

export interface GspPhysicalGpuParts {
  /** Id of the HAL that opened it ('ada-lovelace', 'hopper'). */
  halId: string;
  bdf: string;
  arena: SharedArena;
  config: HardwareConfig;
  firmware: GspFirmwareClient;
  memory: FramebufferMemory;
  channels: ChannelPool;
  logger: Logger;
}

export class GspPhysicalGpu implements PhysicalGpu {
  readonly halId: string;
  readonly bdf: string;
  readonly config: HardwareConfig;
  readonly caps = GSP_GPU_CAPS;
  readonly firmware: GspFirmwareClient;
  readonly memory: FramebufferMemory;
  readonly channels: ChannelPool;
  readonly registers: RegisterWindow;
  private readonly arena: SharedArena;
  private readonly log: Logger;
  private readonly hostListeners = new Set<HostEventListener>();
  private hostEventCursor: number;
  private hostEventTimer: NodeJS.Timeout | null = null;
  private released = false;

  constructor(p: GspPhysicalGpuParts) {
    this.halId = p.halId;
    this.bdf = p.bdf;
    this.arena = p.arena;
    this.config = p.config;
    this.firmware = p.firmware;
    this.memory = p.memory;
    this.channels = p.channels;
    this.log = p.logger;
    this.registers = new GspRegisterWindow(p.arena, Region.BAR0_SIZE);
    // Events posted before we opened the device are history, not news.
    this.hostEventCursor = hostEventSeq(p.arena);
  }

  /** Enabled VFs, from the PF's SR-IOV capability (NumVFs) and each VF's config space. */
  vfs(): VirtualFunction[] {
    this.checkOpen();
    const pf = this.arena.window(BigInt(Region.PF_CONFIG), Region.CONFIG_SIZE);
    const s = readSriov(pf);
    if (s === undefined) return [];
    const out: VirtualFunction[] = [];
    for (let i = 0; i < Math.min(s.numVfs, MAX_VFS); i++) {
      const id = readIdentity(this.arena.window(BigInt(vfConfigOffset(i)), Region.CONFIG_SIZE));
      out.push({ index: i, gfid: i + 1, bdf: vfBdf(this.bdf, i, s.firstVfOffset, s.vfStride), deviceId: id.deviceId });
    }
    return out;
  }

  /**
   * Host events arrive through the device's host-event ring (sim/host-events.ts). A polled, unref'd timer rather
   * than a wait32 loop: it never keeps a process alive, and works the same across processes.
   */
  onHostEvent(listener: HostEventListener): () => void {
    this.checkOpen();
    this.hostListeners.add(listener);
    if (this.hostEventTimer === null) {
      this.hostEventCursor = hostEventSeq(this.arena);
      this.hostEventTimer = setInterval(() => this.pollHostEvents(), HOST_EVENT_POLL_MS);
      this.hostEventTimer.unref();
    }
    return () => {
      this.hostListeners.delete(listener);
      if (this.hostListeners.size === 0) this.stopHostEvents();
    };
  }

  private pollHostEvents(): void {
    if (this.released) return;
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

  private stopHostEvents(): void {
    if (this.hostEventTimer !== null) clearInterval(this.hostEventTimer);
    this.hostEventTimer = null;
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
    this.stopHostEvents();
    // Host mappings of the FB die with the region mapping; for a SAB this only drops our reference.
    this.arena.close();
  }

  private checkOpen(): void {
    if (this.released) {
      throw new VgpuError(ErrorCode.IllegalState, `GPU ${this.bdf} was detached or closed`, { hint: 'open it again with the HAL' });
    }
  }
}
