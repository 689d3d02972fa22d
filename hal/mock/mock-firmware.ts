/**
 * The mock GSP: a Firmware with no queues behind it. Controls and RPCs are answered by a handler table the test
 * extends; events are whatever the test (or the mock copy engine) emits.
 *
 * Two event records the mock synthesises, since GSP has no message for either (documented choice):
 *  - FIFO non-stall: a hardware interrupt on the real GPU, not a GSP event. The mock delivers it as a firmware
 *    event record `{ eventId: 5, name: 'FIFO_NONSTALL', payload: u32 LE chid }`; 5 is the FIFO_NONSTALL id of the
 *    core driver's PF event table (docs/reference/core-driver-interface.md), so nothing collides with GSP event
 *    numbers (0x1000…).
 *  - GPU lost: `crash()` delivers `{ eventId: 0, name: 'GPU_LOST', payload: utf-8 reason }` and ends the stream.
 */
import type { FirmwareEventRecord } from '../../core/contracts/events.js';
import { ErrorCode, VgpuError } from '../../core/contracts/exceptions.js';
import type {
  Firmware, FirmwareEventListener, FirmwareImage, FirmwareInfo, FirmwareState, LogChunk, LogContext, RmClient, RpcOptions,
} from '../../core/contracts/firmware.js';
import type { Logger } from '../../core/contracts/logger.js';
import type { MockControls, RunContext } from './mock-controls.js';

export const MOCK_EVENT = {
  GSP_INIT_DONE: { id: 0x1001, name: 'GSP_INIT_DONE' },
  RC_TRIGGERED: { id: 0x1004, name: 'RC_TRIGGERED' },
  FIFO_NONSTALL: { id: 5, name: 'FIFO_NONSTALL' },
  GPU_LOST: { id: 0, name: 'GPU_LOST' },
} as const;

/** What a control/RPC handler may answer: the reply block, nothing (reply = the params it was given, possibly
 *  modified in place), or a non-zero RM status. */
export type MockReply = Uint8Array | void | { status: number; params?: Uint8Array };
export type ControlHandler = (params: Uint8Array, ctx: { client: RmClient; cmd: number; gpu: string }) => MockReply | Promise<MockReply>;
export type RpcHandler = (payload: Uint8Array, ctx: { fn: number; gpu: string }) => MockReply | Promise<MockReply>;

export interface MockFirmwareOptions {
  gpu: string;
  /** Lowest accepted version (default "570.144"). */
  floor: string;
  /** Version the running firmware reports; default: the booted image's version. */
  reportedVersion?: string;
  logger: Logger;
  now: () => number;
}

/** Compare dotted numeric versions ("570.144" < "570.144.1" < "575.0"). */
export function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d < 0 ? -1 : 1;
  }
  return 0;
}

const HANDLE_BASE = 0xcaf00000;

export class MockFirmware implements Firmware {
  private st: FirmwareState = 'off';
  private version = '';
  private nextHandle = HANDLE_BASE;
  private readonly clients = new Map<number, RmClient>();
  private readonly controlHandlers = new Map<number, ControlHandler>();
  private readonly rpcHandlers = new Map<number, RpcHandler>();
  private readonly listeners = new Set<FirmwareEventListener>();
  private readonly streams = new Set<{ push(e: FirmwareEventRecord): void; end(): void }>();
  private readonly logs = new Map<string, Buffer[]>();
  private readonly logListeners = new Set<(gfid: number) => void>();

  constructor(private readonly controls: MockControls, private readonly ctx: () => RunContext, private readonly opts: MockFirmwareOptions) {}

  get state(): FirmwareState {
    return this.st;
  }

  boot(image: FirmwareImage, opts?: RpcOptions): Promise<FirmwareInfo> {
    return this.controls.run('firmware.boot', { version: image?.version, source: image?.source }, this.runCtx(opts), async () => {
      if (!image || typeof image.version !== 'string' || !/^\d+(\.\d+)*$/.test(image.version)) {
        throw new VgpuError(ErrorCode.InvalidArgument, `firmware image version '${String(image?.version)}' is not a dotted number`, {
          hint: 'pass an image such as { version: "570.144" }',
        });
      }
      if (this.st === 'running' || this.st === 'booting') {
        throw new VgpuError(ErrorCode.IllegalState, `firmware of ${this.opts.gpu} is already ${this.st}`, {
          hint: 'shut the firmware down before booting it again',
        });
      }
      const reported = this.opts.reportedVersion ?? image.version;
      for (const v of new Set([image.version, reported])) {
        if (compareVersions(v, this.opts.floor) < 0) {
          throw new VgpuError(ErrorCode.FirmwareTooOld, `GSP firmware ${v} is older than ${this.opts.floor}, the lowest this GPU supports for vGPU`, {
            hint: `install GSP firmware ${this.opts.floor} or newer`,
            details: { version: v, floor: this.opts.floor },
          });
        }
      }
      this.st = 'booting';
      this.version = reported;
      this.st = 'running';
      this.emitEvent({ eventId: MOCK_EVENT.GSP_INIT_DONE.id, name: MOCK_EVENT.GSP_INIT_DONE.name });
      return this.info();
    });
  }

  shutdown(): Promise<void> {
    return this.controls.run('firmware.shutdown', {}, this.runCtx(), () => {
      this.stop('off');
    });
  }

  info(): FirmwareInfo {
    return { version: this.version, initDone: this.st === 'running' };
  }

  rpc(fn: number, payload: Uint8Array, opts?: RpcOptions): Promise<Uint8Array> {
    return this.controls.run('firmware.rpc', { fn, payload }, this.runCtx(opts), async () => {
      this.requireRunning('rpc');
      const handler = this.rpcHandlers.get(fn);
      const copy = Uint8Array.from(payload);
      // Default: echo the payload — many GSP RPCs answer with the structure they were sent.
      if (handler === undefined) return copy;
      return this.reply(await handler(copy, { fn, gpu: this.opts.gpu }), copy, `RPC 0x${fn.toString(16)}`);
    });
  }

  allocClient(opts?: RpcOptions): Promise<RmClient> {
    return this.controls.run('firmware.allocClient', {}, this.runCtx(opts), () => {
      this.requireRunning('allocClient');
      const client: RmClient = Object.freeze({ hClient: this.newHandle(), hDevice: this.newHandle(), hSubdevice: this.newHandle() });
      this.clients.set(client.hClient, client);
      return client;
    });
  }

  freeClient(client: RmClient, opts?: RpcOptions): Promise<void> {
    return this.controls.run('firmware.freeClient', { hClient: client?.hClient }, this.runCtx(opts), () => {
      // Idempotent by contract; after a crash the firmware has forgotten its clients anyway.
      this.clients.delete(client.hClient);
    });
  }

  control(client: RmClient, cmd: number, params: Uint8Array, opts?: RpcOptions): Promise<Uint8Array> {
    return this.controls.run('firmware.control', { hClient: client?.hClient, cmd, params }, this.runCtx(opts), async () => {
      this.requireRunning('control');
      if (!this.clients.has(client.hClient)) {
        throw new VgpuError(ErrorCode.NotFound, `RM client 0x${client.hClient.toString(16)} is not allocated on ${this.opts.gpu}`, {
          hint: 'allocate a client (allocClient) and do not use it after freeClient or a firmware restart',
          details: { hClient: client.hClient, cmd },
        });
      }
      const copy = Uint8Array.from(params);
      const handler = this.controlHandlers.get(cmd);
      if (handler === undefined) return new Uint8Array(params.length);
      const out = this.reply(await handler(copy, { client, cmd, gpu: this.opts.gpu }), copy, `control 0x${cmd.toString(16)}`);
      if (out.length !== params.length) {
        throw new VgpuError(ErrorCode.Internal, `mock handler of control 0x${cmd.toString(16)} returned ${out.length} bytes for a ${params.length}-byte block`, {
          hint: 'a control reply has the size of its parameter block; fix the test handler',
        });
      }
      return out;
    });
  }

  onEvent(listener: FirmwareEventListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  events(signal?: AbortSignal): AsyncIterable<FirmwareEventRecord> {
    const queue: FirmwareEventRecord[] = [];
    let ended = signal?.aborted === true || this.st === 'off' || this.st === 'crashed';
    let wake: (() => void) | undefined;
    const stream = {
      push: (e: FirmwareEventRecord): void => { queue.push(e); wake?.(); },
      end: (): void => { ended = true; wake?.(); },
    };
    if (!ended) this.streams.add(stream);
    const onAbort = (): void => stream.end();
    signal?.addEventListener('abort', onAbort, { once: true });
    const streams = this.streams;
    return {
      async *[Symbol.asyncIterator]() {
        try {
          for (;;) {
            if (queue.length > 0) { yield queue.shift()!; continue; }
            if (ended) return;
            await new Promise<void>((r) => { wake = r; });
            wake = undefined;
          }
        } finally {
          streams.delete(stream);
          signal?.removeEventListener('abort', onAbort);
        }
      },
    };
  }

  readLog(context: LogContext, gfid?: number): Uint8Array {
    return Buffer.concat(this.logs.get(this.logKey(context, gfid)) ?? []);
  }

  /** The mock's areas never wrap: the cursor is a byte count into everything appended. */
  readLogSince(context: LogContext, gfid: number, cursor: number): LogChunk {
    const all = this.readLog(context, gfid);
    const from = cursor > all.byteLength ? 0 : cursor; // an area that restarted (new vGPU on the gfid)
    return { text: all.subarray(from), cursor: all.byteLength, lost: 0 };
  }

  onLogWritten(listener: (gfid: number) => void): () => void {
    this.logListeners.add(listener);
    return () => { this.logListeners.delete(listener); };
  }

  // ---- test controls ----

  /** Answer control `cmd` with `handler` (replacing any earlier one); returns a function that removes it. */
  onControl(cmd: number, handler: ControlHandler): () => void {
    this.controlHandlers.set(cmd, handler);
    return () => { if (this.controlHandlers.get(cmd) === handler) this.controlHandlers.delete(cmd); };
  }

  /** Answer RPC function `fn` with `handler`; returns a function that removes it. */
  onRpc(fn: number, handler: RpcHandler): () => void {
    this.rpcHandlers.set(fn, handler);
    return () => { if (this.rpcHandlers.get(fn) === handler) this.rpcHandlers.delete(fn); };
  }

  /** Deliver an event to listeners and streams now; `gpu` and `at` are filled in. Returns the full record. */
  emitEvent(e: { eventId: number; name: string; gfid?: number; payload?: Uint8Array }): FirmwareEventRecord {
    const record: FirmwareEventRecord = { gpu: this.opts.gpu, eventId: e.eventId, name: e.name, payload: e.payload ?? new Uint8Array(0), at: this.opts.now() };
    if (e.gfid !== undefined) record.gfid = e.gfid;
    for (const l of [...this.listeners]) {
      try {
        l(record);
      } catch (err) {
        // one listener's bug must not stop delivery to the others (or throw into the "hardware")
        this.opts.logger.warn('firmware event listener threw', { event: record.name, err: String(err) });
      }
    }
    for (const s of this.streams) s.push(record);
    return record;
  }

  /** Deliver a FIFO non-stall event for `chid` (see the file comment for the record shape). */
  emitNonstall(chid: number): FirmwareEventRecord {
    const payload = new Uint8Array(4);
    new DataView(payload.buffer).setUint32(0, chid, true);
    return this.emitEvent({ eventId: MOCK_EVENT.FIFO_NONSTALL.id, name: MOCK_EVENT.FIFO_NONSTALL.name, payload });
  }

  /** Append text to a log buffer ('gsp' ignores gfid; the per-vGPU areas are keyed by gfid). */
  appendLog(context: LogContext, gfid: number, text: string): void {
    const key = this.logKey(context, gfid);
    const list = this.logs.get(key) ?? [];
    list.push(Buffer.from(text, 'utf8'));
    this.logs.set(key, list);
    if (context !== 'gsp') for (const l of [...this.logListeners]) l(gfid);
  }

  /** The GSP dies: state 'crashed', clients forgotten, in-flight calls rejected with VGPU_ELOST, GPU_LOST emitted. */
  crash(reason = 'GSP crashed (injected by the mock)'): void {
    if (this.st === 'crashed') return;
    this.st = 'crashed';
    this.clients.clear();
    this.ctx().inflight?.rejectAll(this.lostError(reason));
    this.emitEvent({ eventId: MOCK_EVENT.GPU_LOST.id, name: MOCK_EVENT.GPU_LOST.name, payload: Buffer.from(reason, 'utf8') });
    for (const s of [...this.streams]) s.end();
    this.streams.clear();
  }

  /** Clients the firmware holds now (the books). */
  liveClients(): RmClient[] {
    return [...this.clients.values()];
  }

  /** Throws unless the firmware is running (GpuLost when crashed). */
  requireRunning(what: string): void {
    if (this.st === 'running') return;
    if (this.st === 'crashed') throw this.lostError(`firmware of ${this.opts.gpu} crashed`);
    throw new VgpuError(ErrorCode.IllegalState, `cannot ${what}: firmware of ${this.opts.gpu} is ${this.st}`, {
      hint: 'boot the firmware first',
    });
  }

  /** Stop without recording (GPU close). */
  stop(to: 'off'): void {
    this.st = to;
    this.clients.clear();
    for (const s of [...this.streams]) s.end();
    this.streams.clear();
  }

  private lostError(reason: string): VgpuError {
    return new VgpuError(ErrorCode.GpuLost, `${this.opts.gpu}: ${reason}`, {
      hint: 'the GPU must be reset (close and re-open it, then boot the firmware again)',
      details: { gpu: this.opts.gpu },
    });
  }

  private reply(r: MockReply, given: Uint8Array, what: string): Uint8Array {
    if (r === undefined) return given;
    if (r instanceof Uint8Array) return r;
    if (r.status !== 0) {
      throw new VgpuError(ErrorCode.FirmwareRpc, `${what} failed with RM status 0x${r.status.toString(16)}`, {
        hint: 'the firmware refused the request; see the status and the GSP log',
        details: { rmStatus: r.status },
      });
    }
    return r.params ?? given;
  }

  /** Next RM handle (monotonic across clients, objects and boots). */
  newHandle(): number {
    return this.nextHandle++;
  }

  private logKey(context: LogContext, gfid?: number): string {
    return context === 'gsp' ? 'gsp' : `${context}:${gfid ?? 0}`;
  }

  private runCtx(opts?: RpcOptions): RunContext {
    const base = this.ctx();
    return { ...base, timeoutMs: opts?.timeoutMs ?? base.timeoutMs, ...(opts?.signal ? { signal: opts.signal } : {}) };
  }
}
