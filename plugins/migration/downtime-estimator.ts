/**
 * Pass-by-pass decision of the pre-copy loop, as a pure function of what was measured. After each pass the
 * engine knows how many bytes are dirty now, how fast the guest dirties (bytes/s) and how fast the transport moves
 * them (bytes/s). Stopping now would cost (in guest downtime) the remaining dirty bytes at transport speed plus
 * the stop cost (quiesce, final dirty scan, firmware-context save, restore and resume at the destination, the
 * final reply). QEMU makes the same call with its downtime-limit (default 300 ms: qemu/qemu `migration/options.c`
 * `DEFAULT_MIGRATE_SET_DOWNTIME`).
 *
 * The stop cost is MEASURED where the caller can (`stopCostMs`: the last dirty scan, mailbox RPC round trips, what
 * earlier migrations' stops cost beyond their dirty bytes — see `estimateStopCost`); `policy.fixedStopMs` is only
 * its floor. A fixed guess was what let the downtime limit be exceeded: on the vGPU path the firmware save, the
 * restore and the resume are five mailbox round trips, and a hash-tracked FB rescans every page while stopped.
 * The usable budget keeps `safetyMargin` of the limit back for what the model does not see (scheduling jitter of
 * a loaded host), since the limit must be KEPT: better one more pass than a stop that overruns.
 *
 * Give up cleanly (the source keeps running) when: the stop cost alone exceeds the usable budget (from pass 2 on,
 * and — when the caller passes the earlier prices — for `stallPasses` passes in a row); the guest
 * dirties at least as fast as the transport sends (each pass leaves as much as it sent) — judged over more than one
 * pass when the caller passes the earlier ratios (`dirtyRatioHistory`, see `ratioVerdict`); the dirty set stopped
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
  /** Measured cost of stopping beyond sending the dirty bytes, ms (`estimateStopCost`); floored at fixedStopMs. */
  stopCostMs?: number;
  /**
   * The stop costs measured after the earlier passes, oldest first (this pass's is `stopCostMs`). With them, a stop
   * priced over the budget ends pre-copy only once it stayed over for `stallPasses` passes in a row; without them
   * the first such price from pass 2 on is the verdict.
   */
  stopCostHistory?: readonly number[];
  /**
   * The dirty-to-transport ratio (dirtyRate / bandwidth) each earlier decision measured, oldest first (`dirtyRatio`
   * of the decisions; passes that measured none left out). With it, a ratio too high to converge (≥ 1, or needing
   * more than `maxPasses`) ends pre-copy only once it held for two passes without falling, or for `stallPasses`
   * passes whatever its trend (`ratioVerdict`); without it the first such pass is the verdict.
   */
  dirtyRatioHistory?: readonly number[];
}

export interface EstimatorPolicy {
  downtimeBudgetMs: number;
  /** Least cost of stopping beyond the dirty bytes (quiesce, firmware save, final scan), ms: the floor of any measurement. */
  fixedStopMs: number;
  /** Fraction of the downtime budget held back for what the model does not see (0 = aim at the limit itself). */
  safetyMargin: number;
  maxPasses: number;
  /** Give up when the dirty set failed to shrink by `minShrink` for this many consecutive passes. */
  stallPasses: number;
  /** A pass must leave at most this fraction of the previous pass's dirty bytes to count as shrinking. */
  minShrink: number;
}

export const DEFAULT_POLICY: EstimatorPolicy = {
  downtimeBudgetMs: 300,
  // The floor of the stop's price beyond the dirty bytes. Measured on the quiet 2-vCPU reference host
  // (docs/benchmarks.md, bench:migrate, 2026-12-07): 26 and 35 ms of the stop went to what the measured part
  // (scan + mailbox round trips, 8–10 ms) does not see — the destination's restore alone 15–20 ms — and a 20 ms
  // floor let one run overrun the 100 ms limit by 2.7 ms. Until the restore is priced by measurement, the floor
  // covers the worst of those runs.
  fixedStopMs: 35,
  safetyMargin: 0.15,
  maxPasses: 30,
  stallPasses: 3,
  minShrink: 0.95,
};

export type EstimatorAction = 'continue' | 'stop-copy' | 'give-up';

export interface EstimatorDecision {
  action: EstimatorAction;
  /** Downtime if we stopped now, ms. */
  predictedDowntimeMs: number;
  /** The stop cost this decision assumed (beyond the dirty bytes), ms. */
  stopCostMs: number;
  /** Predicted total migration time if we follow this decision, ms (Infinity when not converging). */
  predictedTotalMs: number;
  /** Further pre-copy passes predicted before stop-copy (0 for stop-copy). */
  predictedPasses: number;
  reason: string;
  /** dirtyRate / bandwidth as this decision measured it (absent when it did not get that far). */
  dirtyRatio?: number;
}

export function downtimeMs(dirtyBytes: number, bandwidth: number, fixedStopMs: number): number {
  return bandwidth > 0 ? fixedStopMs + (dirtyBytes / bandwidth) * 1000 : Infinity;
}

/** The part of the budget a stop may be planned to use, ms. */
export function usableBudgetMs(policy: EstimatorPolicy): number {
  return policy.downtimeBudgetMs * (1 - Math.min(Math.max(policy.safetyMargin, 0), 0.9));
}

/** What is known, before stopping, about the cost of a stop beyond its dirty bytes. All figures measured, ms. */
export interface StopCostInputs {
  /** Duration of the last dirty scan (a hash tracker rescans the whole FB, and the stop rescans once more). */
  scanMs: number;
  /** A mailbox RPC round trip measured during pre-copy (worst of the recent probes), or undefined. */
  rpcRttMs?: number;
  /** Mailbox calls on the downtime path (source STOP_WORK, SAVE_STATE; destination RESTORE, RESTORE_DEFERRED, RESUME_WORK). */
  rpcCalls?: number;
  /**
   * What earlier stops over this transport kind cost beyond their dirty send and scan (firmware save, restore,
   * resume, reply, and their waits), ms, most recent last. The worst of them counts: one quiet run says little.
   */
  learnedOverheadMs?: readonly number[];
}

/**
 * The stop cost to feed `decidePass`: the final scan, plus the larger of (RPC round trips × calls) and what earlier
 * stops actually cost beyond their send and scan. Both are lower bounds of the same thing, so the larger counts.
 */
export function estimateStopCost(i: StopCostInputs): number {
  const rpc = i.rpcRttMs !== undefined && i.rpcRttMs > 0 ? i.rpcRttMs * (i.rpcCalls ?? 5) : 0;
  const learned = i.learnedOverheadMs !== undefined && i.learnedOverheadMs.length > 0 ? Math.max(...i.learnedOverheadMs) : 0;
  return Math.max(i.scanMs, 0) + Math.max(rpc, learned);
}

export function decidePass(input: EstimatorInput, policy: EstimatorPolicy = DEFAULT_POLICY): EstimatorDecision {
  const { dirtyBytes, dirtyRate, bandwidth, pass, elapsedMs } = input;
  const stopCost = Math.max(policy.fixedStopMs, input.stopCostMs ?? 0);
  const budget = usableBudgetMs(policy);
  const now = downtimeMs(dirtyBytes, bandwidth, stopCost);
  const giveUp = (reason: string): EstimatorDecision => ({ action: 'give-up', predictedDowntimeMs: now, stopCostMs: stopCost, predictedTotalMs: Infinity, predictedPasses: 0, reason });
  if (stopCost > budget) {
    // After the full pass the measurements overlap the destination absorbing that pass (and the first touch of a
    // fresh FB): one more pass measures again before a verdict, unless even the floor does not fit.
    if (pass < 2 && policy.fixedStopMs <= budget) {
      return { action: 'continue', predictedDowntimeMs: now, stopCostMs: stopCost, predictedTotalMs: Infinity, predictedPasses: 1, reason: `the stop measured ${stopCost.toFixed(0)} ms right after the full pass, over the ${budget.toFixed(0)} ms usable; measuring again` };
    }
    // One price over the budget is not yet a verdict when the history says the stop was cheaper before, or it has
    // not been over for long: it is measured on a host that is busy with the pre-copy itself (a mailbox round trip
    // under a 2-core host's load was 30 ms in one pass and 3 ms in the next), and its scan part shrinks with the
    // dirty set. A stop that stays over for stallPasses passes (a hash tracker's full rescan) is the verdict.
    const h = input.stopCostHistory;
    if (h !== undefined && policy.fixedStopMs <= budget && pass < policy.maxPasses) {
      const over = [...h, stopCost].reverse().findIndex((c) => Math.max(policy.fixedStopMs, c) <= budget);
      const overFor = over === -1 ? h.length + 1 : over;
      if (overFor < policy.stallPasses) {
        return { action: 'continue', predictedDowntimeMs: now, stopCostMs: stopCost, predictedTotalMs: Infinity, predictedPasses: 1, reason: `the stop measured ${stopCost.toFixed(0)} ms, over the ${budget.toFixed(0)} ms usable, for ${overFor} of ${policy.stallPasses} passes; measuring again` };
      }
    }
    return giveUp(`stopping costs ${stopCost.toFixed(0)} ms before any dirty page is sent, more than the ${budget.toFixed(0)} ms usable of the ${policy.downtimeBudgetMs} ms downtime limit`);
  }
  if (now <= budget) {
    return { action: 'stop-copy', predictedDowntimeMs: now, stopCostMs: stopCost, predictedTotalMs: elapsedMs + now, predictedPasses: 0, reason: `remaining ${dirtyBytes} dirty bytes and a ${stopCost.toFixed(0)} ms stop fit ${budget.toFixed(0)} ms of the ${policy.downtimeBudgetMs} ms limit` };
  }
  if (!(bandwidth > 0)) return giveUp('no transport bandwidth measured');
  const r = dirtyRate / bandwidth;
  if (pass >= policy.maxPasses) return { ...giveUp(`${pass} passes without fitting the ${policy.downtimeBudgetMs} ms budget`), dirtyRatio: r };
  const h = input.history;
  let stalled = 0;
  for (let i = h.length - 1; i > 0 && stalled < policy.stallPasses; i--) {
    if (h[i]! > h[i - 1]! * policy.minShrink) stalled++;
    else break;
  }
  if (stalled >= policy.stallPasses) return { ...giveUp(`the dirty set stopped shrinking for ${stalled} passes`), dirtyRatio: r };

  // Predict: each pass sends what is dirty; while it runs the guest dirties r × that much (bounded below by the
  // current rate over the pass time, a geometric series with ratio r). It fits the passes left while
  // dirty × r^left ≤ fit, i.e. r ≤ rFits; at r ≥ 1 it never does.
  const fit = (budget - stopCost) / 1000 * bandwidth;
  const left = policy.maxPasses - pass;
  const rFits = Math.pow(fit / dirtyBytes, 1 / left);
  if (r >= 1 || r > rFits) {
    // Too slow by this pass's measure: the verdict only once it held (ratioVerdict).
    const threshold = Math.min(1, rFits);
    const v = ratioVerdict(r, input.dirtyRatioHistory, threshold, policy);
    const what = r >= 1
      ? `the guest dirties ${fmtRate(dirtyRate)} but the transport sends ${fmtRate(bandwidth)}`
      : `predicted to need more than ${policy.maxPasses} passes (dirty ratio ${r.toFixed(2)}, at most ${threshold.toFixed(2)} fits)`;
    if (v.giveUp) {
      const over = v.passes >= policy.stallPasses ? ` for ${v.passes} passes in a row` : v.passes > 1 ? ` for ${v.passes} passes without the gap closing` : '';
      return { ...giveUp(`${what}${over}${r >= 1 ? ': pre-copy cannot converge' : ''}`), dirtyRatio: r };
    }
    return {
      action: 'continue', predictedDowntimeMs: now, stopCostMs: stopCost, predictedTotalMs: Infinity, predictedPasses: 1, dirtyRatio: r,
      reason: `${what} (ratio ${r.toFixed(2)}, ${v.passes} of ${policy.stallPasses} passes${v.passes > 1 ? ', falling' : ''}); measuring again`,
    };
  }
  let remaining = dirtyBytes;
  let t = elapsedMs;
  let passes = 0;
  while (remaining > fit && passes < left) {
    t += (remaining / bandwidth) * 1000;
    remaining *= r;
    passes++;
  }
  const down = downtimeMs(remaining, bandwidth, stopCost);
  return { action: 'continue', predictedDowntimeMs: now, stopCostMs: stopCost, predictedTotalMs: t + down, predictedPasses: passes, dirtyRatio: r, reason: `stopping now would take ${now.toFixed(0)} ms (${stopCost.toFixed(0)} ms of it the stop itself); ${passes} more pass(es) predicted` };
}

/**
 * Whether a too-slow pass is the verdict, given the dirty-to-transport ratios of the earlier passes. "Too slow": the
 * ratio `r` is at least `threshold` — 1 (the guest outruns the transport), or lower when even a ratio below 1 would
 * need more passes than allowed to fit the budget (the earlier passes are judged against this pass's threshold: an
 * approximation, the threshold moves little from pass to pass). One such pass is not the verdict: the first dirty
 * passes of a fresh FB pay first-touch costs a later pass does not (the simulated FB's pages are backed on first
 * write), and a pass measured on a busy host runs slow. So it must stay too slow for two passes in a row without
 * the gap closing (the excess over the threshold at least halved since the pass before: closing, not wobbling) —
 * QEMU acts the same way on its own measure, throttling the guest only when the dirtied bytes exceed its threshold
 * share of the transferred ones twice (`migration_trigger_throttle`, docs/reference/precopy-convergence.md) — and a
 * closing gap gets at most `stallPasses` such passes. Bounded: a guest that truly outruns the transport costs one or
 * two passes more than a first-pass verdict did, never more than `stallPasses`. Without a history the first such
 * pass is the verdict.
 */
export function ratioVerdict(r: number, history: readonly number[] | undefined, threshold: number, policy: EstimatorPolicy): { giveUp: boolean; passes: number; falling: boolean } {
  if (history === undefined) return { giveUp: true, passes: 1, falling: false };
  let passes = 1;
  for (let i = history.length - 1; i >= 0 && history[i]! >= threshold; i--) passes++;
  const prev = history[history.length - 1];
  const falling = passes > 1 && prev !== undefined && r - threshold <= (prev - threshold) / 2;
  return { giveUp: passes >= policy.stallPasses || (passes > 1 && !falling), passes, falling };
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
  const budget = usableBudgetMs(policy);
  const fit = ((budget - policy.fixedStopMs) / 1000) * bandwidth;
  let t = (fbBytes / bandwidth) * 1000;
  let remaining = Math.min(fbBytes, (fbBytes / bandwidth) * dirtyRate);
  let passes = 1;
  while (remaining > fit && passes < policy.maxPasses && r < 1) {
    t += (remaining / bandwidth) * 1000;
    remaining = Math.min(fbBytes, remaining * r);
    passes++;
  }
  const down = downtimeMs(remaining, bandwidth, policy.fixedStopMs);
  const converges = remaining <= fit || r < 1 && down <= budget;
  return { ...base, downtimeMs: down, totalMs: converges ? t + down : Infinity, passes, converges };
}
