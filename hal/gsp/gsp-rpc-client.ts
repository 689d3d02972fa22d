/**
 * Host side of the GSP transport ("core driver" role): sends RPCs on the command queue, receives replies and
 * firmware events on the message queue, detects a dead firmware.
 *
 * Reply matching is BY SEQUENCE. Each call gets a fresh RPC-header sequence and the firmware echoes it in its
 * reply, so any number of callers may be in flight and replies may come back in any order. nouveau's r535 code
 * instead matches a reply by FUNCTION number (seed spec §8.4): two callers waiting for two GSP_RM_CONTROL replies
 * could not tell them apart, so it must serialise every caller behind one lock and a slow control stalls all
 * others (§11.7). Matching by sequence removes that lock; only the writing of a message into the ring is ordered.
 *
 * Waiting never blocks the event loop: the receive loop sleeps with the arena's asynchronous wait32 on the host
 * interrupt word (and only when the message queue is empty), a full command queue is waited for the same way.
 * Timeouts default to OpenRM's 1.5 × 4 s and are per caller: a timed-out caller is rejected alone and its late
 * reply is dropped. A crashed firmware (state word) or a stalled heartbeat while calls are pending fails every
 * caller with GpuLost — nobody hangs.
 */
import { EventEmitter } from 'eventemitter3';
import { ErrorCode, VgpuError } from '../../core/contracts/exceptions.js';
import type { RpcOptions } from '../../core/contracts/firmware.js';
import type { Logger } from '../../core/contracts/logger.js';
import type { SharedArena } from '../../native/native-ops.js';
import type { GspDrop, GspMessage } from './gsp-element.js';
import {
  GSP_EVENT_BASE,
  GspControl,
  GspFunction,
  GspFwState,
  GspRegion,
  gspFunctionName,
} from './gsp-layout.js';
import { GspRegionView, initGspRegion, openEndpoint, type GspEndpoint } from './gsp-queue.js';
import { GspReceiver, type GspReceiverSink } from './gsp-receiver.js';
import { GspSender, type OutgoingMessage } from './gsp-sender.js';
import { rpcResultError, type GspRpcCaller } from './rm-payload.js';

/** OpenRM reply wait: defaultus + defaultus/2 with the 4 s graphics-mode default (h&p §3.3). */
export const GSP_DEFAULT_RPC_TIMEOUT_MS = 6000;
/** OpenRM command-queue space wait per element (h&p §3.3). */
export const GSP_DEFAULT_SPACE_TIMEOUT_MS = 1000;
export const GSP_DEFAULT_HEARTBEAT_TIMEOUT_MS = 2000;
/** Spin this long for a reply before sleeping, only while calls are in flight (0 = off: on a shared 2-core host a spin steals the core the GSP thread needs). */
const SPIN_US = Number(process.env.VGPUD_GSP_SPIN_US ?? 0);

export interface GspRpcClientOptions {
  arena: SharedArena;
  /** Region base in the arena (page aligned). Default 0. */
  base?: bigint;
  /** Initialise the region (PTEs, cmdq header, control page). The host owns the region: default true. */
  init?: boolean;
  /** Default reply timeout per call. */
  timeoutMs?: number;
  /** Wait for command-queue space per element before failing with Busy. */
  spaceTimeoutMs?: number;
  /** A heartbeat that does not move for this long while calls are pending means the firmware is gone. */
  heartbeatTimeoutMs?: number;
  /** Longest sleep of the receive loop between health checks. */
  pollMs?: number;
  logger?: Logger;
}

export interface GspCallOptions extends RpcOptions {
  /** GFID placed in the RPC header's cpuRmGfid (0 = the PF). */
  gfid?: number;
}

/** A firmware event as the transport delivers it (the HAL turns it into a FirmwareEventRecord). */
export interface GspEvent {
  fn: number;
  name: string;
  gfid: number;
  sequence: number;
  payload: Uint8Array;
}

export interface GspClientStats {
  calls: number;
  replies: number;
  events: number;
  timeouts: number;
  /** Replies whose caller was gone (timed out, cancelled). */
  lateReplies: number;
  /** Elements dropped (checksum, malformed). */
  drops: number;
  elementsSent: number;
  elementsReceived: number;
}

interface ClientEvents {
  event: (e: GspEvent) => void;
  lost: (error: VgpuError) => void;
}

/**
 * One call in flight. It is also the outgoing message (one object per call instead of three) and lives in a
 * timeout bucket: calls with the same timeout expire in the order they were made, so one timer for the earliest
 * deadline replaces a setTimeout per call (a timer per call cost a fifth of the throughput in GC and timer work).
 */
class Pending implements OutgoingMessage {
  result = 0xffffffff;
  resultPrivate = 0xffffffff;
  cancelled = false;
  resolve: (payload: Uint8Array) => void = noop;
  reject: (error: VgpuError) => void = noop;
  onAbort: (() => void) | undefined = undefined;
  constructor(
    readonly fn: number,
    readonly sequence: number,
    readonly gfid: number,
    readonly payload: Uint8Array,
    readonly timeoutMs: number,
    readonly deadline: number,
    readonly signal: AbortSignal | undefined,
  ) {}
}

function noop(): void {}

const NOOP_LOGGER: Logger = {
  error() {},
  warn() {},
  info() {},
  debug() {},
  child() {
    return NOOP_LOGGER;
  },
};

export class GspRpcClient implements GspRpcCaller {
  readonly view: GspRegionView;
  private readonly ep: GspEndpoint;
  private readonly sender: GspSender;
  private readonly receiver: GspReceiver;
  private readonly pending = new Map<number, Pending>();
  /** Pending calls by timeout value; each Set is in deadline order. */
  private readonly buckets = new Map<number, Set<Pending>>();
  private timer: NodeJS.Timeout | null = null;
  private timerAt = 0;
  private readonly emitter = new EventEmitter<ClientEvents>();
  private readonly log: Logger;
  private readonly pollMs: number;
  private readonly heartbeatTimeoutMs: number;
  private timeoutMs: number;
  private nextSeq = 1;
  private closed = false;
  private lostError: VgpuError | null = null;
  private lastHeartbeat = 0;
  private lastHeartbeatAt = 0;
  private readyWaiters: Array<() => void> = [];
  private readonly stats_: GspClientStats = {
    calls: 0, replies: 0, events: 0, timeouts: 0, lateReplies: 0, drops: 0, elementsSent: 0, elementsReceived: 0,
  };
  /** Recently expired sequences, to tell a late reply from an unknown one in the log. */
  private readonly expired = new Set<number>();
  private readonly sink: GspReceiverSink = {
    message: (m) => this.onMessage(m),
    drop: (d) => this.onDrop(d),
    fatal: (e) =>
      this.lose(new VgpuError(ErrorCode.GpuLost, `GSP message queue unreadable: ${e.message}`, {
        hint: 'reset the GPU and reboot its firmware',
        details: e.details,
        cause: e,
      })),
  };
  /** Resolves when the receive loop ends (close or loss). */
  readonly done: Promise<void>;

  constructor(opts: GspRpcClientOptions) {
    this.log = (opts.logger ?? NOOP_LOGGER).child({ component: 'gsp-rpc' });
    this.view = new GspRegionView(opts.arena, opts.base ?? 0n);
    if (opts.init ?? true) initGspRegion(this.view);
    this.ep = openEndpoint(this.view, 'host');
    this.timeoutMs = opts.timeoutMs ?? GSP_DEFAULT_RPC_TIMEOUT_MS;
    this.heartbeatTimeoutMs = opts.heartbeatTimeoutMs ?? GSP_DEFAULT_HEARTBEAT_TIMEOUT_MS;
    this.pollMs = opts.pollMs ?? Math.max(5, Math.min(100, this.heartbeatTimeoutMs / 4));
    this.sender = new GspSender(this.ep, {
      spaceTimeoutMs: opts.spaceTimeoutMs ?? GSP_DEFAULT_SPACE_TIMEOUT_MS,
      deadReason: () => this.lostError ?? (this.closed ? this.closedError() : null),
      onError: (m, e) => this.settleError(m.sequence, e),
    });
    this.receiver = new GspReceiver(this.ep);
    this.done = this.loop();
  }

  /** Firmware state as the firmware last wrote it. */
  get fwState(): GspFwState {
    return this.view.fwState();
  }
  /** The error that ended this client, or null while usable. */
  get lost(): VgpuError | null {
    return this.lostError;
  }
  get inFlight(): number {
    return this.pending.size;
  }
  get stats(): Readonly<GspClientStats> {
    this.stats_.elementsSent = this.sender.elements;
    this.stats_.elementsReceived = this.receiver.elements;
    return this.stats_;
  }
  /**
   * Corrupt the first dword of the next command element AFTER its checksum — OpenRM's host-side
   * message-queue error injection (NV2080_CTRL_GPU_INJECT_ERROR_MESSAGE_QUEUE, h&p §3.4). The firmware then
   * rejects that call with a bad-checksum result and the caller gets ErrorCode.Checksum.
   */
  injectQueueError(): void {
    this.sender.corruptNext = true;
  }

  /** Change the default reply timeout (tests shrink it). */
  setDefaultTimeout(ms: number): void {
    this.timeoutMs = ms;
  }

  /**
   * Send RPC `fn` with `payload` (without RPC header) and resolve with the reply payload. Rejects with
   * RpcTimeout, Cancelled (signal/close), GpuLost, Checksum, Busy (queue full or RM busy), OutOfMemory, or
   * FirmwareRpc (any other non-zero rpc_result).
   */
  call(fn: number, payload: Uint8Array, opts: GspCallOptions = {}): Promise<Uint8Array> {
    if (this.lostError !== null) return Promise.reject(this.lostCopy());
    if (this.closed) return Promise.reject(this.closedError());
    if (!Number.isInteger(fn) || fn < 0 || fn >= GSP_EVENT_BASE || fn === GspFunction.CONTINUATION_RECORD) {
      return Promise.reject(new VgpuError(ErrorCode.InvalidArgument, `${gspFunctionName(fn)} is not a callable GSP function`, {
        hint: 'pass a NV_VGPU_MSG_FUNCTION_* number (GspFunction); events and continuation records are not calls',
        details: { fn },
      }));
    }
    const signal = opts.signal;
    if (signal?.aborted) return Promise.reject(this.cancelledError(fn));
    const timeoutMs = opts.timeoutMs ?? this.timeoutMs;
    const sequence = this.nextSeq;
    this.nextSeq = this.nextSeq === 0xffffffff ? 1 : this.nextSeq + 1; // 0 is left to events
    this.stats_.calls++;
    const p = new Pending(fn, sequence, opts.gfid ?? 0, payload, timeoutMs, Date.now() + timeoutMs, signal);
    const promise = new Promise<Uint8Array>((resolve, reject) => {
      p.resolve = resolve;
      p.reject = reject;
    });
    if (signal !== undefined) {
      p.onAbort = () => this.settleError(sequence, this.cancelledError(fn));
      signal.addEventListener('abort', p.onAbort, { once: true });
    }
    if (this.pending.size === 0) this.markHeartbeat();
    this.pending.set(sequence, p);
    let bucket = this.buckets.get(timeoutMs);
    if (bucket === undefined) this.buckets.set(timeoutMs, (bucket = new Set()));
    bucket.add(p);
    if (this.timer === null || p.deadline < this.timerAt) this.armTimer(p.deadline);
    this.sender.send(p);
    return promise;
  }

  /** Resolves once the firmware reports RUNNING; rejects with GpuLost if it crashed, RpcTimeout after `timeoutMs`. */
  waitReady(timeoutMs = this.timeoutMs): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const check = (): boolean => {
        const s = this.view.fwState();
        if (s === GspFwState.Running) {
          resolve();
          return true;
        }
        const err = this.lostError ?? (s === GspFwState.Crashed ? this.crashError() : null) ?? (this.closed ? this.closedError() : null);
        if (err !== null) {
          reject(err);
          return true;
        }
        return false;
      };
      if (check()) return;
      const timer = setTimeout(() => {
        this.readyWaiters = this.readyWaiters.filter((w) => w !== waiter);
        reject(new VgpuError(ErrorCode.RpcTimeout, `GSP firmware not running after ${timeoutMs} ms`, {
          hint: 'the firmware did not finish booting; check the GSP log',
          details: { fwState: this.view.fwState(), timeoutMs },
        }));
      }, timeoutMs);
      const waiter = (): void => {
        if (check()) {
          clearTimeout(timer);
          this.readyWaiters = this.readyWaiters.filter((w) => w !== waiter);
        }
      };
      this.readyWaiters.push(waiter);
    });
  }

  /** Firmware events (function ≥ 0x1000). A throwing listener is logged and does not stop the others. */
  onEvent(listener: (e: GspEvent) => void): () => void {
    this.emitter.on('event', listener);
    return () => this.emitter.off('event', listener);
  }

  /** Called once when the firmware is found dead (crash, stalled heartbeat, unreadable queue). */
  onLost(listener: (error: VgpuError) => void): () => void {
    this.emitter.on('lost', listener);
    return () => this.emitter.off('lost', listener);
  }

  /** Stop the client: pending calls reject with Cancelled. The region stays as it is. */
  close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      const err = this.closedError();
      for (const seq of [...this.pending.keys()]) this.settleError(seq, err);
      this.sender.failAll(err);
      if (this.timer !== null) clearTimeout(this.timer);
      this.timer = null;
      this.ep.inbound.ring(true); // wake our own receive loop so it sees `closed`
    }
    return this.done;
  }

  // ---- receive side -------------------------------------------------------------------------------------

  private async loop(): Promise<void> {
    const ready = (): boolean => this.receiver.hasInput();
    try {
      while (!this.closed && this.lostError === null) {
        const n = this.receiver.drain(this.sink);
        this.checkHealth();
        if (n > 0) {
          // Let the callers we just resolved run first: they usually send their next call at once, and
          // checking the ring again after that keeps both sides busy instead of ping-ponging wake-ups
          // (a wake costs ≈50 µs on these machines, h&p §8.3).
          await null;
          continue;
        }
        if (this.closed || this.lostError !== null) break;
        await this.ep.inbound.sleep(ready, this.pollMs, this.pending.size > 0 ? SPIN_US : 0);
      }
    } catch (e) {
      // Nothing in the loop is expected to throw; if it does the transport is unusable.
      this.lose(new VgpuError(ErrorCode.GpuLost, `GSP receive loop failed: ${(e as Error).message}`, {
        hint: 'this is a bug in the GSP transport; restart the daemon',
        cause: e,
      }));
    }
  }

  private onMessage(m: GspMessage): void {
    if (m.fn >= GSP_EVENT_BASE) {
      this.stats_.events++;
      const ev: GspEvent = { fn: m.fn, name: gspFunctionName(m.fn), gfid: m.gfid, sequence: m.sequence, payload: m.payload };
      for (const l of this.emitter.listeners('event')) {
        try {
          l(ev);
        } catch (e) {
          this.log.error('GSP event listener threw', { event: ev.name, error: (e as Error).message });
        }
      }
      return;
    }
    const p = this.pending.get(m.sequence);
    if (p === undefined) {
      this.stats_.lateReplies++;
      this.log.debug(this.expired.has(m.sequence) ? 'late GSP reply dropped (caller timed out or cancelled)' : 'GSP reply for unknown sequence dropped', {
        fn: gspFunctionName(m.fn),
        sequence: m.sequence,
      });
      return;
    }
    this.stats_.replies++;
    if (m.fn !== p.fn) {
      this.settleError(m.sequence, new VgpuError(ErrorCode.FirmwareRpc, `GSP answered ${gspFunctionName(p.fn)} (seq ${m.sequence}) with ${gspFunctionName(m.fn)}`, {
        hint: 'the firmware mixed up replies; report it with the firmware version',
        details: { expected: p.fn, got: m.fn, sequence: m.sequence },
      }));
      return;
    }
    if (m.result !== 0) {
      this.settleError(m.sequence, rpcResultError(m.result, m.fn, m.sequence));
      return;
    }
    this.forget(p);
    p.resolve(m.payload);
  }

  private onDrop(d: GspDrop): void {
    this.stats_.drops++;
    const p = d.sequence !== null && (d.fn === null || d.fn < GSP_EVENT_BASE) ? this.pending.get(d.sequence) : undefined;
    this.log.warn('GSP message dropped', { reason: d.error.message, sequence: d.sequence, fn: d.fn, owner: p !== undefined });
    if (p !== undefined) this.settleError(p.sequence, d.error);
  }

  // ---- settling -----------------------------------------------------------------------------------------

  private forget(p: Pending): void {
    this.pending.delete(p.sequence);
    this.buckets.get(p.timeoutMs)?.delete(p);
    if (p.onAbort !== undefined) p.signal?.removeEventListener('abort', p.onAbort);
  }

  private settleError(sequence: number, error: VgpuError): void {
    const p = this.pending.get(sequence);
    if (p === undefined) return;
    this.forget(p);
    p.cancelled = true; // not yet written? then never write it
    this.remember(sequence);
    p.reject(error);
  }

  private armTimer(at: number): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(() => this.sweep(), Math.max(1, at - Date.now()));
  }

  /** Expire every call past its deadline, then re-arm for the next one. */
  private sweep(): void {
    this.timer = null;
    const now = Date.now();
    let next = Infinity;
    for (const bucket of this.buckets.values()) {
      for (const p of bucket) {
        if (p.deadline > now) {
          next = Math.min(next, p.deadline);
          break;
        }
        this.onTimeout(p);
      }
    }
    if (next !== Infinity && !this.closed) this.armTimer(next);
  }

  private onTimeout(p: Pending): void {
    const { sequence, timeoutMs } = p;
    this.stats_.timeouts++;
    this.log.warn('GSP RPC timed out', { fn: gspFunctionName(p.fn), sequence, timeoutMs });
    this.settleError(sequence, new VgpuError(ErrorCode.RpcTimeout, `GSP RPC ${gspFunctionName(p.fn)} (seq ${sequence}) got no reply within ${timeoutMs} ms`, {
      hint: 'the firmware is slow or hung; other calls are unaffected — retry, and reset the GPU if it keeps happening',
      details: { fn: p.fn, sequence, timeoutMs },
    }));
  }

  private remember(sequence: number): void {
    this.expired.add(sequence);
    if (this.expired.size > 1024) {
      const first = this.expired.values().next();
      if (first.done !== true) this.expired.delete(first.value);
    }
  }

  // ---- health -------------------------------------------------------------------------------------------

  private markHeartbeat(): void {
    this.lastHeartbeat = this.view.heartbeat();
    this.lastHeartbeatAt = Date.now();
  }

  private checkHealth(): void {
    const state = this.view.fwState();
    if (this.readyWaiters.length > 0) for (const w of [...this.readyWaiters]) w();
    if (state === GspFwState.Crashed) {
      this.lose(this.crashError());
      return;
    }
    if (this.pending.size === 0) return;
    if (state === GspFwState.Stopped) {
      this.lose(new VgpuError(ErrorCode.GpuLost, 'GSP firmware stopped with calls in flight', {
        hint: 'the firmware was shut down; reboot it before sending RPCs',
        details: { inFlight: this.pending.size },
      }));
      return;
    }
    if (state !== GspFwState.Running) return;
    const hb = this.view.heartbeat();
    const now = Date.now();
    if (hb !== this.lastHeartbeat) {
      this.lastHeartbeat = hb;
      this.lastHeartbeatAt = now;
    } else if (now - this.lastHeartbeatAt > this.heartbeatTimeoutMs) {
      this.lose(new VgpuError(ErrorCode.GpuLost, `GSP heartbeat stopped for ${now - this.lastHeartbeatAt} ms with calls in flight`, {
        hint: 'the firmware is unresponsive; reset the GPU and reboot its firmware',
        details: { heartbeat: hb, inFlight: this.pending.size, heartbeatTimeoutMs: this.heartbeatTimeoutMs },
      }));
    }
  }

  private lose(error: VgpuError): void {
    if (this.lostError !== null) return;
    this.lostError = error;
    const n = this.pending.size;
    this.log.error('GSP lost', { reason: error.message, inFlight: n });
    for (const seq of [...this.pending.keys()]) this.settleError(seq, this.lostCopy());
    this.sender.failAll(this.lostCopy());
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    for (const w of [...this.readyWaiters]) w();
    for (const l of this.emitter.listeners('lost')) {
      try {
        l(error);
      } catch (e) {
        this.log.error('GSP lost listener threw', { error: (e as Error).message });
      }
    }
  }

  private lostCopy(): VgpuError {
    const e = this.lostError as VgpuError;
    return new VgpuError(e.code, e.message, { hint: e.hint, details: { ...e.details }, cause: e.cause });
  }

  private crashError(): VgpuError {
    const reason = this.view.control(GspControl.CRASH_REASON);
    return new VgpuError(ErrorCode.GpuLost, `GSP firmware crashed (reason ${reason})`, {
      hint: 'reset the GPU and reboot its firmware; the GSP log holds the crash record',
      details: { crashReason: reason, inFlight: this.pending.size, region: GspRegion.CONTROL },
    });
  }

  private closedError(): VgpuError {
    return new VgpuError(ErrorCode.Cancelled, 'GSP RPC client closed', { hint: 'the GPU is being detached; retry after it is back' });
  }

  private cancelledError(fn: number): VgpuError {
    return new VgpuError(ErrorCode.Cancelled, `GSP RPC ${gspFunctionName(fn)} cancelled`, { hint: 'the caller aborted the call' });
  }
}
