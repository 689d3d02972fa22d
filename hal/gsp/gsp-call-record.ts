/**
 * One call (or asynchronous send) of the host GSP client, and how its promise is made without a closure per call.
 */
import type { VgpuError } from '../../core/contracts/exceptions.js';
import { RPC_RESULT_PENDING } from './gsp-layout.js';
import type { OutgoingMessage } from './gsp-sender.js';

/**
 * One call (or asynchronous send). It is also the outgoing message, so one object per call instead of three.
 * Records are pooled: a record that went straight into the ring is referenced only by the client, so once settled
 * it serves the next call.
 */
export class CallRecord implements OutgoingMessage {
  fn = 0;
  /** RPC-header sequence; assigned when written (0 for an asynchronous send). */
  sequence = 0;
  gfid = 0;
  payload: Uint8Array = EMPTY;
  result = RPC_RESULT_PENDING;
  resultPrivate = RPC_RESULT_PENDING;
  /** No reply expected (send()). */
  async = false;
  /** Settled: skipped by the queue and by the sender if it was still waiting there. */
  cancelled = false;
  replyBytes: number | null = null;
  deadline = 0;
  timeoutMs = 0;
  signal: AbortSignal | undefined = undefined;
  onAbort: (() => void) | undefined = undefined;
  /** Written into the ring by send() itself: nothing outside the client holds the record, it may be reused. */
  recyclable = false;
  resolve: (payload: Uint8Array) => void = noop;
  reject: (error: VgpuError) => void = noop;
}

export const EMPTY = new Uint8Array(0);
/** Records kept for reuse. */
export const POOL_MAX = 64;

export function noop(): void {}

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

/** A promise whose resolving functions land in `p.resolve` / `p.reject`. */
export function promiseFor(p: CallRecord): Promise<Uint8Array> {
  const promise = new Promise<Uint8Array>(captureResolvers);
  p.resolve = capturedResolve;
  p.reject = capturedReject;
  return promise;
}
