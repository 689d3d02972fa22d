/**
 * Firmware (core/contracts/firmware.ts) of one Ada GPU: the core driver's side of GSP-RM, wrapping the GSP RPC
 * client of hal/gsp. Boots GSP-RM the way nova-core does (`drivers/gpu/nova-core/gsp/boot.rs`), with the vGPU
 * additions of the upstream proposal: version floor check → queue system info (with the SR-IOV VF info) and the
 * registry (RMSetSriovMode=1), both without waiting for a reply → start the GSP (falcon CPUCTL) → wait for the
 * GSP_INIT_DONE event → read the running build back with GSP_GET_FEATURES.
 *
 * A firmware that crashes (or whose heartbeat stops) fails every in-flight call with GpuLost — nobody hangs — and
 * listeners get one pseudo-event GSP_LOST_EVENT so owners can react without polling.
 */
import { EventEmitter } from 'eventemitter3';
import type { FirmwareEventRecord } from '../../core/contracts/events.js';
import { ErrorCode, VgpuError, isVgpuError } from '../../core/contracts/exceptions.js';
import type {
  Firmware, FirmwareEventListener, FirmwareImage, FirmwareInfo, FirmwareState, LogChunk, LogContext, RmClient, RpcObserver, RpcOptions,
} from '../../core/contracts/firmware.js';
import type { Logger } from '../../core/contracts/logger.js';
import type { SharedArena } from '../../native/native-ops.js';
import { RmClass } from '../../core/firmware-abi/rm-classes.js';
import { GSP_GET_FEATURES_PARAMS, RmControl, decodeGspFeatures } from '../../core/firmware-abi/rm-controls.js';
import { GspEvent, GspFunction, GspFwState, gspFunctionName } from '../gsp/gsp-layout.js';
import { GspRpcClient, type GspEvent as GspTransportEvent } from '../gsp/gsp-rpc-client.js';
import { rmAlloc, rmControl, rmFree } from '../gsp/rm-payload.js';
import type { SimBoard } from '../sim/board/sim-board.js';
import { GSP_SYSTEM_INFO, NvStatus, REG_SRIOV_MODE, encodeRegistry } from '../gsp/gsp-boot-params.js';
import { gfidFromEventPayload } from '../gsp/gsp-event-payloads.js';
import { Bar0, Cpuctl, LOG_DIR_ENTRY_BYTES, MAX_VFS, Region, logDirEntryOffset } from '../sim/device/device-layout.js';
import { readLogRing, readLogRingSince } from '../sim/device/log-ring.js';
import { ringDevice } from '../sim/device/irq-protocol.js';
import { parseBdf } from '../sim/device/pci-config.js';
import { compareVersions } from '../../core/firmware-abi/firmware-version.js';

/** Pseudo event id delivered to listeners when GSP-RM is lost (crash, stalled heartbeat). Outside GSP's range
 *  (real events end at NUM_EVENTS 0x1023). */
export const GSP_LOST_EVENT = 0x1fff;

export interface GspFirmwareClientOptions {
  arena: SharedArena;
  board: SimBoard;
  bdf: string;
  fbBytes: bigint;
  logger: Logger;
  rpcTimeoutMs?: number;
}

interface Events {
  event: (e: FirmwareEventRecord) => void;
  end: () => void;
}

/** RM handle namespaces: top byte says what the handle is, low 24 bits a per-HAL counter. */
const H_CLIENT = 0xc1000000;
const H_DEVICE = 0xde000000;
const H_SUBDEVICE = 0x5d000000;
/** The version probe's RM client: low 24 bits 0xffffff, which `nextHandle` (1..0xfffffe) never produces. */
export const PROBE_CLIENT = (H_CLIENT | 0xffffff) >>> 0;

export class GspFirmwareClient implements Firmware {
  private state_: FirmwareState = 'off';
  private client: GspRpcClient | null = null;
  private version = '';
  private initDone = false;
  private readonly emitter = new EventEmitter<Events>();
  private readonly rpcObservers = new Set<RpcObserver>();
  private readonly log: Logger;
  private readonly timeoutMs: number;
  /** Starts at a random point so a re-attached daemon does not collide with clients its predecessor left. */
  private nextHandle = 1 + Math.floor(Math.random() * 0x7fff00);
  private readonly freed = new Set<number>();
  private unsubs: Array<() => void> = [];
  /** Why the device went away (deviceGone), or null. */
  private gone: string | null = null;
  /** Attached to a GSP-RM an earlier host left running (FirmwareInfo.attached). */
  private attached = false;
  private readonly logListeners = new Set<(gfid: number) => void>();

  constructor(private readonly o: GspFirmwareClientOptions) {
    this.log = o.logger;
    this.timeoutMs = o.rpcTimeoutMs ?? 6000;
  }

  get state(): FirmwareState {
    return this.state_;
  }

  /** The transport's reply-wait spin (hits and misses, for benches); null before boot. */
  get replySpin(): { readonly hits: number; readonly misses: number } | null {
    return this.client?.spin ?? null;
  }

  info(): FirmwareInfo {
    return { version: this.version, initDone: this.initDone, attached: this.attached };
  }

  /**
   * Attach to a GSP-RM that is already running (daemon restart): no re-initialisation of the queues, no reboot.
   * Returns false when nothing runs (the caller boots it later).
   */
  async attachIfRunning(): Promise<boolean> {
    const c = this.makeClient(false);
    if (c.fwState !== GspFwState.Running) {
      await c.close();
      return false;
    }
    this.client = c;
    this.wire(c);
    this.state_ = 'running';
    this.initDone = true;
    this.attached = true;
    this.version = await this.queryVersion({});
    this.log.info('attached to running GSP-RM', { version: this.version });
    return true;
  }

  async boot(image: FirmwareImage, opts: RpcOptions = {}): Promise<FirmwareInfo> {
    const floor = this.o.board.firmwareFloor;
    if (compareVersions(image.version, floor) < 0) {
      throw tooOld(image.version, floor, `image ${image.source ?? ''}`.trim());
    }
    if (this.state_ === 'running') {
      this.log.info('GSP boot: firmware already running, not rebooting', { version: this.version });
      return this.info();
    }
    if (this.state_ === 'booting') {
      throw new VgpuError(ErrorCode.Busy, `GSP of ${this.o.bdf} is already booting`, { hint: 'wait for the first boot() to finish' });
    }
    if (this.gone !== null) {
      throw new VgpuError(ErrorCode.GpuLost, `cannot boot GSP-RM of ${this.o.bdf}: the device is gone (${this.gone})`, {
        hint: 'start the device again and reset the GPU',
      });
    }
    const timeoutMs = opts.timeoutMs ?? this.timeoutMs;
    this.state_ = 'booting';
    this.initDone = false;
    this.attached = false;
    this.log.info('GSP boot: loading image', { image: image.version, source: image.source ?? 'embedded' });
    try {
      await this.dropClient();
      const c = this.makeClient(true); // the host owns the queues: set them up before the GSP starts
      this.client = c;
      this.wire(c);
      const initDone = new Promise<void>((resolve) => {
        const off = c.onEvent((e) => {
          if (e.fn === GspEvent.GSP_INIT_DONE) {
            off();
            resolve();
          }
        });
      });
      // The two boot RPCs go into the command queue BEFORE the GSP starts and nobody waits for an answer: GSP-RM
      // reads them as it comes up and answers with the GSP_INIT_DONE event, never with replies (nova-core
      // `gsp/boot.rs` sends SetSystemInfo and SetRegistry with `send_command` before booting the falcon; nouveau
      // uses NVKM_GSP_RPC_REPLY_NOWAIT). docs/reference/gsp-queues.md.
      this.log.info('GSP boot: queueing system info and registry (no reply)', { totalVfs: this.o.board.totalVfs, [REG_SRIOV_MODE]: 1 });
      await c.send(GspFunction.GSP_SET_SYSTEM_INFO, this.systemInfo());
      await c.send(GspFunction.SET_REGISTRY, encodeRegistry({ [REG_SRIOV_MODE]: 1 }));
      this.log.info('GSP boot: starting GSP-RM (CPUCTL.STARTCPU)');
      const cpuctl = BigInt(Region.BAR0 + Bar0.PGSP_CPUCTL);
      this.o.arena.store32(cpuctl, Cpuctl.STARTCPU);
      ringDevice(this.o.arena);
      await c.waitReady(timeoutMs);
      await withTimeout(initDone, timeoutMs, () => new VgpuError(ErrorCode.FirmwareBoot, `GSP-RM of ${this.o.bdf} did not report GSP_INIT_DONE within ${timeoutMs} ms`, {
        hint: 'read the GSP log (readLog("gsp")) for where initialisation stopped',
      }));
      this.initDone = true;
      this.state_ = 'running';
      this.version = await this.queryVersion({ timeoutMs });
      this.log.info('GSP boot: GSP_INIT_DONE', { version: this.version });
      if (compareVersions(this.version, floor) < 0) {
        const err = tooOld(this.version, floor, 'running firmware');
        await this.shutdown().catch(() => {});
        throw err;
      }
      return this.info();
    } catch (e) {
      if ((this.state_ as FirmwareState) !== 'off') {
        const crashed = this.client?.fwState === GspFwState.Crashed;
        await this.dropClient();
        this.state_ = crashed ? 'crashed' : 'off';
      }
      if (isVgpuError(e) && (e.code === ErrorCode.FirmwareTooOld || e.code === ErrorCode.GpuLost || e.code === ErrorCode.FirmwareBoot)) throw e;
      throw new VgpuError(ErrorCode.FirmwareBoot, `GSP boot of ${this.o.bdf} failed: ${(e as Error).message}`, {
        hint: 'read the GSP log (readLog("gsp")); check that the simulated device is running',
        cause: e,
        ...(isVgpuError(e) ? { details: { cause: e.code } } : {}),
      });
    }
  }

  async shutdown(): Promise<void> {
    if (this.client === null) {
      this.state_ = 'off';
      return;
    }
    this.log.info('GSP shutdown');
    const cpuctl = BigInt(Region.BAR0 + Bar0.PGSP_CPUCTL);
    this.o.arena.store32(cpuctl, (this.o.arena.load32(cpuctl) | Cpuctl.SIM_HALT_REQUEST) >>> 0);
    ringDevice(this.o.arena);
    // Bounded wait for the device to halt its GSP (the device clears the request and wakes the word when done; a
    // device that is gone never will, hence the deadline).
    const deadline = Date.now() + 5000;
    for (let v = this.o.arena.load32(cpuctl); (v & Cpuctl.SIM_HALT_REQUEST) !== 0 && this.gone === null; v = this.o.arena.load32(cpuctl)) {
      const left = deadline - Date.now();
      if (left <= 0) break;
      await this.o.arena.wait32(cpuctl, v, Math.min(left, 1000));
    }
    await this.dropClient();
    this.state_ = 'off';
    this.initDone = false;
  }

  /** Host side only: stop talking to GSP-RM, leave it running (detach). */
  async release(): Promise<void> {
    await this.dropClient();
    this.state_ = 'off';
  }

  /**
   * The device itself is gone (its interrupt link closed: the process died, or the device stopped) — on silicon,
   * "GPU has fallen off the bus" (Xid 79). Every call in flight fails now with GpuLost instead of waiting for a
   * heartbeat that will never move, and listeners get the lost event named GPU_LOST (GSP_LOST is a firmware that
   * crashed or hung on a device that is still there).
   */
  deviceGone(reason: string): void {
    if (this.gone !== null) return;
    this.gone = reason;
    const c = this.client;
    if (c !== null && c.lost === null) {
      c.abort(new VgpuError(ErrorCode.GpuLost, reason, { hint: 'the device is gone: start it again; the GPU is reset when it is back' }));
      return; // the client's lost listener (wire) reports it
    }
    this.state_ = 'crashed';
    this.reportLost(reason);
  }

  /** Reason the device went away, or null while it is there. */
  get goneReason(): string | null {
    return this.gone;
  }

  /**
   * Forget everything about the firmware before a GPU reset: drop the transport without talking to GSP-RM (it is
   * dead or about to be reset), state 'off'. `boot` afterwards starts a fresh GSP-RM on re-initialised queues.
   */
  async forgetForReset(): Promise<void> {
    await this.dropClient();
    this.state_ = 'off';
    this.initDone = false;
    this.attached = false;
    this.version = '';
    this.gone = null;
    this.freed.clear();
  }

  rpc(fn: number, payload: Uint8Array, opts: RpcOptions = {}): Promise<Uint8Array> {
    return this.timed(fn, () => this.need().call(fn, payload, opts));
  }

  observeRpcs(listener: RpcObserver): () => void {
    this.rpcObservers.add(listener);
    return () => this.rpcObservers.delete(listener);
  }

  /**
   * Report one firmware call (an RPC, or an RM alloc/control/free with its RM status) to the observers. Only the
   * promise is wrapped, and only when someone observes: no cost on the hot path otherwise.
   */
  private timed<T>(fn: number, call: () => Promise<T>): Promise<T> {
    if (this.rpcObservers.size === 0) return call();
    const t0 = performance.now();
    const report = (error?: unknown): void => {
      const e = { fn: gspFunctionName(fn), ms: performance.now() - t0, ...(error !== undefined ? { error: isVgpuError(error) ? error.code : 'VGPU_EINTERNAL' } : {}) };
      for (const o of this.rpcObservers) {
        try { o(e); } catch { /* an observer must not break a firmware call */ }
      }
    };
    return call().then((r) => { report(); return r; }, (err: unknown) => { report(err); throw err; });
  }

  async allocClient(opts: RpcOptions & { hClient?: number } = {}): Promise<RmClient> {
    const c = this.need();
    const { hClient: wanted, ...rpcOpts } = opts;
    if (wanted !== undefined && (!Number.isInteger(wanted) || wanted <= 0 || wanted > 0xffffffff)) {
      throw new VgpuError(ErrorCode.InvalidArgument, `RM client handle ${String(wanted)} is not a non-zero 32-bit value`, {
        hint: 'pass a handle from the journal\'s rm-handle sequence, or none',
      });
    }
    for (let attempt = 0; ; attempt++) {
      // A caller-chosen handle (journalled before this call, so a crash cannot leak it) or the next of our own.
      const n = wanted !== undefined ? wanted & 0xffffff : this.nextHandle;
      if (wanted === undefined) this.nextHandle = (this.nextHandle % 0xfffffe) + 1;
      const h: RmClient = {
        hClient: wanted !== undefined ? wanted >>> 0 : (H_CLIENT | n) >>> 0, hDevice: (H_DEVICE | n) >>> 0, hSubdevice: (H_SUBDEVICE | n) >>> 0,
      };
      try {
        await this.timed(GspFunction.GSP_RM_ALLOC, () => rmAlloc(c, { hClient: h.hClient, hParent: 0, hObject: h.hClient, hClass: RmClass.NV01_ROOT, params: new Uint8Array(0) }, rpcOpts));
      } catch (e) {
        // A handle a previous daemon left alive: take the next one (a caller-chosen handle is the caller's problem).
        if (wanted === undefined && attempt < 8 && isVgpuError(e) && e.details.rmStatus === NvStatus.INSERT_DUPLICATE_NAME) continue;
        throw e;
      }
      try {
        await this.timed(GspFunction.GSP_RM_ALLOC, () => rmAlloc(c, { hClient: h.hClient, hParent: h.hClient, hObject: h.hDevice, hClass: RmClass.NV01_DEVICE_0, params: new Uint8Array(0) }, rpcOpts));
        await this.timed(GspFunction.GSP_RM_ALLOC, () => rmAlloc(c, { hClient: h.hClient, hParent: h.hDevice, hObject: h.hSubdevice, hClass: RmClass.NV20_SUBDEVICE_0, params: new Uint8Array(0) }, rpcOpts));
      } catch (e) {
        await this.timed(GspFunction.FREE, () => rmFree(c, { hRoot: h.hClient, hObjectParent: 0, hObjectOld: h.hClient })).catch(() => {});
        throw e;
      }
      this.freed.delete(h.hClient);
      return h;
    }
  }

  async freeClient(client: RmClient, opts: RpcOptions = {}): Promise<void> {
    if (this.freed.has(client.hClient)) return;
    try {
      await this.timed(GspFunction.FREE, () => rmFree(this.need(), { hRoot: client.hClient, hObjectParent: 0, hObjectOld: client.hClient }, opts));
    } catch (e) {
      // Idempotent: a client the firmware no longer knows is already free.
      if (!(isVgpuError(e) && e.details.rmStatus === NvStatus.INVALID_CLIENT)) throw e;
    }
    this.freed.add(client.hClient);
  }

  control(client: RmClient, cmd: number, params: Uint8Array, opts: RpcOptions = {}): Promise<Uint8Array> {
    return this.timed(GspFunction.GSP_RM_CONTROL, () => rmControl(this.need(), { hClient: client.hClient, hObject: client.hSubdevice, cmd, params }, opts));
  }

  onEvent(listener: FirmwareEventListener): () => void {
    this.emitter.on('event', listener);
    return () => this.emitter.off('event', listener);
  }

  events(signal?: AbortSignal): AsyncIterable<FirmwareEventRecord> {
    const emitter = this.emitter;
    return {
      [Symbol.asyncIterator](): AsyncIterator<FirmwareEventRecord> {
        const queue: FirmwareEventRecord[] = [];
        let wake: (() => void) | null = null;
        let ended = false;
        const onEvent = (e: FirmwareEventRecord): void => { queue.push(e); wake?.(); };
        const onEnd = (): void => { ended = true; wake?.(); };
        const cleanup = (): void => {
          emitter.off('event', onEvent);
          emitter.off('end', onEnd);
          signal?.removeEventListener('abort', onEnd);
        };
        emitter.on('event', onEvent);
        emitter.on('end', onEnd);
        signal?.addEventListener('abort', onEnd, { once: true });
        if (signal?.aborted) ended = true;
        return {
          async next(): Promise<IteratorResult<FirmwareEventRecord>> {
            for (;;) {
              const e = queue.shift();
              if (e !== undefined) return { value: e, done: false };
              if (ended) {
                cleanup();
                return { value: undefined, done: true };
              }
              await new Promise<void>((r) => { wake = r; });
              wake = null;
            }
          },
          async return(): Promise<IteratorResult<FirmwareEventRecord>> {
            ended = true;
            cleanup();
            return { value: undefined, done: true };
          },
        };
      },
    };
  }

  readLog(context: LogContext, gfid?: number): Uint8Array {
    const ring = this.logArea(context, gfid, 'readLog');
    return ring === null ? new Uint8Array(0) : readLogRing(ring);
  }

  /** Only the text written since `cursor` (the ring's running byte count): no copy of what was read before. */
  readLogSince(context: LogContext, gfid: number, cursor: number): LogChunk {
    const ring = this.logArea(context, gfid, 'readLogSince');
    return ring === null ? { text: new Uint8Array(0), cursor, lost: 0 } : readLogRingSince(ring, cursor);
  }

  /** Log text was written for `gfid` (the device's log interrupt); the logging plugin drains on it instead of polling. */
  onLogWritten(listener: (gfid: number) => void): () => void {
    this.logListeners.add(listener);
    return () => this.logListeners.delete(listener);
  }

  /** Called by the GPU when the device raises a log interrupt. */
  logInterrupt(gfids: readonly number[]): void {
    for (const g of gfids) {
      for (const l of this.logListeners) {
        try {
          l(g);
        } catch (err) {
          this.log.error('log listener threw', { gfid: g, error: (err as Error).message });
        }
      }
    }
  }

  private logArea(context: LogContext, gfid: number | undefined, what: string): Buffer | null {
    const a = this.o.arena;
    if (context === 'gsp') return a.window(BigInt(Region.GSP_LOG), Region.GSP_LOG_SIZE);
    if (gfid === undefined || !Number.isInteger(gfid) || gfid < 1 || gfid > MAX_VFS) {
      throw new VgpuError(ErrorCode.InvalidArgument, `${what}('${context}') needs the vGPU's gfid (1..${MAX_VFS}), got ${String(gfid)}`, {
        hint: "pass the gfid of the vGPU whose log you want; 'gsp' is the only per-GPU log",
      });
    }
    const dir = a.window(BigInt(logDirEntryOffset(gfid)), LOG_DIR_ENTRY_BYTES);
    const idx = context === 'init-task' ? 0 : context === 'vgpu-task' ? 1 : 2;
    const off = dir.readBigUInt64LE(idx * 16);
    const size = dir.readBigUInt64LE(idx * 16 + 8);
    if (size === 0n || off + size > this.o.fbBytes) return null; // no plugin task for this gfid
    return a.window(BigInt(Region.FB) + off, Number(size));
  }

  /**
   * Deliver a host-side interrupt as a firmware event record, to the same listeners and streams as GSP events:
   * the FIFO non-stall and RC of the host-side copy engine (ada-copy-channel.ts; scrub issue).
   */
  raiseInterrupt(eventId: number, name: string, payload: Uint8Array): void {
    this.emitRecord({ gpu: this.o.bdf, eventId, name, payload, at: Date.now() });
  }

  // ---- internals ----------------------------------------------------------------------------------------------

  private makeClient(init: boolean): GspRpcClient {
    return new GspRpcClient({
      arena: this.o.arena,
      base: BigInt(Region.GSP_QUEUES),
      init,
      timeoutMs: this.timeoutMs,
      logger: this.log,
    });
  }

  private wire(c: GspRpcClient): void {
    this.unsubs.push(c.onEvent((e) => this.deliver(e)));
    this.unsubs.push(c.onLost((err) => {
      this.state_ = 'crashed';
      this.reportLost(this.gone ?? withXid(err));
    }));
  }

  private reportLost(reason: string): void {
    const name = this.gone !== null ? 'GPU_LOST' : 'GSP_LOST';
    this.log.error(name === 'GPU_LOST' ? 'GPU lost: the device is gone' : 'GSP-RM lost', { reason });
    this.emitRecord({ gpu: this.o.bdf, eventId: GSP_LOST_EVENT, name, payload: new TextEncoder().encode(reason), at: Date.now() });
    this.emitter.emit('end');
  }

  private deliver(e: GspTransportEvent): void {
    const fromPayload = gfidFromEventPayload(e.fn, e.payload);
    const gfid = fromPayload ?? (e.gfid !== 0 ? e.gfid : undefined);
    this.emitRecord({ gpu: this.o.bdf, eventId: e.fn, name: e.name, ...(gfid !== undefined ? { gfid } : {}), payload: e.payload, at: Date.now() });
  }

  private emitRecord(r: FirmwareEventRecord): void {
    for (const l of this.emitter.listeners('event')) {
      try {
        l(r);
      } catch (err) {
        this.log.error('firmware event listener threw', { event: r.name, error: (err as Error).message });
      }
    }
  }

  private async dropClient(): Promise<void> {
    for (const u of this.unsubs) u();
    this.unsubs = [];
    const c = this.client;
    this.client = null;
    if (c !== null) await c.close();
    this.emitter.emit('end');
  }

  private need(): GspRpcClient {
    if (this.gone !== null) {
      throw new VgpuError(ErrorCode.GpuLost, `${this.o.bdf} is gone: ${this.gone}`, {
        hint: 'start the device again; the GPU is reset and its firmware rebooted when it is back',
      });
    }
    if (this.client === null || this.state_ !== 'running') {
      const lost = this.client?.lost;
      if (lost) throw lost;
      throw new VgpuError(this.state_ === 'crashed' ? ErrorCode.GpuLost : ErrorCode.IllegalState,
        `GSP-RM of ${this.o.bdf} is ${this.state_}, not running`, {
          hint: this.state_ === 'crashed' ? 'reset the GPU and boot its firmware again' : 'boot the firmware first (firmware.boot)',
        });
    }
    return this.client;
  }

  private async queryVersion(opts: RpcOptions): Promise<string> {
    // The probe's client has one reserved handle (the own sequence never yields it), not a fresh one: a daemon
    // killed between this alloc and its free leaves exactly that client behind, and the next attach frees it here
    // before allocating it again — nothing to journal, and no RM client can pile up over crashes.
    const probe: RmClient = { hClient: PROBE_CLIENT, hDevice: 0, hSubdevice: 0 };
    await this.freeClient(probe, opts);
    const rm = await this.allocClient({ ...opts, hClient: PROBE_CLIENT });
    try {
      const out = await this.control(rm, RmControl.GSP_GET_FEATURES, new Uint8Array(GSP_GET_FEATURES_PARAMS.size), opts);
      return decodeGspFeatures(out).firmwareVersion;
    } finally {
      await this.freeClient(rm).catch(() => {});
    }
  }

  private systemInfo(): Uint8Array {
    const b = this.o.board;
    const p = parseBdf(this.o.bdf);
    // Simulated physical addresses: the arena offsets of BAR0 and FB; VF BARs are not backed by the simulator.
    return GSP_SYSTEM_INFO.encode({
      gpuPhysAddr: BigInt(Region.BAR0),
      gpuPhysFbAddr: BigInt(Region.FB),
      gpuPhysInstAddr: 0n,
      nvDomainBusDeviceFunc: BigInt((p.domain << 16) | (p.bus << 8) | (p.device << 3) | p.fn),
      pciConfigMirrorBase: BigInt(Bar0.PCFG),
      pciConfigMirrorSize: 0x1000n,
      pciDeviceId: b.deviceId,
      pciSubDeviceId: b.subsystemId,
      pciRevisionId: b.revision,
      totalVFs: b.totalVfs,
      firstVFOffset: b.firstVfOffset,
      firstVfBar0Address: 0n,
      firstVfBar1Address: 0n,
      firstVfBar2Address: 0n,
      b64bitBar0: false,
      b64bitBar1: true,
      b64bitBar2: true,
    });
  }
}

/**
 * How NVIDIA's driver would report a GSP-RM loss (Xid catalogue, docs.nvidia.com/deploy/xid-errors): a firmware that
 * stopped answering while the host waited is Xid 119 "GSP RPC timeout"; one that crashed or broke its queues is
 * Xid 120 "GSP error" (OpenRM kernel_gsp_tu102.c kgspHealthCheck_TU102 reports its crash reports as Xid 120).
 */
function withXid(err: VgpuError): string {
  const hung = err.details['heartbeatTimeoutMs'] !== undefined;
  return `${hung ? 'Xid 119 (GSP RPC timeout)' : 'Xid 120 (GSP error)'}: ${err.message}`;
}

function tooOld(version: string, floor: string, what: string): VgpuError {
  return new VgpuError(ErrorCode.FirmwareTooOld, `GSP firmware ${version} (${what}) is older than ${floor}, the first build with vGPU support`, {
    hint: `install GSP firmware ${floor} or newer`,
    details: { version, floor },
  });
}

function withTimeout<T>(p: Promise<T>, ms: number, err: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<never>((_, reject) => { timer = setTimeout(() => reject(err()), ms); })])
    .finally(() => clearTimeout(timer));
}
