/**
 * Fault injection for the mock HAL, shaped after Linux's fail-nth / OpenRM's fault injection: fail (or delay, or
 * hang) the Nth call of an operation, optionally only when the arguments match.
 *
 * A hang never leaves a test stuck: it waits for `releaseHangs()`, but the caller's RpcOptions (`timeoutMs`,
 * `signal`) or, without them, the GPU's default RPC timeout still end it with VGPU_ETIMEDOUT — exactly what a
 * firmware that stops answering looks like to the real driver.
 */
import { ErrorCode, VgpuError } from '../../core/contracts/exceptions.js';

/** Operations that return a promise: every fault mode applies. */
export const MOCK_ASYNC_OPS = [
  'pci.list', 'hal.open', 'gpu.detach', 'gpu.close', 'gpu.reset',
  'firmware.boot', 'firmware.shutdown', 'firmware.rpc', 'firmware.allocClient', 'firmware.freeClient', 'firmware.control',
  'memory.fill', 'channels.allocCopyChannel', 'channel.submit', 'channel.free',
] as const;
/** Synchronous operations: only mode 'fail' applies (a sync call cannot be delayed). */
export const MOCK_SYNC_OPS = [
  'memory.reserve', 'memory.free', 'memory.map', 'channels.alloc', 'channels.free',
  'channel.mapMemory', 'channel.unmapMemory', 'channel.begin', 'registers.read32', 'registers.write32',
] as const;
export type MockAsyncOp = (typeof MOCK_ASYNC_OPS)[number];
export type MockSyncOp = (typeof MOCK_SYNC_OPS)[number];
export type MockOp = MockAsyncOp | MockSyncOp;

export type FaultMode = 'fail' | 'delay' | 'hang';

export interface FaultSpec {
  op: MockOp;
  /** Act on the Nth matching call counted from injection (1-based); default 1. */
  nth?: number;
  /** How many matching calls to act on from the Nth on; default 1, `Infinity` for every one. */
  times?: number;
  /** Default 'fail'. */
  mode?: FaultMode;
  /** For 'delay'. */
  delayMs?: number;
  /** For 'fail': the error to throw (default: a VgpuError with a code that fits the op). */
  error?: Error;
  /** Only calls whose argument summary matches count. */
  match?: (args: Record<string, unknown>) => boolean;
  /** Only calls to this GPU (BDF) count. */
  gpu?: string;
}

export interface FaultHandle {
  readonly id: number;
  readonly spec: Readonly<FaultSpec>;
  /** Matching calls seen so far. */
  readonly seen: number;
  /** Calls the fault acted on. */
  readonly fired: number;
  /** Stop acting (pending hangs of this fault keep waiting for releaseHangs or their timeout). */
  remove(): void;
}

export interface FaultWaitOptions {
  timeoutMs: number;
  signal?: AbortSignal;
}

interface ArmedFault extends FaultHandle {
  seen: number;
  fired: number;
  removed: boolean;
}

const SYNC = new Set<string>(MOCK_SYNC_OPS);
const ALL = new Set<string>([...MOCK_ASYNC_OPS, ...MOCK_SYNC_OPS]);

function defaultError(op: string, n: number): VgpuError {
  const code = op === 'memory.reserve' || op === 'channels.alloc' ? ErrorCode.NoSpace
    : op.startsWith('firmware.') || op.startsWith('channel') ? ErrorCode.FirmwareRpc
    : ErrorCode.Internal;
  return new VgpuError(code, `injected fault: ${op} call #${n} failed`, {
    hint: 'this failure was injected by the mock HAL test controls (mock.faults.inject)',
    details: { op, injected: true },
  });
}

/** Reject reason for an aborted signal: a timeout signal reads as an RPC timeout, anything else as cancelled. */
export function abortError(op: string, signal: AbortSignal): VgpuError {
  const reason: unknown = signal.reason;
  const isTimeout = reason instanceof Error && reason.name === 'TimeoutError';
  return isTimeout
    ? new VgpuError(ErrorCode.RpcTimeout, `${op} timed out (signal)`, { hint: 'the firmware did not answer in time', cause: reason })
    : new VgpuError(ErrorCode.Cancelled, `${op} was cancelled`, { hint: 'the caller aborted the call', cause: reason });
}

export class FaultInjector {
  private readonly faults: ArmedFault[] = [];
  private readonly hangs = new Set<() => void>();
  private nextId = 1;

  inject(spec: FaultSpec): FaultHandle {
    if (!ALL.has(spec.op)) {
      throw new VgpuError(ErrorCode.InvalidArgument, `unknown mock operation '${spec.op}'`, {
        hint: `one of: ${[...ALL].join(', ')}`,
      });
    }
    const mode = spec.mode ?? 'fail';
    if (mode !== 'fail' && SYNC.has(spec.op)) {
      throw new VgpuError(ErrorCode.InvalidArgument, `'${spec.op}' is synchronous: it can only 'fail', not '${mode}'`, {
        hint: "use mode 'fail' for synchronous operations",
      });
    }
    const nth = spec.nth ?? 1;
    const times = spec.times ?? 1;
    if (!Number.isInteger(nth) || nth < 1 || !(times >= 1)) {
      throw new VgpuError(ErrorCode.InvalidArgument, `nth must be an integer ≥ 1 and times ≥ 1 (got ${nth}, ${times})`, {
        hint: 'nth counts matching calls from 1',
      });
    }
    if (mode === 'delay' && !(typeof spec.delayMs === 'number' && spec.delayMs >= 0)) {
      throw new VgpuError(ErrorCode.InvalidArgument, "mode 'delay' needs delayMs ≥ 0", { hint: 'pass delayMs' });
    }
    const fault: ArmedFault = {
      id: this.nextId++,
      spec: Object.freeze({ ...spec, mode, nth, times }),
      seen: 0,
      fired: 0,
      removed: false,
      remove: () => {
        fault.removed = true;
        const i = this.faults.indexOf(fault);
        if (i >= 0) this.faults.splice(i, 1);
      },
    };
    this.faults.push(fault);
    return fault;
  }

  /** Remove every fault (pending hangs are released too, so nothing is left waiting). */
  clear(): void {
    for (const f of [...this.faults]) f.remove();
    this.releaseHangs();
  }

  /** Let every hung call proceed; returns how many were waiting. */
  releaseHangs(): number {
    const n = this.hangs.size;
    for (const release of [...this.hangs]) release();
    return n;
  }

  get pendingHangs(): number {
    return this.hangs.size;
  }

  /** Count the call against every matching fault; the first that fires decides. Internal to the mock. */
  check(op: string, gpu: string | undefined, args: Record<string, unknown>): FaultSpec | undefined {
    let hit: ArmedFault | undefined;
    for (const f of this.faults) {
      if (f.spec.op !== op || (f.spec.gpu !== undefined && f.spec.gpu !== gpu)) continue;
      if (f.spec.match !== undefined && !f.spec.match(args)) continue;
      f.seen++;
      if (hit === undefined && f.seen >= f.spec.nth! && f.fired < f.spec.times!) {
        f.fired++;
        hit = f;
      }
    }
    return hit?.spec;
  }

  /** Throw for a 'fail' fault (sync path). */
  throwFor(spec: FaultSpec, op: string, n: number): never {
    throw spec.error ?? defaultError(op, n);
  }

  /** Act on a fault for an async call: throw, wait, or hang (bounded by the timeout/signal). */
  async apply(spec: FaultSpec, op: string, wait: FaultWaitOptions): Promise<void> {
    const f = this.faults.find((x) => x.spec === spec);
    if (spec.mode === 'fail') this.throwFor(spec, op, f?.seen ?? 0);
    await this.wait(op, spec.mode === 'delay' ? spec.delayMs! : Infinity, wait);
  }

  private wait(op: string, ms: number, opts: FaultWaitOptions): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const timers: NodeJS.Timeout[] = [];
      const done = (err?: Error): void => {
        for (const t of timers) clearTimeout(t);
        this.hangs.delete(release);
        opts.signal?.removeEventListener('abort', onAbort);
        if (err) reject(err);
        else resolve();
      };
      const release = (): void => done();
      const onAbort = (): void => done(abortError(op, opts.signal!));
      if (opts.signal?.aborted) return done(abortError(op, opts.signal));
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      if (Number.isFinite(ms)) timers.push(setTimeout(release, ms));
      else this.hangs.add(release);
      if (Number.isFinite(opts.timeoutMs) && opts.timeoutMs < ms) {
        timers.push(setTimeout(() => done(new VgpuError(ErrorCode.RpcTimeout, `${op} got no reply within ${opts.timeoutMs} ms`, {
          hint: 'the firmware stopped answering (injected by the mock); check the GSP state or raise timeoutMs',
          details: { op, timeoutMs: opts.timeoutMs },
        })), opts.timeoutMs));
      }
    });
  }
}
