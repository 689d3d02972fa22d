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
import type { GspDrop, GspReceiverSink } from './gsp-element.js';
import {
  GSP_EVENT_BASE,
  GspControl,
  GspFunction,
  GspFwState,
  GspRegion,
  gspFunctionName,
} from './gsp-layout.js';
import { GspRegionView, initGspRegion, openEndpoint, type GspEndpoint } from './gsp-queue.js';
import { GspReceiver } from './gsp-receiver.js';
import { GspSender, type OutgoingMessage } from './gsp-sender.js';
import { rpcResultError, type GspRpcCaller } from './rm-payload.js';
import { SequenceTable } from './sequence-table.js';

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
  /** Wake-ups (futex/notify) sent to the firmware: one per time it had gone to sleep, not one per message. */
  wakesSent: number;
  /** Times the receive loop went to sleep waiting for the firmware. */
  sleeps: number;
}

interface ClientEvents {
  event: (e: GspEvent) => void;
  lost: (error: VgpuError) => void;
}

/**
 * One call in flight. It is also the outgoing message (one object per call instead of three) and a link of its
 * timeout list: calls with the same timeout expire in the order they were made, so an intrusive FIFO per timeout
 * value plus ONE timer for the earliest deadline replace a setTimeout per call (a timer per call cost a fifth of
 * the throughput in GC and timer work) — and, being intrusive, adding and removing a call allocates nothing.
 *
 * Records are pooled: a call that went straight into the ring is referenced only by the client's own structures,
 * so once settled (and unlinked from all of them) its record serves the next call.
 */
class Pending implements OutgoingMessage {
  fn = 0;
  sequence = 0;
  gfid = 0;
  payload: Uint8Array = EMPTY;
  timeouts: TimeoutList | null = null;
  deadline = 0;
  signal: AbortSignal | undefined = undefined;
  result = 0xffffffff;
  resultPrivate = 0xffffffff;
  cancelled = false;
  /** Written into the ring by send() itself: nothing outside the client holds the record, it may be reused. */
  recyclable = false;
  resolve: (payload: Uint8Array) => void = noop;
  reject: (error: VgpuError) => void = noop;
  onAbort: (() => void) | undefined = undefined;
  prev: Pending | null = null;
  next: Pending | null = null;
}

const EMPTY = new Uint8Array(0);
/** Records kept for reuse; more than the calls usually in flight buys nothing. */
const POOL_MAX = 256;

/** The pending calls of one timeout value, oldest (earliest deadline) first. */
class TimeoutList {
  head: Pending | null = null;
  tail: Pending | null = null;
  constructor(readonly timeoutMs: number) {}

  push(p: Pending): void {
    p.prev = this.tail;
    p.next = null;
    if (this.tail !== null) this.tail.next = p;
    else this.head = p;
    this.tail = p;
  }

  remove(p: Pending): void {
    if (p.prev !== null) p.prev.next = p.next;
    else if (this.head === p) this.head = p.next;
    else return; // not linked
    if (p.next !== null) p.next.prev = p.prev;
    else this.tail = p.prev;
    p.prev = null;
    p.next = null;
  }
}

function noop(): void {}

/**
 * `new Promise(executor)` with one shared executor instead of a closure per call: the executor runs
 * synchronously, so the resolving functions are picked up right after the constructor returns.
 */
let capturedResolve: (payload: Uint8Array) => void = noop;
let capturedReject: (error: VgpuError) => void = noop;
function captureResolvers(resolve: (payload: Uint8Array) => void, reject: (error: VgpuError) => void): void {
  capturedResolve = resolve;
  capturedReject = reject;
}

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
  private readonly pending = new SequenceTable<Pending>();
  /** Pending calls by timeout value; each list is in deadline order. */
  private readonly buckets = new Map<number, TimeoutList>();
  /** The list last used: nearly every call uses the default timeout, which saves a map lookup per call. */
  private lastList: TimeoutList | null = null;
  private readonly pool: Pending[] = [];
  /**
   * Date.now() as of the receive loop's last wake-up or batch (a clock read costs ≈60 ns, a tenth of a call).
   * Calls made while the loop is awake run in the same turn as that batch, so a deadline computed from it is
   * early by at most that turn's duration; while the loop sleeps (`idle`) calls read the clock themselves.
   */
  private clock = Date.now();
  private idle = true;
  private timer: NodeJS.Timeout | null = null;
  private timerAt = 0;
  /** Health ticker, running only while calls wait for replies (startWaiting). */
  private ticker: NodeJS.Timeout | null = null;
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
    wakesSent: 0, sleeps: 0,
  };
  /** Recently expired sequences, to tell a late reply from an unknown one in the log. */
  private readonly expired = new Set<number>();
  private readonly sink: GspReceiverSink = {
    message: (fn, sequence, result, _resultPrivate, gfid, payload) => this.onMessage(fn, sequence, result, gfid, payload),
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
    this.stats_.wakesSent = this.ep.outbound.wakes;
    this.stats_.sleeps = this.ep.inbound.sleeps;
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
  call(fn: number, payload: Uint8Array, opts?: GspCallOptions): Promise<Uint8Array> {
    if (this.lostError !== null) return Promise.reject(this.lostCopy());
    if (this.closed) return Promise.reject(this.closedError());
    if (!Number.isInteger(fn) || fn < 0 || fn >= GSP_EVENT_BASE || fn === GspFunction.CONTINUATION_RECORD) {
      return Promise.reject(new VgpuError(ErrorCode.InvalidArgument, `${gspFunctionName(fn)} is not a callable GSP function`, {
        hint: 'pass a NV_VGPU_MSG_FUNCTION_* number (GspFunction); events and continuation records are not calls',
        details: { fn },
      }));
    }
    const signal = opts?.signal;
    if (signal?.aborted) return Promise.reject(this.cancelledError(fn));
    const timeoutMs = opts?.timeoutMs ?? this.timeoutMs;
    const sequence = this.nextSeq;
    this.nextSeq = this.nextSeq === 0xffffffff ? 1 : this.nextSeq + 1; // 0 is left to events
    this.stats_.calls++;
    let list = this.lastList;
    if (list === null || list.timeoutMs !== timeoutMs) {
      list = this.buckets.get(timeoutMs) ?? null;
      if (list === null) this.buckets.set(timeoutMs, (list = new TimeoutList(timeoutMs)));
      this.lastList = list;
    }
    const p = this.pool.pop() ?? new Pending();
    p.fn = fn;
    p.sequence = sequence;
    p.gfid = opts?.gfid ?? 0;
    p.payload = payload;
    p.timeouts = list;
    p.deadline = (this.idle ? Date.now() : this.clock) + timeoutMs;
    p.signal = signal;
    p.cancelled = false;
    const promise = new Promise<Uint8Array>(captureResolvers);
    p.resolve = capturedResolve;
    p.reject = capturedReject;
    if (signal !== undefined) {
      p.onAbort = () => this.settleError(sequence, this.cancelledError(fn));
      signal.addEventListener('abort', p.onAbort, { once: true });
    }
    if (this.pending.size === 0) this.startWaiting();
    this.pending.add(p);
    list.push(p);
    if (this.timer === null || p.deadline < this.timerAt) this.armTimer(p.deadline);
    // Written into the ring now; published (one doorbell for everything sent this tick) by a microtask or by
    // the receive loop, whichever comes first.
    p.recyclable = this.sender.send(p);
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

  /**
   * The device is gone (the HAL learnt it from outside the queues, e.g. its interrupt link closed): fail every call
   * now with `error` (GpuLost) and call the lost listeners, as a crash seen in the queues would. Idempotent.
   */
  abort(error: VgpuError): void {
    this.lose(error);
    this.ep.inbound.ring(true); // wake our own receive loop so it ends
  }

  /** Stop the client: pending calls reject with Cancelled. The region stays as it is. */
  close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      const err = this.closedError();
      for (const seq of this.pending.sequences()) this.settleError(seq, err);
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
    const sender = this.sender;
    try {
      while (!this.closed && this.lostError === null) {
        this.clock = Date.now();
        const n = this.receiver.drain(this.sink);
        this.checkHealth();
        if (n > 0) {
          // Let the callers we just resolved run first: they usually send their next call at once. Then publish
          // all of those calls with ONE doorbell and look at the ring again — both sides stay busy instead of
          // ping-ponging wake-ups (a wake costs ≈50 µs on these machines, h&p §8.3).
          await null;
          sender.flush();
          continue;
        }
        // Never sleep on unpublished calls: the firmware cannot answer what it cannot see.
        sender.flush();
        if (this.closed || this.lostError !== null) break;
        this.idle = true;
        try {
          await this.ep.inbound.sleep(ready, Infinity, this.pending.size > 0 ? SPIN_US : 0);
        } finally {
          this.idle = false;
        }
      }
    } catch (e) {
      // Nothing in the loop is expected to throw; if it does the transport is unusable.
      this.lose(new VgpuError(ErrorCode.GpuLost, `GSP receive loop failed: ${(e as Error).message}`, {
        hint: 'this is a bug in the GSP transport; restart the daemon',
        cause: e,
      }));
    } finally {
      this.stopTicker();
    }
  }

  /**
   * The first call went pending: tell the firmware we wait (its heartbeat runs only then, GspControl.HOST_WAITING)
   * and start the ONE health ticker. The loop sleeps without a timeout; the ticker wakes it to check the heartbeat
   * while calls wait — and only then: an idle client has no timer at all, it wakes only when the firmware rings
   * (a reply, an event, a state change such as a crash). A timeout on every sleep instead left a timer behind per
   * sleep (V8 schedules it and only cancels it when it comes due): at tens of thousands of sleeps a second they
   * piled up and fired stale, and the loop slowed by half after a second.
   */
  private startWaiting(): void {
    this.markHeartbeat();
    this.view.setControl(GspControl.HOST_WAITING, 1);
    if (this.ticker !== null || this.closed || this.lostError !== null) return;
    this.ticker = setInterval(() => {
      if (this.pending.size === 0) this.stopTicker();
      else if (this.idle) this.ep.inbound.ring(true);
    }, this.pollMs);
    this.ticker.unref();
  }

  /** The last waiting call settled: the firmware may let its heartbeat rest. The ticker stops at its next tick. */
  private stopWaiting(): void {
    this.view.setControl(GspControl.HOST_WAITING, 0);
  }

  private stopTicker(): void {
    if (this.ticker !== null) clearInterval(this.ticker);
    this.ticker = null;
  }

  private onMessage(fn: number, sequence: number, result: number, gfid: number, payload: Uint8Array): void {
    if (fn >= GSP_EVENT_BASE) {
      this.stats_.events++;
      const ev: GspEvent = { fn, name: gspFunctionName(fn), gfid, sequence, payload };
      for (const l of this.emitter.listeners('event')) {
        try {
          l(ev);
        } catch (e) {
          this.log.error('GSP event listener threw', { event: ev.name, error: (e as Error).message });
        }
      }
      return;
    }
    const p = this.pending.get(sequence);
    if (p === undefined) {
      this.stats_.lateReplies++;
      this.log.debug(this.expired.has(sequence) ? 'late GSP reply dropped (caller timed out or cancelled)' : 'GSP reply for unknown sequence dropped', {
        fn: gspFunctionName(fn),
        sequence,
      });
      return;
    }
    this.stats_.replies++;
    if (fn !== p.fn) {
      this.settleError(sequence, new VgpuError(ErrorCode.FirmwareRpc, `GSP answered ${gspFunctionName(p.fn)} (seq ${sequence}) with ${gspFunctionName(fn)}`, {
        hint: 'the firmware mixed up replies; report it with the firmware version',
        details: { expected: p.fn, got: fn, sequence },
      }));
      return;
    }
    if (result !== 0) {
      this.settleError(sequence, rpcResultError(result, fn, sequence));
      return;
    }
    this.forget(p);
    const resolve = p.resolve;
    this.recycle(p);
    resolve(payload);
  }

  private onDrop(d: GspDrop): void {
    this.stats_.drops++;
    const p = d.sequence !== null && (d.fn === null || d.fn < GSP_EVENT_BASE) ? this.pending.get(d.sequence) : undefined;
    this.log.warn('GSP message dropped', { reason: d.error.message, sequence: d.sequence, fn: d.fn, owner: p !== undefined });
    if (p !== undefined) this.settleError(p.sequence, d.error);
  }

  // ---- settling -----------------------------------------------------------------------------------------

  private forget(p: Pending): void {
    this.pending.remove(p);
    p.timeouts?.remove(p);
    if (p.onAbort !== undefined) p.signal?.removeEventListener('abort', p.onAbort);
    if (this.pending.size === 0) this.stopWaiting();
  }

  /** Reject the call `sequence` if it is still pending; returns whether it was. */
  private settleError(sequence: number, error: VgpuError): boolean {
    const p = this.pending.get(sequence);
    if (p === undefined) return false;
    this.forget(p);
    p.cancelled = true; // not yet written? then never write it
    this.remember(sequence);
    const reject = p.reject;
    this.recycle(p);
    reject(error);
    return true;
  }

  /** Return a settled record to the pool (dropping what it referenced) if nothing outside the client holds it. */
  private recycle(p: Pending): void {
    if (!p.recyclable) return;
    p.payload = EMPTY;
    p.signal = undefined;
    p.onAbort = undefined;
    p.resolve = noop;
    p.reject = noop;
    p.timeouts = null;
    if (this.pool.length < POOL_MAX) this.pool.push(p);
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
    for (const list of this.buckets.values()) {
      for (let p = list.head; p !== null; p = list.head) {
        if (p.deadline > now) {
          next = Math.min(next, p.deadline);
          break;
        }
        this.onTimeout(p); // unlinks p (and may recycle it)
      }
    }
    if (next !== Infinity && !this.closed) this.armTimer(next);
  }

  private onTimeout(p: Pending): void {
    const { sequence, fn } = p;
    const list = p.timeouts as TimeoutList;
    const timeoutMs = list.timeoutMs;
    this.stats_.timeouts++;
    this.log.warn('GSP RPC timed out', { fn: gspFunctionName(fn), sequence, timeoutMs });
    const settled = this.settleError(sequence, new VgpuError(ErrorCode.RpcTimeout, `GSP RPC ${gspFunctionName(fn)} (seq ${sequence}) got no reply within ${timeoutMs} ms`, {
      hint: 'the firmware is slow or hung; other calls are unaffected — retry, and reset the GPU if it keeps happening',
      details: { fn, sequence, timeoutMs },
    }));
    // settleError unlinks a pending call; a call no longer pending must not stall the sweep either.
    if (!settled) list.remove(p);
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
    for (const seq of this.pending.sequences()) this.settleError(seq, this.lostCopy());
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
