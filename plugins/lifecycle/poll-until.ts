/**
 * A bounded poll for shared-memory handshakes (the mailbox's "bootloaded" magic and sequence numbers).
 *
 * Upstream busy-loops up to 120,000,000 × 1–2 µs (nominally 120 s) in the kernel
 * (docs/reference/host-rpc-mailbox.md). In a Node process a busy loop would freeze every other vGPU, the API and the
 * event loop itself, so this yields between checks: the first few with setImmediate (an answer that is already there
 * costs microseconds), then short timers so an idle wait does not spin a core. The deadline comes from the config,
 * never a hard-coded 120 s.
 *
 * Where the device notifies (a `sleep` that ends when the awaited word is written: HostMapping.waitWord32), the wait
 * sleeps on that instead of spinning and ticking: the answer is seen when it is written, with no timer period in the
 * way (a 1 ms timer tick was most of a mailbox call, docs/benchmarks.md). Each sleep is still bounded by
 * WAKE_SLICE_MS, so a closed channel, an abort or a lost wake-up is noticed within that.
 */
import { ErrorCode, VgpuError } from '../../core/contracts/exceptions.js';
import { WAKE_SLICE_MS } from '../../core/contracts/memory.js';
import type { AdaptiveSpin } from '../../core/runtime/adaptive-spin.js';

export interface PollOptions {
  timeoutMs: number;
  /** Timer period once the fast phase is over (default 1 ms). */
  intervalMs?: number;
  /** Checks done with setImmediate before switching to timers (default 64). */
  fastChecks?: number;
  signal?: AbortSignal;
  /**
   * Sleep until the device may have answered, at most `ms` (HostMapping.waitWord32 on the word `check` reads, with the
   * value it last read). Replaces the immediates and the timer ticks.
   */
  sleep?: (ms: number) => Promise<void>;
  /**
   * Before the first sleep, look again for a few tens of µs (an answer just requested is usually that close; upstream
   * busy-polls the whole wait): no wake-up needed then on either side. Adaptive, see core/runtime/adaptive-spin.ts.
   */
  spin?: AdaptiveSpin;
  /** The kind of answer awaited (the spin learns a budget per kind, adaptive-spin.ts); default 0. */
  spinKey?: number;
  /** For the timeout message: "the BOOTLOADED magic of gfid 3". */
  what: string;
  hint?: string;
}

const immediate = (): Promise<void> => new Promise((r) => setImmediate(r));
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Resolve with the first non-undefined value `check` returns; reject with VGPU_ETIMEDOUT at the deadline. */
export async function pollUntil<T>(check: () => T | undefined, opts: PollOptions): Promise<T> {
  const start = performance.now();
  const deadline = start + opts.timeoutMs;
  const fast = opts.fastChecks ?? 64;
  for (let i = 0; ; i++) {
    if (opts.signal?.aborted) {
      throw new VgpuError(ErrorCode.Cancelled, `waiting for ${opts.what} was cancelled`, { hint: 'the caller aborted the operation' });
    }
    const v = check();
    if (v !== undefined) {
      // How long the answer took, from the request (just before this wait) to now: the spin's budget learns from it.
      opts.spin?.observe(opts.spinKey ?? 0, (performance.now() - start) * 1000);
      return v;
    }
    if (performance.now() >= deadline) {
      throw new VgpuError(ErrorCode.RpcTimeout, `${opts.what} did not arrive within ${opts.timeoutMs} ms`, {
        hint: opts.hint ?? 'the GSP plugin task is not answering; check the GSP log and the firmware state',
        details: { timeoutMs: opts.timeoutMs },
      });
    }
    if (i === 0 && opts.spin !== undefined) {
      let got: T | undefined;
      const key = opts.spinKey ?? 0;
      if (opts.spin.spin(() => (got = check()) !== undefined, opts.spin.next(key))) {
        opts.spin.observe(key, (performance.now() - start) * 1000);
        return got as T;
      }
    }
    if (opts.sleep !== undefined) await opts.sleep(Math.max(0, Math.min(WAKE_SLICE_MS, deadline - performance.now())));
    else if (i < fast) await immediate();
    else await sleep(Math.max(0, Math.min(opts.intervalMs ?? 1, deadline - performance.now())));
  }
}
