/**
 * The test controls one mock family (bus + HAL + its GPUs) shares: the fault injector, the call log and the
 * wrappers every mock operation runs through, so recording, fault injection and "GPU lost" behave the same for
 * every operation.
 */
import { ErrorCode, VgpuError } from '../../core/contracts/exceptions.js';
import { CallRecorder, type MockCallRecord } from './mock-call-recorder.js';
import { FaultInjector, type MockAsyncOp, type MockSyncOp } from './mock-faults.js';

/**
 * Calls in flight on one GPU. `crash()` rejects them all with VGPU_ELOST: the real driver fails every waiter when
 * the GSP dies rather than letting each one run into its own timeout.
 */
export class InflightCalls {
  private readonly rejecters = new Set<(e: Error) => void>();

  get size(): number {
    return this.rejecters.size;
  }

  track<T>(work: Promise<T>): Promise<T> {
    work.catch(() => {}); // if "lost" wins the race, a later rejection of `work` must not become unhandled
    let rejectLost!: (e: Error) => void;
    const lost = new Promise<never>((_, reject) => { rejectLost = reject; });
    this.rejecters.add(rejectLost);
    return Promise.race([work, lost]).finally(() => this.rejecters.delete(rejectLost));
  }

  rejectAll(err: Error): number {
    const n = this.rejecters.size;
    for (const r of [...this.rejecters]) r(err);
    this.rejecters.clear();
    return n;
  }
}

export interface RunContext {
  gpu?: string;
  timeoutMs: number;
  signal?: AbortSignal;
  inflight?: InflightCalls;
}

export class MockControls {
  readonly faults = new FaultInjector();
  readonly recorder: CallRecorder;

  constructor(readonly now: () => number = Date.now) {
    this.recorder = new CallRecorder(now);
  }

  /** Every call so far (a copy). */
  get calls(): MockCallRecord[] {
    return this.recorder.list();
  }

  runSync<T>(op: MockSyncOp, gpu: string | undefined, args: Record<string, unknown>, fn: () => T): T {
    const rec = this.recorder.begin(op, gpu, args);
    try {
      const spec = this.faults.check(op, gpu, args);
      if (spec !== undefined) {
        rec.injected = 'fail';
        this.faults.throwFor(spec, op, rec.seq);
      }
      const r = fn();
      this.recorder.ok(rec, r);
      return r;
    } catch (e) {
      this.recorder.fail(rec, e);
      throw e;
    }
  }

  async run<T>(op: MockAsyncOp, args: Record<string, unknown>, ctx: RunContext, fn: () => T | Promise<T>): Promise<T> {
    const rec = this.recorder.begin(op, ctx.gpu, args);
    const work = (async (): Promise<T> => {
      // Always settle asynchronously (as serialport's binding-mock does), so callers cannot come to rely on a
      // synchronous answer that real firmware never gives.
      await Promise.resolve();
      if (ctx.signal?.aborted) {
        throw new VgpuError(ErrorCode.Cancelled, `${op} was cancelled before it started`, { hint: 'the caller aborted the call' });
      }
      const spec = this.faults.check(op, ctx.gpu, args);
      if (spec !== undefined) {
        rec.injected = spec.mode ?? 'fail';
        await this.faults.apply(spec, op, { timeoutMs: ctx.timeoutMs, ...(ctx.signal ? { signal: ctx.signal } : {}) });
      }
      return await fn();
    })();
    try {
      const r = await (ctx.inflight ? ctx.inflight.track(work) : work);
      this.recorder.ok(rec, r);
      return r;
    } catch (e) {
      this.recorder.fail(rec, e);
      throw e;
    }
  }
}
