/**
 * One opened mock GPU: the PhysicalGpu contract plus the test controls of that device (crash, host events, books).
 */
import type { ChannelRange } from '../../core/contracts/channels.js';
import { ErrorCode, VgpuError } from '../../core/contracts/exceptions.js';
import type { RmClient } from '../../core/contracts/firmware.js';
import type {
  HalCapability, HardwareConfig, HostEventListener, PhysicalGpu, VirtualFunction,
} from '../../core/contracts/hal.js';
import type { Logger } from '../../core/contracts/logger.js';
import type { FbRange } from '../../core/contracts/memory.js';
import type { MappingInfo } from '../../core/alloc/framebuffer-memory.js';
import { MockChannelPool, type CopyChannelInfo } from './mock-channels.js';
import { InflightCalls, type MockControls, type RunContext } from './mock-controls.js';
import { MockFirmware } from './mock-firmware.js';
import { MockMemory } from './mock-memory.js';
import type { MockDeviceSpec } from './mock-pci-bus.js';
import { MockRegisters } from './mock-registers.js';

/** What is live on a GPU right now: assert all empty after teardown ("nothing leaked"). */
export interface MockBooks {
  fbRanges: FbRange[];
  mappings: MappingInfo[];
  chidRanges: ChannelRange[];
  clients: RmClient[];
  copyChannels: CopyChannelInfo[];
}

export function emptyBooks(): MockBooks {
  return { fbRanges: [], mappings: [], chidRanges: [], clients: [], copyChannels: [] };
}

export type MockHostEvent = Parameters<HostEventListener>[0];

function formatBdf(domain: number, rid: number): string {
  const bus = (rid >> 8) & 0xff;
  const dev = (rid >> 3) & 0x1f;
  const fn = rid & 7;
  return `${domain.toString(16).padStart(4, '0')}:${bus.toString(16).padStart(2, '0')}:${dev.toString(16).padStart(2, '0')}.${fn}`;
}

export class MockGpu implements PhysicalGpu {
  readonly bdf: string;
  readonly halId: string;
  readonly config: HardwareConfig;
  readonly caps: ReadonlySet<HalCapability>;
  readonly firmware: MockFirmware;
  readonly memory: MockMemory;
  readonly channels: MockChannelPool;
  readonly registers: MockRegisters;
  /** Calls in flight on this GPU (crash rejects them). */
  readonly inflight = new InflightCalls();
  private readonly hostListeners = new Set<HostEventListener>();
  private numVfs: number;
  private st: 'attached' | 'detached' | 'closed' = 'attached';
  private readonly onGone: (gpu: MockGpu, how: 'detached' | 'closed') => void;
  private readonly logger: Logger;

  constructor(
    readonly spec: MockDeviceSpec,
    private readonly controls: MockControls,
    opts: { halId: string; generation: string; logger: Logger; rpcTimeoutMs: number; onGone: (gpu: MockGpu, how: 'detached' | 'closed') => void },
  ) {
    this.bdf = spec.bdf;
    this.halId = opts.halId;
    this.numVfs = spec.numVfs;
    this.onGone = opts.onGone;
    this.logger = opts.logger;
    const ctx = (): RunContext => ({ gpu: this.bdf, timeoutMs: opts.rpcTimeoutMs, inflight: this.inflight });
    const bitmap = new Uint8Array(Math.ceil(spec.engineTypeCount / 8));
    for (const e of spec.engines) if (e < spec.engineTypeCount) bitmap[e >> 3]! |= 1 << (e & 7);
    this.config = Object.freeze({
      name: spec.name,
      generation: opts.generation,
      pci: { vendorId: spec.vendorId, deviceId: spec.deviceId },
      fbBytes: spec.fbBytes,
      engines: Object.freeze([...spec.engines]),
      engineBitmap: bitmap,
      channelCount: spec.channels,
      totalVfs: spec.totalVfs,
      pfBars: { ...spec.pfBars },
      vfBars: { ...spec.vfBars },
      copyEngineClass: spec.copyEngineClass,
      firmwareFloor: spec.firmwareFloor,
      eccSupported: spec.eccSupported,
    });
    this.caps = new Set(spec.caps);
    // Present only with the capability, as the contract has it (a mock without it models a driver that lacks it).
    if (this.caps.has('sriov-configure')) {
      this.setNumVfs = async (numVfs: number): Promise<void> => {
        this.hostEvent({ kind: 'sriov-configure', numVfs });
      };
    }
    const now = controls.now;
    this.firmware = new MockFirmware(controls, ctx, {
      gpu: this.bdf, floor: spec.firmwareFloor, logger: opts.logger, now,
      ...(spec.firmwareVersion !== undefined ? { reportedVersion: spec.firmwareVersion } : {}),
    });
    this.memory = new MockMemory(controls, ctx, {
      totalBytes: spec.fbBytes, name: `framebuffer of ${this.bdf}`,
      ...(spec.maxCommitBytes !== undefined ? { maxCommitBytes: spec.maxCommitBytes } : {}),
    });
    this.channels = new MockChannelPool(spec.channels, controls, ctx, this.firmware, this.memory, {
      pushbufDwords: spec.pushbufDwords, copyEngineClass: spec.copyEngineClass, now,
    });
    this.registers = new MockRegisters(controls, ctx, Number(spec.pfBars.bar0), spec.registers);
    this.reset = this.caps.has('gpu-reset')
      ? (o) => this.controls.run('gpu.reset', {}, { gpu: this.bdf, timeoutMs: 6000, ...(o?.signal !== undefined ? { signal: o.signal } : {}) }, () => {
        if (this.st !== 'attached') throw new VgpuError(ErrorCode.IllegalState, `${this.bdf} is ${this.st}`, { hint: 'open it again' });
        this.firmware.stop('off');
      })
      : undefined;
  }

  get state(): 'attached' | 'detached' | 'closed' {
    return this.st;
  }

  vfs(): VirtualFunction[] {
    const m = /^([0-9a-f]{4}):([0-9a-f]{2}):([0-9a-f]{2})\.([0-7])$/.exec(this.bdf)!;
    const domain = parseInt(m[1]!, 16);
    const rid = (parseInt(m[2]!, 16) << 8) | (parseInt(m[3]!, 16) << 3) | parseInt(m[4]!, 16);
    const out: VirtualFunction[] = [];
    for (let i = 0; i < this.numVfs; i++) {
      out.push({ index: i, gfid: i + 1, bdf: formatBdf(domain, rid + this.spec.firstVfOffset + i * this.spec.vfStride), deviceId: this.spec.vfDeviceId });
    }
    return out;
  }

  onHostEvent(listener: HostEventListener): () => void {
    this.hostListeners.add(listener);
    return () => this.hostListeners.delete(listener);
  }

  detach(): Promise<void> {
    return this.controls.run('gpu.detach', {}, { gpu: this.bdf, timeoutMs: 6000 }, () => {
      if (this.st !== 'attached') return;
      // Host side only: firmware, FB contents and reservations stay, so a later open() re-attaches to them.
      this.st = 'detached';
      this.hostListeners.clear();
      this.onGone(this, 'detached');
    });
  }

  close(): Promise<void> {
    return this.controls.run('gpu.close', {}, { gpu: this.bdf, timeoutMs: 6000 }, () => {
      if (this.st === 'closed') return;
      this.st = 'closed';
      this.channels.freeAll();
      this.memory.freeAll();
      this.firmware.stop('off');
      this.inflight.rejectAll(new VgpuError(ErrorCode.GpuLost, `${this.bdf} was closed`, { hint: 'open the GPU again' }));
      this.hostListeners.clear();
      this.onGone(this, 'closed');
    });
  }

  /**
   * GPU reset (PhysicalGpu.reset): the firmware goes 'off' with every client forgotten; FB contents stay. Present
   * only when the spec has the 'gpu-reset' capability (a test that wants a GPU lost for good leaves it out). A fault
   * on op 'gpu.reset' fails or hangs it like any other call.
   */
  readonly reset: PhysicalGpu['reset'];

  // ---- test controls ----

  /** The GSP crashes: see MockFirmware.crash. */
  crash(reason?: string): void {
    this.firmware.crash(reason);
  }

  /** The core driver's sriov_configure (PhysicalGpu.setNumVfs); set in the constructor when caps allow it. */
  setNumVfs?: (numVfs: number) => Promise<void>;

  /** Deliver a host event (unbind, sriov-configure with numVfs, suspend, resume) to onHostEvent listeners. */
  hostEvent(e: MockHostEvent): void {
    if (e.kind === 'sriov-configure') {
      const n = e.numVfs ?? 0;
      if (!Number.isInteger(n) || n < 0 || n > this.spec.totalVfs) {
        throw new VgpuError(ErrorCode.InvalidArgument, `numVfs ${n} is outside 0..${this.spec.totalVfs}`, { hint: 'pick a VF count the device supports' });
      }
      this.numVfs = n;
    }
    for (const l of [...this.hostListeners]) {
      try {
        l({ ...e });
      } catch (err) {
        this.logger.warn('host event listener threw', { kind: e.kind, err: String(err) });
      }
    }
  }

  /** Re-attach after detach (MockHal.open does this). @internal */
  reattach(): void {
    this.st = 'attached';
  }

  books(): MockBooks {
    return {
      fbRanges: this.memory.list(),
      mappings: this.memory.mappings(),
      chidRanges: this.channels.list(),
      clients: this.firmware.liveClients(),
      copyChannels: this.channels.liveCopyChannels(),
    };
  }
}
