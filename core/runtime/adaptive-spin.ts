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
 * Why learned: a budget shorter than the answer always misses, one much longer burns what it does not need. Unset
 * `VGPUD_GSP_SPIN_US` (the default), the budget of each kind of call (the caller's key: the GSP function, the mailbox
 * message type) is twice the recent time its answers took (an average over the last few, each capped) plus 10 µs,
 * between AUTO_MIN_US and AUTO_CAP_US; a kind whose answers take longer than the cap on average is not spun for at
 * all — the wait sleeps at once, as it would after the whole budget anyway. A first call of a kind spins up to the
 * cap. `VGPUD_GSP_SPIN_US=n` fixes the budget at n µs for every call instead (0 = never spin).
 *
 * Why it is on now, when it used to be off: it was off because on the loaded 2-core CI host a fixed 50 µs spin made
 * creates slower (the spinning thread held the core the answering thread needed). Two things changed: the simulated
 * firmware now looks for the next command after a reply instead of needing a wake-up for it
 * (hal/sim/gsp/firmware-spin.ts), so with both looking an answer comes in µs where it took 100+, and the budget
 * follows the answer times, so a host whose answers come late stops spinning for them. Measured interleaved against
 * off, at load 6–9 and with two CPU hogs on top: no change beyond that load's swing; round trips of 3.6–10 µs when
 * both sides' spins line up (docs/benchmarks.md "Wake-ups per round trip"). Ending the back-off early whenever an
 * answer came within the budget was tried and made things worse under load (both sides spinning, no core to spare).
 */

/** VGPUD_GSP_SPIN_US unset: learn the budget per kind of call, up to AUTO_CAP_US. */
export const AUTO_SPIN = -1;
/** Budget when VGPUD_GSP_SPIN_US is unset: learned (AUTO_SPIN). */
export const DEFAULT_SPIN_US = AUTO_SPIN;
/** Longest learned budget (µs); a kind of call whose answers take longer on average is not spun for. */
export const AUTO_CAP_US = 200;
/** Shortest learned budget (µs): answers that are mostly there at once must not shrink it below a wake-up's worth. */
export const AUTO_MIN_US = 50;
/** Learned budget = LEARN_FACTOR × the recent answer time + LEARN_SLACK_US (µs). */
const LEARN_FACTOR = 2;
const LEARN_SLACK_US = 10;
/** Weight of a new answer time in the running average (1/4: the last few calls dominate). */
const LEARN_WEIGHT = 0.25;
/** Longest run of waits that skip spinning after consecutive misses. */
export const MAX_SKIP = 32;

/** A spin budget (µs) from environment variable `name`: its value if it is a number ≥ 0, else `fallback`. */
export function budgetFromEnv(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const n = Number(raw);
  return Number.isFinite(n) && n >= 0 ? n : fallback;
}

/** The budget from the environment: VGPUD_GSP_SPIN_US if it is a number ≥ 0, else DEFAULT_SPIN_US (learned). */
export function spinBudgetFromEnv(env: NodeJS.ProcessEnv = process.env): number {
  return budgetFromEnv(env, 'VGPUD_GSP_SPIN_US', DEFAULT_SPIN_US);
}

export class AdaptiveSpin {
  /** Waits still to skip before the next spin. */
  private skipLeft = 0;
  /** Skip length after the next miss. */
  private nextSkip = 1;
  /** Spins that caught their answer / that ended without it (benches print them). */
  hits = 0;
  misses = 0;

  /** Recent answer time (µs, running average) per kind of call; learned budgets only. */
  private readonly answerUs = new Map<number, number>();

  /** `budgetUs`: a fixed budget in µs (0 = off), or AUTO_SPIN to learn it per kind of call. */
  constructor(readonly budgetUs: number = spinBudgetFromEnv()) {}

  /** The recent answer time learned for kind `key` (µs), if any (benches and tests). */
  answerTime(key: number): number | undefined {
    return this.answerUs.get(key);
  }

  /** The budget a wait for an answer of kind `key` would get, back-off aside (µs; 0 = do not spin). */
  budgetFor(key = 0): number {
    if (this.budgetUs !== AUTO_SPIN) return Math.max(0, this.budgetUs);
    const avg = this.answerUs.get(key);
    if (avg === undefined) return AUTO_CAP_US;
    if (avg > AUTO_CAP_US) return 0;
    return Math.max(AUTO_MIN_US, Math.min(AUTO_CAP_US, LEARN_FACTOR * avg + LEARN_SLACK_US));
  }

  /**
   * How long an answer of kind `key` took, from the request to the moment it was seen (µs), spun for or slept for.
   * Feeds the learned budget; capped at twice AUTO_CAP_US so one stall (a GC pause, a preempted thread) does not stop
   * the spinning for that kind for long.
   */
  observe(key: number, us: number): void {
    if (this.budgetUs !== AUTO_SPIN) return;
    const x = Math.min(Math.max(0, us), 2 * AUTO_CAP_US);
    const avg = this.answerUs.get(key);
    this.answerUs.set(key, avg === undefined ? x : avg + (x - avg) * LEARN_WEIGHT);
  }

  /**
   * How long (µs) to spin before sleeping on this wait for an answer of kind `key`: its budget, or 0 while backing
   * off. Call it once per wait that expects an answer (a skipped wait counts towards the back-off too; a kind not
   * worth spinning for does not).
   */
  next(key = 0): number {
    const budget = this.budgetFor(key);
    if (budget <= 0) return 0;
    if (this.skipLeft > 0) {
      this.skipLeft--;
      return 0;
    }
    return budget;
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
