/**
 * Device side of the GSP transport: the simulated GSP-RM's queue handling. Runs inside the simulator's GSP
 * thread (see gsp-worker.ts). It reads the command queue, checks and reassembles elements, hands each RPC to a
 * pluggable handler, and writes the reply — with the request's function and RPC sequence — to the message queue.
 * Facts and sources: docs/reference/gsp-queues.md.
 *
 * One command at a time, in queue order. GSP-RM serves RPCs on one thread (inferred: its clients keep a single
 * RPC outstanding and nothing in them could tell two answers apart by more than function and sequence), so a
 * command is not started before the previous one was answered: a handler that takes long — or a delayed reply —
 * holds back every command behind it, as a slow RPC on silicon does. The common synchronous handler answers
 * from inside the drain, with no queueing at all.
 *
 * No reply for the asynchronous RPCs (GSP_ASYNC_FUNCTIONS: GSP_SET_SYSTEM_INFO, SET_REGISTRY): the handler runs,
 * nothing is written back; GSP-RM's answer to the boot pair is the GSP_INIT_DONE event.
 *
 * Events (postEvent) are written when raised, between replies, whatever command is being served: GSP-RM raises
 * them from its own tasks, and the host must take them while it waits for a reply.
 *
 * It also owns the firmware side of the control page: FW_STATE (booting → running → crashed/stopped), the
 * heartbeat the host uses for crash detection (kept moving only while the host waits for a reply: HOST_WAITING),
 * and the host interrupt word.
 *
 * Fault injection: fail the Nth call of a function with a result code, drop a reply, delay a reply (the firmware
 * is busy for that long), corrupt the next outgoing element after its checksum (OpenRM's message-queue
 * injection, `message_queue_cpu.c`), crash.
 */
import { ErrorCode, VgpuError } from '../../../core/contracts/exceptions.js';
import type { Logger } from '../../../core/contracts/logger.js';
import type { SharedArena } from '../../../native/native-ops.js';
import { elementsFor, type GspDrop, type GspReceiverSink } from '../../gsp/gsp-element.js';
import {
  GSP_ASYNC_FUNCTIONS,
  GSP_CONTROL_MAGIC,
  GSP_EVENT_BASE,
  GspControl,
  GspFunction,
  GspFwState,
  GspRegion,
  RmStatus,
  gspFunctionName,
} from '../../gsp/gsp-layout.js';
import { GspRegionView, checkQueueHeader, openEndpoint, writeQueueHeader, type GspEndpoint } from '../../gsp/gsp-queue.js';
import { GspReceiver } from '../../gsp/gsp-receiver.js';
import { GspSender } from '../../gsp/gsp-sender.js';
import { declaredRmPayloadBytes } from '../../gsp/rm-payload.js';
import { FirmwareSpin, type FirmwareWorkSource } from './firmware-spin.js';

export interface GspCallInfo {
  /** RPC-header sequence of the request (the reply carries it back). */
  sequence: number;
  /** cpuRmGfid of the request (0 = the PF). */
  gfid: number;
}

export interface GspHandlerResult {
  /** rpc_result: 0 = success; non-zero makes the host reject the call with a typed error (rm-payload.ts). */
  result: number;
  payload: Uint8Array;
}

/**
 * What the simulated firmware does with one RPC. `payload` is the request payload (RPC header stripped, a copy
 * the handler may keep). Return (or resolve) the reply; throwing replies with RmStatus.GENERIC. For an
 * asynchronous RPC (GSP_ASYNC_FUNCTIONS) the result is not sent anywhere.
 */
export type GspRpcHandler = (fn: number, payload: Uint8Array, info: GspCallInfo) => Promise<GspHandlerResult> | GspHandlerResult;

/** Injected faults. `fn` limits a fault to one function; `nth` (1-based, default 1) counts matching calls from now. */
export type GspFault =
  | { kind: 'fail-call'; fn: number; nth?: number; result: number }
  | { kind: 'drop-reply'; fn?: number; nth?: number }
  | { kind: 'delay-reply'; ms: number; fn?: number; nth?: number }
  | { kind: 'corrupt-next-element' }
  | { kind: 'crash'; reason?: number };

export interface GspRpcServerOptions {
  arena: SharedArena;
  base?: bigint;
  handler?: GspRpcHandler;
  /** Heartbeat period (ms). Default 100. */
  heartbeatMs?: number;
  /** Wait for message-queue space per element. Default 1000. */
  spaceTimeoutMs?: number;
  /** The firmware thread's look-before-sleep (firmware-spin.ts); default: a new one, VGPUD_SIM_FW_SPIN_US. */
  firmwareSpin?: FirmwareSpin;
  /** Budget (µs) of the default firmwareSpin, instead of VGPUD_SIM_FW_SPIN_US. */
  firmwareSpinUs?: number;
  logger?: Logger;
}

export interface GspServerStats {
  requests: number;
  replies: number;
  events: number;
  drops: number;
  faultsFired: number;
  /** Asynchronous commands handled and, as on silicon, not answered. */
  unanswered: number;
  /** Commands and replies per function number (plain objects: they cross postMessage). */
  requestsByFn: Record<number, number>;
  repliesByFn: Record<number, number>;
  /**
   * Most commands ever received and not yet finished (answered, dropped or handled without reply) at once. A host
   * that keeps one RPC outstanding never gets this above 1.
   */
  maxOutstanding: number;
  /**
   * Commands whose RPC sequence was not the one expected after the previous command (that one's plus its element
   * count; 0 = an unnumbered asynchronous RPC). 570 GSP-RM asserts on this order (nouveau commit 90caca3b7264);
   * the simulated one counts and logs it and serves on.
   */
  sequenceErrors: number;
  /** Times the command loop went to sleep on its doorbell (each costs a wake-up when the next command comes). */
  sleeps: number;
  /**
   * The firmware thread's look-before-sleep (firmware-spin.ts), both loops together: spins that saw work come, spins
   * that ended without it, and commands of the other loop served from inside a spin.
   */
  spinHits: number;
  spinMisses: number;
  servedInSpin: number;
}

/** A command waiting its turn behind the one being served. */
interface Command {
  fn: number;
  sequence: number;
  gfid: number;
  payload: Uint8Array;
  /** Set: answer with this rpc_result without running the handler (a malformed command). */
  refuse: number | null;
}

/** Crash reasons the server itself writes into CRASH_REASON. */
export const GspCrashReason = {
  Injected: 1,
  QueueDesync: 2,
} as const;

/**
 * A command loop that keeps finding work never waits on the event loop, so timers (delayed replies, the
 * heartbeat) and I/O of this thread would starve under a flood; give the event loop a turn at least this often.
 */
const MACROTASK_YIELD_MS = 5;

interface ArmedFault {
  fault: Exclude<GspFault, { kind: 'corrupt-next-element' } | { kind: 'crash' }>;
  remaining: number;
}

const NOOP_LOGGER: Logger = {
  error() {}, warn() {}, info() {}, debug() {}, child() { return NOOP_LOGGER; },
};

export class GspRpcServer {
  readonly view: GspRegionView;
  /** The RPC handler; replace it before start() (the worker builds it with a context that names the server). */
  handler: GspRpcHandler | null;
  private ep: GspEndpoint | null = null;
  private sender: GspSender | null = null;
  private receiver: GspReceiver | null = null;
  private readonly log: Logger;
  private readonly heartbeatMs: number;
  private readonly spaceTimeoutMs: number;
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private readonly haltListeners = new Set<(state: GspFwState) => void>();
  private running = false;
  private faults: ArmedFault[] = [];
  private eventSeq = 0;
  private loopDone: Promise<void> = Promise.resolve();
  readonly stats: GspServerStats = {
    requests: 0, replies: 0, events: 0, drops: 0, faultsFired: 0, unanswered: 0, requestsByFn: {}, repliesByFn: {}, maxOutstanding: 0,
    sequenceErrors: 0, sleeps: 0, spinHits: 0, spinMisses: 0, servedInSpin: 0,
  };
  /** True while a command is being served asynchronously (promise handler or delayed reply). */
  private busy = false;
  /** Commands received while busy, in queue order. */
  private readonly inbox: Command[] = [];
  /** Work handed to afterReplies(), run once the replies written before it are published. */
  private deferred: Array<() => void> = [];
  /** RPC sequence the next numbered command should carry; null until the first one (or after a dropped one). */
  private nextRpcSeq: number | null = null;
  /**
   * This thread's look-before-sleep, shared with the plugin tasks' mailbox watcher (plugin-task-runtime.ts): after
   * serving, the command loop looks at the command queue and the mailbox doorbell for a bounded while before it sleeps.
   */
  readonly firmwareSpin: FirmwareSpin;
  /** The command queue as a source of work for firmwareSpin (set while started). */
  private source: FirmwareWorkSource | null = null;
  private removeSource: (() => void) | null = null;
  private readonly sink: GspReceiverSink = {
    message: (fn, sequence, _result, _resultPrivate, gfid, payload) => this.onRequest(fn, sequence, gfid, payload),
    drop: (d) => this.onDrop(d),
    fatal: (e) => {
      this.log.error('command queue desynchronised; GSP stops', { error: e.message });
      this.crash(GspCrashReason.QueueDesync);
    },
    // GSP-RM learns a split command's size from its payload (inferred); we know RM control and alloc.
    expectedBytes: (fn, _sequence, head) => declaredRmPayloadBytes(fn, head),
  };

  constructor(opts: GspRpcServerOptions) {
    this.view = new GspRegionView(opts.arena, opts.base ?? 0n);
    this.handler = opts.handler ?? null;
    this.heartbeatMs = opts.heartbeatMs ?? 100;
    this.spaceTimeoutMs = opts.spaceTimeoutMs ?? 1000;
    this.firmwareSpin = opts.firmwareSpin ?? new FirmwareSpin(opts.firmwareSpinUs);
    this.log = (opts.logger ?? NOOP_LOGGER).child({ component: 'sim-gsp' });
  }

  get isRunning(): boolean {
    return this.running;
  }

  /** The stats with the wake-up figures filled in (a copy: it crosses postMessage). */
  snapshotStats(): GspServerStats {
    const spin = this.firmwareSpin;
    return {
      ...this.stats, sleeps: this.ep?.inbound.sleeps ?? 0, spinHits: spin.spin.hits, spinMisses: spin.spin.misses,
      servedInSpin: spin.servedForOthers,
    };
  }

  /**
   * Boot: check the host's command-queue header, write our message-queue header, go RUNNING, start the
   * heartbeat and the command loop.
   */
  start(): void {
    if (this.running) return;
    if (this.handler === null) {
      throw new VgpuError(ErrorCode.IllegalState, 'GSP server started without a handler', {
        hint: 'pass `handler` or assign server.handler before start()',
      });
    }
    const v = this.view;
    if (v.control(GspControl.MAGIC) !== GSP_CONTROL_MAGIC) {
      throw new VgpuError(ErrorCode.FirmwareBoot, 'GSP region not initialised by the host (control magic missing)', {
        hint: 'create the host GspRpcClient (it initialises the region) before starting the simulated GSP',
      });
    }
    checkQueueHeader(v, GspRegion.CMDQ, 'command');
    v.setControl(GspControl.FW_STATE, GspFwState.Booting);
    writeQueueHeader(v, GspRegion.MSGQ);
    const ep = openEndpoint(v, 'gsp');
    this.ep = ep;
    this.sender = new GspSender(ep, {
      spaceTimeoutMs: this.spaceTimeoutMs,
      deadReason: () => (this.running ? null : new VgpuError(ErrorCode.GpuLost, 'GSP stopped', { hint: 'restart the simulated GSP' })),
      onError: (m, e) => this.log.warn('GSP message not delivered', { fn: gspFunctionName(m.fn), sequence: m.sequence, error: e.message }),
    });
    this.receiver = new GspReceiver(ep);
    const rx = this.receiver;
    const tx = this.sender;
    this.source = {
      hasWork: () => this.running && rx.hasInput(),
      // Another source's spin found commands while our loop sleeps: serve them now, as the loop would (its wake-up
      // then finds the ring empty and sleeps again). A command that waits for a promise is left to finish as usual.
      serveNow: () => {
        if (!this.running) return;
        this.pumpHeartbeat();
        rx.drain(this.sink);
        tx.flush();
        this.runDeferred();
      },
    };
    this.removeSource = this.firmwareSpin.add(this.source);
    v.setControl(GspControl.CRASH_REASON, 0);
    v.setControl(GspControl.HEARTBEAT_PERIOD_MS, this.heartbeatMs);
    this.running = true;
    v.setControl(GspControl.FW_STATE, GspFwState.Running);
    ep.outbound.ring(true); // state changed: interrupt the host
    this.loopDone = this.loop();
  }

  /** Send a firmware event (fn ≥ 0x1000) to the host. */
  postEvent(fn: number, payload: Uint8Array = new Uint8Array(0), opts: { gfid?: number } = {}): void {
    if (fn < GSP_EVENT_BASE) {
      throw new VgpuError(ErrorCode.InvalidArgument, `${gspFunctionName(fn)} is not an event number`, {
        hint: 'events are 0x1000 and above (GspEvent)',
      });
    }
    if (!this.running || this.sender === null) return;
    this.eventSeq = (this.eventSeq + 1) >>> 0;
    this.stats.events++;
    this.sender.send({
      fn, sequence: this.eventSeq, result: 0, resultPrivate: 0, gfid: opts.gfid ?? 0, payload,
    });
  }

  inject(fault: GspFault): void {
    switch (fault.kind) {
      case 'corrupt-next-element':
        if (this.sender === null) throw this.notStarted();
        this.sender.corruptNext = true;
        return;
      case 'crash':
        this.crash(fault.reason ?? GspCrashReason.Injected);
        return;
      default: {
        const nth = fault.nth ?? 1;
        if (!Number.isInteger(nth) || nth < 1) {
          throw new VgpuError(ErrorCode.InvalidArgument, `fault nth=${nth} must be a positive integer`, { hint: 'count calls from 1' });
        }
        this.faults.push({ fault, remaining: nth });
      }
    }
  }

  /**
   * Run `work` right after the replies written so far are published (and the host rung), before the next command
   * is read: for what GSP-RM does asynchronously to the RPC that started it (a plugin task's own start-up after
   * BOOTLOAD returns). Nothing can overtake it — no command is served before it has run — but the host does not
   * wait for it in the reply. Errors are logged; a halted GSP drops what is pending.
   */
  afterReplies(work: () => void): void {
    this.deferred.push(work);
  }

  private runDeferred(): void {
    while (this.deferred.length > 0 && this.running) {
      const batch = this.deferred;
      this.deferred = [];
      for (const w of batch) {
        try {
          w();
        } catch (e) {
          this.log.error('deferred GSP work threw', { error: (e as Error).message });
        }
      }
    }
    this.deferred.length = 0;
  }

  /** Forget every armed fault. */
  clearFaults(): void {
    this.faults = [];
    if (this.sender !== null) this.sender.corruptNext = false;
  }

  /** Called once when the firmware stops answering (crash or orderly stop), after FW_STATE is written. */
  onHalt(listener: (state: GspFwState) => void): () => void {
    this.haltListeners.add(listener);
    return () => this.haltListeners.delete(listener);
  }

  /**
   * The heartbeat runs while the host waits for replies (GspControl.HOST_WAITING) and stops by itself when the host
   * stops waiting: an idle firmware thread sleeps on its doorbell with no timer at all. Looked at whenever the
   * command loop wakes, which a host that starts waiting always causes (it publishes a command and rings).
   */
  private pumpHeartbeat(): void {
    if (this.heartbeatTimer !== null || !this.running) return;
    const v = this.view;
    if (v.control(GspControl.HOST_WAITING) === 0) return;
    const beat = (): void => { Atomics.add(v.i32, (GspRegion.CONTROL + GspControl.HEARTBEAT) >>> 2, 1); };
    beat();
    this.heartbeatTimer = setInterval(() => {
      if (!this.running || v.control(GspControl.HOST_WAITING) === 0) {
        if (this.heartbeatTimer !== null) clearInterval(this.heartbeatTimer);
        this.heartbeatTimer = null;
        return;
      }
      beat();
    }, this.heartbeatMs);
  }

  /** Stop answering, mark the firmware crashed, interrupt the host. */
  crash(reason: number = GspCrashReason.Injected): void {
    this.halt(GspFwState.Crashed, reason);
  }

  /** Orderly stop (firmware unload). */
  async stop(): Promise<void> {
    this.halt(GspFwState.Stopped, 0);
    await this.loopDone;
  }

  private halt(state: GspFwState, reason: number): void {
    if (!this.running) return;
    this.running = false;
    this.inbox.length = 0; // a halted GSP-RM serves nothing more
    this.removeSource?.();
    this.removeSource = null;
    if (this.heartbeatTimer !== null) clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = null;
    this.view.setControl(GspControl.CRASH_REASON, reason);
    this.view.setControl(GspControl.FW_STATE, state);
    this.sender?.failAll(new VgpuError(ErrorCode.GpuLost, 'GSP halted', { hint: 'restart the simulated GSP' }));
    this.ep?.outbound.ring(true); // the host must notice now, not at its next poll
    this.ep?.inbound.ring(true); // wake our own loop so it exits
    for (const l of [...this.haltListeners]) {
      try {
        l(state);
      } catch (e) {
        this.log.error('GSP halt listener threw', { error: (e as Error).message });
      }
    }
  }

  private notStarted(): VgpuError {
    return new VgpuError(ErrorCode.IllegalState, 'GSP server not started', { hint: 'call start() first' });
  }

  private async loop(): Promise<void> {
    const ep = this.ep as GspEndpoint;
    const rx = this.receiver as GspReceiver;
    const tx = this.sender as GspSender;
    const source = this.source as FirmwareWorkSource;
    const ready = (): boolean => rx.hasInput();
    let lastYield = performance.now();
    /** Commands were served since the last sleep: the next one is likely close (firmware-spin.ts). */
    let served = false;
    while (this.running) {
      this.pumpHeartbeat();
      // Drain every command there is; synchronous handlers write their replies into the ring as they go.
      const n = rx.drain(this.sink);
      if (n > 0) {
        served = true;
        // One microtask turn: handlers that finish in a microtask (most async ones) add their replies to this
        // batch. Then all replies go out with ONE write-pointer store and ONE doorbell.
        await null;
        tx.flush();
        this.runDeferred();
        const now = performance.now();
        if (now - lastYield > MACROTASK_YIELD_MS) {
          lastYield = now;
          await new Promise<void>((r) => setImmediate(r));
        }
        continue;
      }
      tx.flush();
      this.runDeferred();
      if (!this.running) break;
      // Replies are out. Having just served, look for the host's next command (or a mailbox call) a little while
      // before sleeping, as an always-running GSP would see it (firmware-spin.ts: bounded, backs off, and not at all
      // when nothing was served — an idle firmware sleeps at once). Not while a command waits for a promise or a
      // timer: those need this thread's event loop, which a spin would hold.
      if (this.firmwareSpin.beforeSleep(source, served && !this.busy) === 'own') continue;
      served = false;
      // No timeout: halt() rings us awake, and a timeout per sleep would leave a V8 timer behind every time
      // (see the client's receive loop).
      await ep.inbound.sleep(ready, Infinity);
      lastYield = performance.now();
    }
  }

  private onDrop(d: GspDrop): void {
    this.stats.drops++;
    this.nextRpcSeq = null; // we cannot tell how many numbers the lost command used
    this.log.warn('GSP dropped a command element', { reason: d.error.message, sequence: d.sequence, fn: d.fn });
    // Answer if we can tell whom to answer: the host then fails that one call instead of timing out. Not for a
    // continuation record (its first element's owner is reported separately) nor for an asynchronous command.
    if (d.sequence === null || d.fn === null || d.fn === GspFunction.CONTINUATION_RECORD || d.fn >= GSP_EVENT_BASE) return;
    if (GSP_ASYNC_FUNCTIONS.has(d.fn)) return;
    const result = d.error.code === ErrorCode.Checksum ? RmStatus.SIM_BAD_CHECKSUM : RmStatus.SIM_BAD_MESSAGE;
    this.accept({ fn: d.fn, sequence: d.sequence, gfid: 0, payload: new Uint8Array(0), refuse: result });
  }

  private onRequest(fn: number, sequence: number, gfid: number, payload: Uint8Array): void {
    this.stats.requests++;
    this.stats.requestsByFn[fn] = (this.stats.requestsByFn[fn] ?? 0) + 1;
    if (fn >= GSP_EVENT_BASE) {
      this.log.warn('host sent an event number as a command; ignored', { fn: gspFunctionName(fn) });
      return;
    }
    if (sequence !== 0) {
      if (this.nextRpcSeq !== null && sequence !== this.nextRpcSeq) {
        this.stats.sequenceErrors++;
        this.log.warn('RPC sequence out of order (570 GSP-RM asserts here)', { fn: gspFunctionName(fn), expected: this.nextRpcSeq, got: sequence });
      }
      this.nextRpcSeq = (sequence + elementsFor(payload.length)) >>> 0;
    }
    this.accept({ fn, sequence, gfid, payload, refuse: null });
  }

  /** Serve `c` now if nothing is being served, else queue it behind. */
  private accept(c: Command): void {
    const outstanding = this.inbox.length + (this.busy ? 1 : 0) + 1;
    if (outstanding > this.stats.maxOutstanding) this.stats.maxOutstanding = outstanding;
    if (this.busy) {
      this.inbox.push(c);
      return;
    }
    this.serve(c);
  }

  /** Serve queued commands until one has to wait (busy) or none is left. */
  private serveInbox(): void {
    while (!this.busy && this.running && this.inbox.length > 0) this.serve(this.inbox.shift() as Command);
  }

  /** Run one command; its reply is written before this returns unless the handler (or a fault) makes it wait. */
  private serve(c: Command): void {
    const { fn, sequence, gfid } = c;
    if (c.refuse !== null) {
      this.reply(fn, sequence, gfid, c.refuse, new Uint8Array(0));
      return;
    }
    // Faults are looked at only while some are armed: the common path allocates nothing for them.
    const fired = this.faults.length > 0 ? this.fireFaults(fn, sequence) : null;
    const drop = fired?.drop ?? false;
    const delayMs = fired?.delayMs ?? 0;
    let r: Promise<GspHandlerResult> | GspHandlerResult;
    if (fired !== null && fired.fail !== null) {
      r = { result: fired.fail, payload: new Uint8Array(0) };
    } else {
      try {
        r = (this.handler as GspRpcHandler)(fn, c.payload, { sequence, gfid });
      } catch (e) {
        r = this.handlerFailed(fn, sequence, e);
      }
    }
    if (!isThenable(r) && delayMs === 0) {
      // The common case: a synchronous answer goes straight into the reply ring.
      this.finish(fn, sequence, gfid, r, drop);
      return;
    }
    this.busy = true;
    void (async () => {
      let res: GspHandlerResult;
      try {
        res = await r;
      } catch (e) {
        res = this.handlerFailed(fn, sequence, e);
      }
      if (delayMs > 0) await new Promise<void>((resolve) => setTimeout(resolve, delayMs));
      this.busy = false;
      this.finish(fn, sequence, gfid, res, drop);
      // Work this command deferred runs once its reply is out, before any command queued behind it.
      if (this.deferred.length > 0) {
        this.sender?.flush();
        this.runDeferred();
      }
      this.serveInbox();
    })();
  }

  /** The armed faults that fire for this call of `fn` (each counts the calls it matches). */
  private fireFaults(fn: number, sequence: number): { fail: number | null; drop: boolean; delayMs: number } {
    const out = { fail: null as number | null, drop: false, delayMs: 0 };
    for (let i = 0; i < this.faults.length; i++) {
      const a = this.faults[i] as ArmedFault;
      if (a.fault.fn !== undefined && a.fault.fn !== fn) continue;
      if (--a.remaining > 0) continue;
      this.faults.splice(i--, 1);
      this.stats.faultsFired++;
      this.log.info('injected GSP fault fires', { kind: a.fault.kind, fn: gspFunctionName(fn), sequence });
      if (a.fault.kind === 'fail-call') out.fail = a.fault.result;
      else if (a.fault.kind === 'drop-reply') out.drop = true;
      else out.delayMs = Math.max(out.delayMs, a.fault.ms);
    }
    return out;
  }

  private handlerFailed(fn: number, sequence: number, e: unknown): GspHandlerResult {
    this.log.error('GSP RPC handler threw', { fn: gspFunctionName(fn), sequence, error: (e as Error)?.message });
    return { result: RmStatus.GENERIC, payload: new Uint8Array(0) };
  }

  private finish(fn: number, sequence: number, gfid: number, res: GspHandlerResult, drop: boolean): void {
    if (GSP_ASYNC_FUNCTIONS.has(fn)) {
      // GSP-RM never answers these; a failure shows in its log and in the missing GSP_INIT_DONE.
      this.stats.unanswered++;
      if (res.result !== 0) this.log.warn('asynchronous RPC failed (no reply is sent for it)', { fn: gspFunctionName(fn), result: res.result });
      return;
    }
    if (drop) return;
    this.reply(fn, sequence, gfid, res.result, res.payload);
  }

  private reply(fn: number, sequence: number, gfid: number, result: number, payload: Uint8Array): void {
    if (!this.running || this.sender === null) return; // crashed firmware answers nothing
    this.stats.replies++;
    this.stats.repliesByFn[fn] = (this.stats.repliesByFn[fn] ?? 0) + 1;
    // Written now, published with the rest of the batch (the loop's flush, or the sender's microtask when the
    // reply comes from an async handler or a timer).
    this.sender.sendFields(fn, sequence, result >>> 0, result >>> 0, gfid, payload);
  }
}

function isThenable<T>(v: unknown): v is Promise<T> {
  return typeof v === 'object' && v !== null && typeof (v as { then?: unknown }).then === 'function';
}
