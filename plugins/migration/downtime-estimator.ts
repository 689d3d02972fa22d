/**
 * Pass-by-pass decision of the pre-copy loop, as a pure function of what was measured. After each pass the
 * engine knows how many bytes are dirty now, how fast the guest dirties (bytes/s) and how fast the transport moves
 * them (bytes/s). Stopping now would cost (in guest downtime) the remaining dirty bytes at transport speed plus
 * the fixed stop cost (quiesce + firmware-context save + final scan). QEMU makes the same call with its
 * downtime-limit (default 300 ms, hardware-and-perf A1).
 *
 * Give up cleanly (the source keeps running) when: the fixed stop cost alone exceeds the budget; the guest
 * dirties at least as fast as the transport sends (each pass leaves as much as it sent); the dirty set stopped
 * shrinking for `stallPasses` passes; or `maxPasses` passes ran without fitting the budget.
 */
export interface EstimatorInput {
  /** Passes finished so far (1 = the initial full pass). */
  pass: number;
  /** Bytes dirty right now (what stop-copy would send). */
  dirtyBytes: number;
  /** Measured guest dirty rate, bytes/s. */
  dirtyRate: number;
  /** Measured transport bandwidth, bytes/s. */
  bandwidth: number;
  /** Dirty bytes found after each finished pass, oldest first (for the convergence check). */
  history: readonly number[];
  elapsedMs: number;
}

export interface EstimatorPolicy {
  downtimeBudgetMs: number;
  /** Cost of stopping independent of FB size (quiesce, firmware save, final scan), ms. */
  fixedStopMs: number;
  maxPasses: number;
  /** Give up when the dirty set failed to shrink by `minShrink` for this many consecutive passes. */
  stallPasses: number;
  /** A pass must leave at most this fraction of the previous pass's dirty bytes to count as shrinking. */
  minShrink: number;
}

export const DEFAULT_POLICY: EstimatorPolicy = {
  downtimeBudgetMs: 300,
  fixedStopMs: 20,
  maxPasses: 30,
  stallPasses: 3,
  minShrink: 0.95,
};

export type EstimatorAction = 'continue' | 'stop-copy' | 'give-up';

export interface EstimatorDecision {
  action: EstimatorAction;
  /** Downtime if we stopped now, ms. */
  predictedDowntimeMs: number;
  /** Predicted total migration time if we follow this decision, ms (Infinity when not converging). */
  predictedTotalMs: number;
  /** Further pre-copy passes predicted before stop-copy (0 for stop-copy). */
  predictedPasses: number;
  reason: string;
}

export function downtimeMs(dirtyBytes: number, bandwidth: number, fixedStopMs: number): number {
  return bandwidth > 0 ? fixedStopMs + (dirtyBytes / bandwidth) * 1000 : Infinity;
}

export function decidePass(input: EstimatorInput, policy: EstimatorPolicy = DEFAULT_POLICY): EstimatorDecision {
  const { dirtyBytes, dirtyRate, bandwidth, pass, elapsedMs } = input;
  const now = downtimeMs(dirtyBytes, bandwidth, policy.fixedStopMs);
  const giveUp = (reason: string): EstimatorDecision => ({ action: 'give-up', predictedDowntimeMs: now, predictedTotalMs: Infinity, predictedPasses: 0, reason });
  if (policy.fixedStopMs > policy.downtimeBudgetMs) {
    return giveUp(`the fixed stop cost ${policy.fixedStopMs} ms alone exceeds the downtime budget ${policy.downtimeBudgetMs} ms`);
  }
  if (now <= policy.downtimeBudgetMs) {
    return { action: 'stop-copy', predictedDowntimeMs: now, predictedTotalMs: elapsedMs + now, predictedPasses: 0, reason: `remaining ${dirtyBytes} dirty bytes fit the ${policy.downtimeBudgetMs} ms budget` };
  }
  if (!(bandwidth > 0)) return giveUp('no transport bandwidth measured');
  const r = dirtyRate / bandwidth;
  if (r >= 1) {
    return giveUp(`the guest dirties ${fmtRate(dirtyRate)} but the transport sends ${fmtRate(bandwidth)}: pre-copy cannot converge`);
  }
  if (pass >= policy.maxPasses) return giveUp(`${pass} passes without fitting the ${policy.downtimeBudgetMs} ms budget`);
  const h = input.history;
  let stalled = 0;
  for (let i = h.length - 1; i > 0 && stalled < policy.stallPasses; i--) {
    if (h[i]! > h[i - 1]! * policy.minShrink) stalled++;
    else break;
  }
  if (stalled >= policy.stallPasses) return giveUp(`the dirty set stopped shrinking for ${stalled} passes`);

  // Predict: each pass sends what is dirty; while it runs the guest dirties r × that much (bounded below by the
  // current rate over the pass time, a geometric series with ratio r).
  let remaining = dirtyBytes;
  let t = elapsedMs;
  let passes = 0;
  const fit = (policy.downtimeBudgetMs - policy.fixedStopMs) / 1000 * bandwidth;
  while (remaining > fit && passes < policy.maxPasses - pass) {
    t += (remaining / bandwidth) * 1000;
    remaining *= r;
    passes++;
  }
  if (remaining > fit) {
    return giveUp(`predicted to need more than ${policy.maxPasses} passes (dirty ratio ${r.toFixed(2)})`);
  }
  const down = downtimeMs(remaining, bandwidth, policy.fixedStopMs);
  return { action: 'continue', predictedDowntimeMs: now, predictedTotalMs: t + down, predictedPasses: passes, reason: `stopping now would take ${now.toFixed(0)} ms; ${passes} more pass(es) predicted` };
}

function fmtRate(bps: number): string {
  return `${(bps / 2 ** 20).toFixed(1)} MiB/s`;
}

export interface UpfrontEstimate {
  /** Predicted guest downtime, ms (Infinity when pre-copy cannot converge). */
  downtimeMs: number;
  /** Predicted whole migration, ms (Infinity when it cannot converge). */
  totalMs: number;
  passes: number;
  converges: boolean;
  dirtyRate: number;
  bandwidth: number;
}

/**
 * Before the first byte moves: the FB is sent once at `bandwidth`; meanwhile the guest dirties `dirtyRate`, and
 * every further pass sends what the previous one left (ratio r = dirtyRate/bandwidth, a geometric series, capped
 * by the whole FB since a page is sent once per pass however often it was written). Stop when the rest fits the
 * budget. Same model `decidePass` applies after each pass with measured figures.
 */
export function estimateUpfront(fbBytes: number, dirtyRate: number, bandwidth: number, policy: EstimatorPolicy = DEFAULT_POLICY): UpfrontEstimate {
  const base = { dirtyRate, bandwidth };
  if (!(bandwidth > 0)) return { ...base, downtimeMs: Infinity, totalMs: Infinity, passes: 0, converges: false };
  const r = dirtyRate / bandwidth;
  const fit = ((policy.downtimeBudgetMs - policy.fixedStopMs) / 1000) * bandwidth;
  let t = (fbBytes / bandwidth) * 1000;
  let remaining = Math.min(fbBytes, (fbBytes / bandwidth) * dirtyRate);
  let passes = 1;
  while (remaining > fit && passes < policy.maxPasses && r < 1) {
    t += (remaining / bandwidth) * 1000;
    remaining = Math.min(fbBytes, remaining * r);
    passes++;
  }
  const down = downtimeMs(remaining, bandwidth, policy.fixedStopMs);
  const converges = remaining <= fit || r < 1 && down <= policy.downtimeBudgetMs;
  return { ...base, downtimeMs: down, totalMs: converges ? t + down : Infinity, passes, converges };
}
