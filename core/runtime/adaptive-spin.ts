/**
 * A bounded, adaptive spin for a waiter that has just sent a request and expects its answer (the host waiting for a
 * GSP-RM reply, or for a vGPU mailbox's `message_seq_num_processed`).
 *
 * Why spin at all: a create is six firmware round trips served one at a time (docs/reference/create-order.md), and
 * on a VM each cross-thread wake-up costs tens of µs on both ends (docs/benchmarks.md "GSP RPC — what changed").
 * A waiter that is still looking when the answer lands needs no wake: the answer's producer sees nobody asleep and
 * skips the notify, and the waiter reads it at once. Upstream's host busy-polls its mailbox outright
 * (docs/reference/host-rpc-mailbox.md); this spins a few tens of µs, then sleeps.
 *
 * Why adaptive: on a 2-core host where the cores are busy a spin burns the time the answering thread needs, and
 * misses anyway. Every spin that ends without the answer (a miss) makes the waiter skip spinning for the next
 * `skip` waits, doubling per consecutive miss up to MAX_SKIP; an answer caught while spinning (a hit) resets it.
 * So a loaded host spins on at most 1 wait in MAX_SKIP + 1 while answers keep coming late, and a quiet one on
 * nearly every wait. Only waits with a request outstanding spin: an idle waiter sleeps at once and costs nothing.
 *
 * `VGPUD_GSP_SPIN_US` sets the budget (µs; 0 = never spin). Unset: DEFAULT_SPIN_US, 0 — OFF. Measured on the
 * loaded 2-core CI host (load average 9–12 from other jobs), a 50 µs budget made bench:lifecycle's create slower
 * (p50 1.9–4.0 ms against 1.6–2.2 ms, CPU per create+destroy up 0.3–0.7 ms) even with the back-off: the spinning
 * thread holds a core the answering thread is waiting for. It is for a host with a core to spare, where it removes
 * one wake-up per round trip; turn it on there and measure (docs/benchmarks.md).
 */

/** Budget when VGPUD_GSP_SPIN_US is unset: 0, off (see above). */
export const DEFAULT_SPIN_US = 0;
/** Longest run of waits that skip spinning after consecutive misses. */
export const MAX_SKIP = 32;

/** The budget from the environment: VGPUD_GSP_SPIN_US if it is a number ≥ 0, else DEFAULT_SPIN_US. */
export function spinBudgetFromEnv(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env['VGPUD_GSP_SPIN_US'];
  if (raw === undefined || raw.trim() === '') return DEFAULT_SPIN_US;
  const n = Number(raw);
  return Number.isFinite(n) && n >= 0 ? n : DEFAULT_SPIN_US;
}

export class AdaptiveSpin {
  /** Waits still to skip before the next spin. */
  private skipLeft = 0;
  /** Skip length after the next miss. */
  private nextSkip = 1;
  /** Spins that caught their answer / that ended without it (benches print them). */
  hits = 0;
  misses = 0;

  constructor(readonly budgetUs: number = spinBudgetFromEnv()) {}

  /**
   * How long (µs) to spin before sleeping on this wait: the budget, or 0 while backing off. Call it once per wait
   * that expects an answer (a skipped wait counts towards the back-off too).
   */
  next(): number {
    if (this.budgetUs <= 0) return 0;
    if (this.skipLeft > 0) {
      this.skipLeft--;
      return 0;
    }
    return this.budgetUs;
  }

  /** The outcome of a wait that spun (next() returned > 0): did the answer come while spinning? */
  record(hit: boolean): void {
    if (hit) {
      this.hits++;
      this.nextSkip = 1;
      return;
    }
    this.misses++;
    this.skipLeft = this.nextSkip;
    this.nextSkip = Math.min(MAX_SKIP, this.nextSkip * 2);
  }

  /**
   * Spin on `ready` for `us` µs (default: what next() grants); true if it held within that (a hit, recorded), false
   * if the caller must sleep (a miss, recorded — or no spin this time). Looks at the clock every 16 polls:
   * performance.now() costs more than a look at a shared word.
   */
  spin(ready: () => boolean, us: number = this.next()): boolean {
    if (us <= 0) return false;
    const end = performance.now() + us / 1000;
    for (let i = 0; ; i++) {
      if (ready()) {
        this.record(true);
        return true;
      }
      if ((i & 15) === 15 && performance.now() >= end) break;
    }
    this.record(false);
    return false;
  }
}
