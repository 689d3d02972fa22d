/**
 * Host side of the GSP transport ("core driver" role): sends RPCs on the command queue, receives replies and
 * firmware events on the message queue, detects a dead firmware. The discipline is the one real GSP-RM clients
 * keep (facts and sources: docs/reference/gsp-queues.md):
 *
 * ONE synchronous RPC outstanding per queue pair. nouveau holds `cmdq.mutex` from the push of a request to the
 * receipt of its reply (`r535_gsp_rpc_push`), OpenRM holds the GPU lock across `_issueRpcAndWait`, nova-core
 * takes `&mut Cmdq`. Here the lock is a FIFO: `call()` queues behind the call in flight and is written into the
 * command queue only when that one is settled (answered, failed, timed out or cancelled). GSP-RM serves one
 * command at a time anyway, so nothing is lost by not racing it, and code tuned here cannot lean on a
 * concurrency the firmware does not offer.
 *
 * Asynchronous RPCs: `send()` writes a message that GSP-RM never answers (GSP_SET_SYSTEM_INFO, SET_REGISTRY —
 * GSP_ASYNC_FUNCTIONS) and resolves once it is in the ring. It keeps its place in the FIFO but does not occupy the
 * in-flight slot, as nouveau's NVKM_GSP_RPC_REPLY_NOWAIT pushes return at once.
 *
 * Reply matching. nouveau and earlier OpenRM releases take the first message whose FUNCTION equals the one awaited
 * (`r535_gsp_msg_recv`; OpenRM `_kgspRpcDrainOneEvent`); later OpenRM also compares the RPC-header sequence. We
 * stamp every call with the next RPC sequence (one per element, 0 for the asynchronous boot RPCs — as nouveau has
 * since commit 90caca3b7264, because 570 firmware asserts on their order) and match on function AND sequence.
 * Why it matters: after a timeout nouveau releases the lock, and the late reply of the timed-out GSP_RM_CONTROL is
 * then taken by the NEXT caller's GSP_RM_CONTROL — the wrong payload, silently (upstream's flaw; OpenRM's own
 * comment says the late reply "eventually comes in as an unexpected event"). Here that reply carries an expired
 * sequence: it is counted as a late reply and dropped. Any other message with a function below 0x1000 that is not
 * the awaited reply is logged and dropped, as nouveau does with a message no notifier claims; messages from
 * 0x1000 up are events and are delivered at any time, also while a call waits.
 *
 * Timeouts count from the moment `call()` is made, not from when the request reaches the ring. A caller's
 * `timeoutMs` is then the longest it can wait, however many calls are ahead of it, and a queued call whose time
 * runs out leaves without ever reaching the firmware. (Drivers count from the send because a blocked thread is
 * their queue; counting from the send here would let a caller behind N slow calls wait N + 1 timeouts.) Default:
 * OpenRM's 1.5 × 4 s. A crashed firmware (state word) or a stalled heartbeat while a call is in flight fails the
 * call and everyone queued behind it with GpuLost — nobody hangs.
 *
 * Waiting never blocks the event loop: the receive loop sleeps with the arena's asynchronous wait32 on the host
 * interrupt word (and only when the message queue is empty); a full command queue is waited for the same way.
 */
import { EventEmitter } from 'eventemitter3';
import { ErrorCode, VgpuError } from '../../core/contracts/exceptions.js';
import type { RpcOptions } from '../../core/contracts/firmware.js';
import type { Logger } from '../../core/contracts/logger.js';
import { CallRecord, EMPTY, POOL_MAX, noop, promiseFor } from './gsp-call-record.js';
import { elementsFor, type GspDrop, type GspReceiverSink } from './gsp-element.js';
import {
  GSP_ASYNC_FUNCTIONS,
  GSP_EVENT_BASE,
  GspControl,
  GspFunction,
  GspFwState,
  GspRegion,
  gspFunctionName,
} from './gsp-layout.js';
import { GspRegionView, initGspRegion, openEndpoint, type GspEndpoint } from './gsp-queue.js';
import { GspReceiver } from './gsp-receiver.js';
import {
  GSP_DEFAULT_HEARTBEAT_TIMEOUT_MS,
  GSP_DEFAULT_RPC_TIMEOUT_MS,
  GSP_DEFAULT_SPACE_TIMEOUT_MS,
  type GspCallOptions,
  type GspClientStats,
  type GspEvent,
  type GspRpcClientOptions,
} from './gsp-rpc-types.js';
import { GspSender } from './gsp-sender.js';
import { declaredRmPayloadBytes, rpcResultError, type GspRpcCaller } from './rm-payload.js';
import { AdaptiveSpin, spinBudgetFromEnv } from '../../core/runtime/adaptive-spin.js';

export {
  GSP_DEFAULT_HEARTBEAT_TIMEOUT_MS, GSP_DEFAULT_RPC_TIMEOUT_MS, GSP_DEFAULT_SPACE_TIMEOUT_MS,
  type GspCallOptions, type GspClientStats, type GspEvent, type GspRpcClientOptions,
};


interface ClientEvents {
  event: (e: GspEvent) => void;
  lost: (error: VgpuError) => void;
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

/** How many expired sequences are remembered to tell a late reply from a stray one. */
const EXPIRED_MAX = 1024;

export class GspRpcClient implements GspRpcCaller {
  readonly view: GspRegionView;
  private readonly ep: GspEndpoint;
  private readonly sender: GspSender;
  private readonly receiver: GspReceiver;
  /** The call whose request is in the command queue and whose reply is awaited; null when none. */
  private current: CallRecord | null = null;
  /** Calls and sends waiting for `current` to settle, oldest first (settled ones are skipped). */
  private readonly queue: CallRecord[] = [];
  private queueHead = 0;
  private readonly pool: CallRecord[] = [];
  private timer: NodeJS.Timeout | null = null;
  private timerAt = 0;
  private idle = true;
  /** Health ticker, running only while a call is in flight (startWaiting). */
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
    calls: 0, asyncSent: 0, replies: 0, events: 0, timeouts: 0, lateReplies: 0, unexpected: 0, drops: 0, maxQueued: 0,
    elementsSent: 0, elementsReceived: 0, wakesSent: 0, sleeps: 0,
  };
  /** Sequences of calls that were sent and then given up (timeout, cancel): their replies are late, not strays. */
  private readonly expired = new Set<number>();
  /** Spin-before-sleep while a reply is due (VGPUD_GSP_SPIN_US; adaptive-spin.ts). */
  readonly spin: AdaptiveSpin;
  /** Spin granted when issue() woke the sleeping loop for the call in flight (null: the loop asks itself). */
  private spinUs: number | null = null;
  /** When the call in flight was written (performance.now()): its answer time teaches the spin its budget. */
  private sentAt = 0;
  private readonly sink: GspReceiverSink = {
    message: (fn, sequence, result, _resultPrivate, gfid, payload) => this.onMessage(fn, sequence, result, gfid, payload),
    drop: (d) => this.onDrop(d),
    fatal: (e) =>
      this.lose(new VgpuError(ErrorCode.GpuLost, `GSP message queue unreadable: ${e.message}`, {
        hint: 'reset the GPU and reboot its firmware',
        details: e.details,
        cause: e,
      })),
    expectedBytes: (fn, sequence, head) => this.expectedBytes(fn, sequence, head),
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
    this.spin = new AdaptiveSpin(opts.spinUs ?? spinBudgetFromEnv());
    this.sender = new GspSender(this.ep, {
      spaceTimeoutMs: opts.spaceTimeoutMs ?? GSP_DEFAULT_SPACE_TIMEOUT_MS,
      deadReason: () => this.lostError ?? (this.closed ? this.closedError() : null),
      onError: (m, e) => this.writeFailed(m as CallRecord, e),
      onWritten: (m) => this.written(m as CallRecord),
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
  /** 1 while a call awaits its reply, else 0 (there is never more than one). */
  get inFlight(): number {
    return this.current === null ? 0 : 1;
  }
  /** Calls and sends waiting behind the one in flight. */
  get queued(): number {
    let n = 0;
    for (let i = this.queueHead; i < this.queue.length; i++) if (!(this.queue[i] as CallRecord).cancelled) n++;
    return n;
  }
  get stats(): Readonly<GspClientStats> {
    this.stats_.elementsSent = this.sender.elements;
    this.stats_.elementsReceived = this.receiver.elements;
    this.stats_.wakesSent = this.ep.outbound.wakes;
    this.stats_.sleeps = this.ep.inbound.sleeps;
    return this.stats_;
  }
  /**
   * Corrupt the first dword of the next command element AFTER its checksum — OpenRM's host-side message-queue
   * error injection (NV2080_CTRL_GPU_INJECT_ERROR_MESSAGE_QUEUE, `message_queue_cpu.c`). The firmware then
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
   * Send RPC `fn` with `payload` (without RPC header) and resolve with the reply payload. The request waits its
   * turn behind the call in flight (FIFO). Rejects with RpcTimeout (no reply within `timeoutMs` of this call),
   * Cancelled (signal/close), GpuLost, Checksum, Busy (queue full or RM busy), OutOfMemory, or FirmwareRpc (any
   * other non-zero rpc_result, or a broken reply).
   */
  call(fn: number, payload: Uint8Array, opts?: GspCallOptions): Promise<Uint8Array> {
    const refused = this.refuse(fn, opts);
    if (refused !== null) return Promise.reject(refused);
    if (GSP_ASYNC_FUNCTIONS.has(fn)) {
      return Promise.reject(new VgpuError(ErrorCode.InvalidArgument, `${gspFunctionName(fn)} is never answered by GSP-RM`, {
        hint: 'send it with send(), which does not wait for a reply (nouveau and nova-core do the same)',
        details: { fn },
      }));
    }
    this.stats_.calls++;
    return this.enqueue(this.record(fn, payload, opts, false));
  }

  /**
   * Send an asynchronous RPC — one GSP-RM never answers (GSP_ASYNC_FUNCTIONS) — and resolve once it is wholly in
   * the command queue. It takes its turn in the FIFO like a call (behind a call in flight, as under nouveau's one
   * mutex), but holds no slot once written: whatever is queued behind it goes out at once.
   */
  async send(fn: number, payload: Uint8Array, opts?: Omit<GspCallOptions, 'replyBytes'>): Promise<void> {
    const refused = this.refuse(fn, opts);
    if (refused !== null) throw refused;
    if (!GSP_ASYNC_FUNCTIONS.has(fn)) {
      throw new VgpuError(ErrorCode.InvalidArgument, `${gspFunctionName(fn)} is answered by GSP-RM; send() would leave its reply unclaimed`, {
        hint: 'use call() for it; send() is for the RPCs GSP-RM never answers (GSP_SET_SYSTEM_INFO, SET_REGISTRY)',
        details: { fn },
      });
    }
    await this.enqueue(this.record(fn, payload, opts, true));
  }

  private refuse(fn: number, opts: RpcOptions | undefined): VgpuError | null {
    if (this.lostError !== null) return this.lostCopy();
    if (this.closed) return this.closedError();
    if (!Number.isInteger(fn) || fn < 0 || fn >= GspFunction.NUM_FUNCTIONS || fn === GspFunction.CONTINUATION_RECORD) {
      return new VgpuError(ErrorCode.InvalidArgument, `${gspFunctionName(fn)} is not a callable GSP function`, {
        hint: `pass a NV_VGPU_MSG_FUNCTION_* number below ${GspFunction.NUM_FUNCTIONS} (GspFunction, r570); events and continuation records are not calls`,
        details: { fn },
      });
    }
    if (opts?.signal?.aborted === true) return this.cancelledError(fn);
    return null;
  }

  private record(fn: number, payload: Uint8Array, opts: GspCallOptions | undefined, async: boolean): CallRecord {
    const p = this.pool.pop() ?? new CallRecord();
    p.fn = fn;
    p.sequence = 0;
    p.gfid = opts?.gfid ?? 0;
    p.payload = payload;
    p.async = async;
    p.cancelled = false;
    p.recyclable = false;
    p.replyBytes = opts?.replyBytes ?? null;
    p.timeoutMs = opts?.timeoutMs ?? this.timeoutMs;
    p.deadline = Date.now() + p.timeoutMs;
    const signal = opts?.signal;
    p.signal = signal;
    if (signal !== undefined) {
      p.onAbort = () => this.settleError(p, this.cancelledError(fn));
      signal.addEventListener('abort', p.onAbort, { once: true });
    }
    return p;
  }

  private enqueue(p: CallRecord): Promise<Uint8Array> {
    const promise = promiseFor(p);
    if (this.current === null && this.queueHead === this.queue.length) {
      this.issue(p);
    } else {
      this.queue.push(p);
      const waiting = this.queue.length - this.queueHead;
      if (waiting > this.stats_.maxQueued) this.stats_.maxQueued = waiting;
    }
    if (!p.cancelled && (this.timer === null || p.deadline < this.timerAt)) this.armTimer(p.deadline);
    return promise;
  }

  /** Write `p` into the command queue: a call becomes the one in flight, a send resolves once written. */
  private issue(p: CallRecord): void {
    if (p.async) {
      p.sequence = 0; // nothing will answer it; nouveau sends these with NVKM_GSP_RPC_REPLY_NOSEQ (RPC sequence 0)
      p.recyclable = this.sender.send(p);
      if (p.recyclable) this.written(p);
      return;
    }
    // One RPC sequence per element, in order (570 firmware asserts on it: nouveau 90caca3b7264); 0 is left to the
    // asynchronous sends and events.
    p.sequence = this.nextSeq;
    const next = this.nextSeq + elementsFor(p.payload.length);
    this.nextSeq = next > 0xffffffff ? next - 0xffffffff : next;
    this.current = p;
    this.sentAt = performance.now();
    this.startWaiting();
    // Written now; published (one doorbell) by a microtask or by the receive loop, whichever comes first.
    p.recyclable = this.sender.send(p);
    // The receive loop usually sleeps between calls (the caller's next call comes after several microtask turns).
    // Wake it — our own thread, no cross-core wake-up — so it spins for this reply instead of GSP-RM having to wake
    // it (adaptive-spin.ts); not while the spin backs off.
    if (this.idle) {
      this.spinUs = this.spin.next(p.fn);
      if (this.spinUs > 0) this.ep.inbound.ring(true);
    }
  }

  /** The call in flight settled: let the next in line go (sends go straight through, up to the next call). */
  private pump(): void {
    while (this.current === null && this.queueHead < this.queue.length) {
      const p = this.queue[this.queueHead] as CallRecord;
      this.queue[this.queueHead++] = undefined as unknown as CallRecord;
      if (!p.cancelled) this.issue(p);
    }
    if (this.queueHead === this.queue.length) {
      this.queue.length = 0;
      this.queueHead = 0;
    }
    if (this.current === null) this.stopWaiting();
  }

  /** An asynchronous send is wholly in the ring. */
  private written(p: CallRecord): void {
    if (!p.async || p.cancelled) return;
    this.stats_.asyncSent++;
    this.finish(p);
    p.resolve(EMPTY);
    this.recycle(p);
  }

  /** The sender could not write `p` (queue full past the space timeout, peer dead, closed). */
  private writeFailed(p: CallRecord, error: VgpuError): void {
    this.settleError(p, error);
  }

  /** Reject `p` if it is not settled yet: take it out of flight or out of the queue, remember a sent one. */
  private settleError(p: CallRecord, error: VgpuError): void {
    if (p.cancelled) return;
    const wasCurrent = p === this.current;
    if (wasCurrent) {
      this.current = null;
      this.remember(p.sequence);
    }
    this.finish(p);
    const reject = p.reject;
    this.recycle(p);
    reject(error);
    if (wasCurrent) this.pump();
  }

  /** Mark settled and drop the abort listener. A queued record stays in the queue array and is skipped there. */
  private finish(p: CallRecord): void {
    p.cancelled = true;
    if (p.onAbort !== undefined) p.signal?.removeEventListener('abort', p.onAbort);
  }

  /** Return a settled record to the pool (dropping what it referenced) if nothing outside the client holds it. */
  private recycle(p: CallRecord): void {
    if (!p.recyclable) return;
    p.payload = EMPTY;
    p.signal = undefined;
    p.onAbort = undefined;
    p.resolve = noop;
    p.reject = noop;
    if (this.pool.length < POOL_MAX) this.pool.push(p);
  }

  private remember(sequence: number): void {
    this.expired.add(sequence);
    if (this.expired.size > EXPIRED_MAX) {
      const first = this.expired.values().next();
      if (first.done !== true) this.expired.delete(first.value);
    }
  }

  // ---- timeouts: ONE timer for the earliest deadline ---------------------------------------------------------
  // Armed lazily: when a call settles its timer stays; when it fires, sweep() finds nothing due and re-arms for the
  // earliest live deadline. A sequential caller thus costs no timer work per call.

  private armTimer(at: number): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(() => this.sweep(), Math.max(1, at - Date.now()));
  }

  private sweep(): void {
    this.timer = null;
    if (this.closed || this.lostError !== null) return;
    const now = Date.now();
    // Queued calls first: one past its deadline leaves without ever being sent. Then the call in flight; settling
    // it sends the next live one, which is not due yet.
    for (let i = this.queueHead; i < this.queue.length; i++) {
      const p = this.queue[i] as CallRecord;
      if (!p.cancelled && p.deadline <= now) this.onTimeout(p);
    }
    const cur = this.current;
    if (cur !== null && cur.deadline <= now) this.onTimeout(cur);
    let next = this.current === null ? Infinity : this.current.deadline;
    for (let i = this.queueHead; i < this.queue.length; i++) {
      const p = this.queue[i] as CallRecord;
      if (!p.cancelled && p.deadline < next) next = p.deadline;
    }
    if (next !== Infinity) this.armTimer(next);
  }

  private onTimeout(p: CallRecord): void {
    const sent = p === this.current;
    this.stats_.timeouts++;
    this.log.warn('GSP RPC timed out', { fn: gspFunctionName(p.fn), sequence: sent ? p.sequence : undefined, timeoutMs: p.timeoutMs, sent });
    this.settleError(p, new VgpuError(ErrorCode.RpcTimeout,
      sent
        ? `GSP RPC ${gspFunctionName(p.fn)} (seq ${p.sequence}) got no reply within ${p.timeoutMs} ms`
        : `GSP RPC ${gspFunctionName(p.fn)} waited ${p.timeoutMs} ms behind the call in flight and was never sent`, {
        hint: sent
          ? 'the firmware is slow or hung; retry, and reset the GPU if it keeps happening'
          : 'GSP-RM takes one call at a time and the one ahead did not finish; retry, or give this call a longer timeout',
        details: { fn: p.fn, timeoutMs: p.timeoutMs, sent, ...(sent ? { sequence: p.sequence } : {}) },
      }));
  }

  // ---- receive side -------------------------------------------------------------------------------------

  /** How large a split message is, for the reassembler (see gsp-reassembler.ts). */
  private expectedBytes(fn: number, sequence: number, head: Uint8Array): number | null {
    const p = this.current;
    if (p !== null && fn === p.fn && sequence === p.sequence) {
      return p.replyBytes ?? declaredRmPayloadBytes(fn, head) ?? p.payload.length;
    }
    return declaredRmPayloadBytes(fn, head);
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
    const p = this.current;
    if (p === null || fn !== p.fn || sequence !== p.sequence) {
      if (this.expired.has(sequence)) {
        this.stats_.lateReplies++;
        this.log.debug('late GSP reply dropped (its caller timed out or cancelled)', { fn: gspFunctionName(fn), sequence });
      } else {
        // nouveau dumps a message no notifier claims and reads on; OpenRM logs "Unexpected RPC event".
        this.stats_.unexpected++;
        this.log.warn('GSP message matches no call in flight; dropped', {
          fn: gspFunctionName(fn), sequence, awaiting: p === null ? null : { fn: gspFunctionName(p.fn), sequence: p.sequence },
        });
      }
      return;
    }
    this.stats_.replies++;
    this.spin.observe(fn, (performance.now() - this.sentAt) * 1000);
    this.current = null;
    this.finish(p);
    if (result !== 0) {
      const reject = p.reject;
      this.recycle(p);
      reject(rpcResultError(result, fn, sequence));
    } else {
      const resolve = p.resolve;
      this.recycle(p);
      resolve(payload);
    }
    this.pump();
  }

  private onDrop(d: GspDrop): void {
    this.stats_.drops++;
    const p = this.current;
    // The damaged message is the reply we await when its header names our call (a continuation record of it
    // counts too); a damaged event or stray is only logged — OpenRM fails the waiting call on any receive error,
    // which would fail a call for a broken event it never asked for.
    const mine = p !== null && d.sequence === p.sequence && (d.fn === p.fn || d.fn === GspFunction.CONTINUATION_RECORD);
    this.log.warn('GSP message dropped', { reason: d.error.message, sequence: d.sequence, fn: d.fn, caller: mine });
    if (mine) this.settleError(p, d.error);
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

  /** Stop the client: the call in flight and every queued one reject with Cancelled. The region stays as it is. */
  close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      this.failEveryone(() => this.closedError());
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
        const n = this.receiver.drain(this.sink);
        this.checkHealth();
        if (n > 0) {
          this.spinUs = null; // the reply came before the loop could spin for it: that grant is spent
          // Let the caller we just resolved run first: it usually sends its next call at once. Then publish what
          // was written with ONE doorbell and look at the ring again — both sides stay busy instead of
          // ping-ponging wake-ups (a cross-thread wake costs ≈50 µs on these machines, docs/benchmarks.md).
          await null;
          sender.flush();
          continue;
        }
        // Never sleep on unpublished calls: the firmware cannot answer what it cannot see.
        sender.flush();
        if (this.closed || this.lostError !== null) break;
        // A call in flight: its reply is due, look for it a few tens of µs before sleeping (adaptive-spin.ts; backs
        // off while replies come late, so a busy host does not burn the core GSP-RM needs). Idle: sleep at once.
        if (this.current !== null) {
          const us = this.spinUs ?? this.spin.next(this.current.fn);
          this.spinUs = null;
          if (this.spin.spin(ready, us)) continue;
        }
        this.idle = true;
        try {
          await this.ep.inbound.sleep(ready, Infinity);
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
   * A call went in flight: tell the firmware we wait (its heartbeat runs only then, GspControl.HOST_WAITING) and make
   * sure the ONE health ticker runs. The loop sleeps without a timeout; the ticker wakes it to check the heartbeat
   * while a call waits — and only then: an idle client has no timer at all, it wakes only when the firmware rings
   * (a reply, an event, a state change such as a crash). A timeout on every sleep instead left a timer behind per
   * sleep (V8 schedules it and only cancels it when it comes due): at tens of thousands of sleeps a second they
   * piled up and fired stale, and the loop slowed by half after a second.
   */
  private startWaiting(): void {
    this.markHeartbeat();
    this.view.setControl(GspControl.HOST_WAITING, 1);
    if (this.ticker !== null || this.closed || this.lostError !== null) return;
    this.ticker = setInterval(() => {
      if (this.current === null) this.stopTicker();
      else if (this.idle) this.ep.inbound.ring(true);
    }, this.pollMs);
    this.ticker.unref();
  }

  /** Nothing in flight any more: the firmware may let its heartbeat rest. The ticker stops at its next tick. */
  private stopWaiting(): void {
    this.view.setControl(GspControl.HOST_WAITING, 0);
  }

  private stopTicker(): void {
    if (this.ticker !== null) clearInterval(this.ticker);
    this.ticker = null;
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
    if (this.current === null) return;
    if (state === GspFwState.Stopped) {
      this.lose(new VgpuError(ErrorCode.GpuLost, 'GSP firmware stopped with a call in flight', {
        hint: 'the firmware was shut down; reboot it before sending RPCs',
        details: { inFlight: gspFunctionName(this.current.fn), queued: this.queued },
      }));
      return;
    }
    if (state !== GspFwState.Running) {
      // Not beating yet (a call queued before the GSP was started): the heartbeat is judged from when it runs.
      this.markHeartbeat();
      return;
    }
    const hb = this.view.heartbeat();
    const now = Date.now();
    if (hb !== this.lastHeartbeat) {
      this.lastHeartbeat = hb;
      this.lastHeartbeatAt = now;
    } else if (now - this.lastHeartbeatAt > this.heartbeatTimeoutMs) {
      this.lose(new VgpuError(ErrorCode.GpuLost, `GSP heartbeat stopped for ${now - this.lastHeartbeatAt} ms with a call in flight`, {
        hint: 'the firmware is unresponsive; reset the GPU and reboot its firmware',
        details: { heartbeat: hb, inFlight: gspFunctionName(this.current.fn), queued: this.queued, heartbeatTimeoutMs: this.heartbeatTimeoutMs },
      }));
    }
  }

  private lose(error: VgpuError): void {
    if (this.lostError !== null) return;
    this.lostError = error;
    this.log.error('GSP lost', { reason: error.message, inFlight: this.inFlight, queued: this.queued });
    this.failEveryone(() => this.lostCopy());
    for (const w of [...this.readyWaiters]) w();
    for (const l of this.emitter.listeners('lost')) {
      try {
        l(error);
      } catch (e) {
        this.log.error('GSP lost listener threw', { error: (e as Error).message });
      }
    }
  }

  /** Reject the call in flight, every queued call and send, and whatever the sender still holds; stop the timer. */
  private failEveryone(error: () => VgpuError): void {
    const cur = this.current;
    this.current = null;
    if (cur !== null) {
      this.remember(cur.sequence);
      this.finish(cur);
      cur.reject(error());
    }
    const rest = this.queue.splice(this.queueHead);
    this.queue.length = 0;
    this.queueHead = 0;
    for (const p of rest) {
      if (p === undefined || p.cancelled) continue;
      this.finish(p);
      p.reject(error());
    }
    this.sender.failAll(error());
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.stopWaiting();
    this.stopTicker();
  }

  private lostCopy(): VgpuError {
    const e = this.lostError as VgpuError;
    return new VgpuError(e.code, e.message, { hint: e.hint, details: { ...e.details }, cause: e.cause });
  }

  private crashError(): VgpuError {
    const reason = this.view.control(GspControl.CRASH_REASON);
    return new VgpuError(ErrorCode.GpuLost, `GSP firmware crashed (reason ${reason})`, {
      hint: 'reset the GPU and reboot its firmware; the GSP log holds the crash record',
      details: { crashReason: reason, inFlight: this.inFlight, queued: this.queued, region: GspRegion.CONTROL },
    });
  }

  private closedError(): VgpuError {
    return new VgpuError(ErrorCode.Cancelled, 'GSP RPC client closed', { hint: 'the GPU is being detached; retry after it is back' });
  }

  private cancelledError(fn: number): VgpuError {
    return new VgpuError(ErrorCode.Cancelled, `GSP RPC ${gspFunctionName(fn)} cancelled`, { hint: 'the caller aborted the call' });
  }
}
