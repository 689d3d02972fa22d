// The pre-copy decision: expected values are worked out by hand in the comments, not by the estimator.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_POLICY, decidePass, estimateStopCost, estimateUpfront } from '../../../plugins/migration/downtime-estimator.js';

const MiB = 2 ** 20;
const GiB = 2 ** 30;
const base = { pass: 1, elapsedMs: 3000, history: [] as number[] };
/** The default policy with the 20 ms stop floor the hand-worked figures below use (the default's floor is measured). */
const P20 = { ...DEFAULT_POLICY, fixedStopMs: 20 };

test('stops when the remaining dirty bytes fit the 300 ms budget', () => {
  // 100 MiB at 1 GiB/s = 97.7 ms + 20 ms fixed = 117.7 ms ≤ 300
  const d = decidePass({ ...base, dirtyBytes: 100 * MiB, dirtyRate: 256 * MiB, bandwidth: GiB, history: [100 * MiB] }, P20);
  assert.equal(d.action, 'stop-copy');
  assert.ok(Math.abs(d.predictedDowntimeMs - 117.66) < 0.1, String(d.predictedDowntimeMs));
});

test('continues when stopping now would exceed the budget but the dirty set shrinks', () => {
  // 700 MiB at 1 GiB/s = 683.6 ms + 20 > 300; dirty ratio 0.25 → next pass leaves 175 MiB (≈191 ms) → 1 pass
  const d = decidePass({ ...base, dirtyBytes: 700 * MiB, dirtyRate: 256 * MiB, bandwidth: GiB, history: [700 * MiB] }, P20);
  assert.equal(d.action, 'continue');
  assert.equal(d.predictedPasses, 1);
  // total = 3000 elapsed + 683.6 (the pass) + 20 + 175 MiB / 1 GiB/s (170.9) = 3874.5
  assert.ok(Math.abs(d.predictedTotalMs - 3874.5) < 0.5, String(d.predictedTotalMs));
});

test('gives up when the guest dirties as fast as the transport sends', () => {
  const d = decidePass({ ...base, dirtyBytes: GiB, dirtyRate: 200 * MiB, bandwidth: 128 * MiB, history: [GiB] });
  assert.equal(d.action, 'give-up');
  assert.match(d.reason, /cannot converge/);
});

test('gives up after maxPasses and when the dirty set stops shrinking', () => {
  const many = decidePass({ ...base, pass: 30, dirtyBytes: GiB, dirtyRate: MiB, bandwidth: GiB, history: [GiB] });
  assert.equal(many.action, 'give-up');
  assert.match(many.reason, /30 passes/);
  // 4 passes at ~800 MiB: three consecutive non-shrinking steps
  const flat = [800, 790, 799, 805].map((x) => x * MiB);
  const stalled = decidePass({ ...base, pass: 4, dirtyBytes: 805 * MiB, dirtyRate: 100 * MiB, bandwidth: GiB, history: flat });
  assert.equal(stalled.action, 'give-up');
  assert.match(stalled.reason, /stopped shrinking/);
});

test('gives up when the fixed stop cost alone exceeds the budget, and with no bandwidth', () => {
  const d = decidePass({ ...base, dirtyBytes: 0, dirtyRate: 0, bandwidth: GiB }, { ...DEFAULT_POLICY, fixedStopMs: 400 });
  assert.equal(d.action, 'give-up');
  const z = decidePass({ ...base, dirtyBytes: GiB, dirtyRate: 0, bandwidth: 0 });
  assert.equal(z.action, 'give-up');
});

test('gives up when convergence is predicted to need more passes than allowed', () => {
  // fit = 0.28 s × 1 GiB/s = 0.28 GiB; ratio 0.95: 4 GiB × 0.95^n ≤ 0.28 GiB needs n ≥ 52 passes > 30 − 1
  const d = decidePass({ ...base, dirtyBytes: 4 * GiB, dirtyRate: 0.95 * GiB, bandwidth: GiB, history: [4 * GiB] });
  assert.equal(d.action, 'give-up');
  assert.match(d.reason, /more than 30 passes/);
  // With the earlier ratios known (none too slow), one such pass is measured again rather than the verdict.
  const once = decidePass({ ...base, dirtyBytes: 4 * GiB, dirtyRate: 0.95 * GiB, bandwidth: GiB, history: [4 * GiB], dirtyRatioHistory: [] });
  assert.equal(once.action, 'continue');
  assert.match(once.reason, /1 of 3 passes\); measuring again/);
});

test('a measured stop cost replaces the fixed guess: the same dirty bytes then need another pass', () => {
  // 200 MiB at 1 GiB/s = 195.3 ms. With the 20 ms floor: 215.3 ≤ 255 (300 less the 15 % margin) → stop.
  const input = { ...base, dirtyBytes: 200 * MiB, dirtyRate: 64 * MiB, bandwidth: GiB, history: [200 * MiB] };
  assert.equal(decidePass(input, P20).action, 'stop-copy');
  // Measured 80 ms of stop: 275.3 > 255 → continue (and the decision says what it assumed).
  const d = decidePass({ ...input, stopCostMs: 80 }, P20);
  assert.equal(d.action, 'continue');
  assert.equal(d.stopCostMs, 80);
  assert.ok(Math.abs(d.predictedDowntimeMs - 275.3) < 0.1, String(d.predictedDowntimeMs));
  // A measurement below the floor does not lower it.
  assert.equal(decidePass({ ...input, stopCostMs: 3 }).stopCostMs, DEFAULT_POLICY.fixedStopMs);
  assert.equal(decidePass({ ...input, stopCostMs: 3 }, P20).stopCostMs, 20);
});

test('the safety margin keeps a stop predicted just under the limit in pre-copy', () => {
  // 280 MiB at 1 GiB/s = 273.4 + 20 = 293.4 ms: under 300, over 255.
  const input = { ...base, dirtyBytes: 280 * MiB, dirtyRate: 64 * MiB, bandwidth: GiB, history: [280 * MiB] };
  assert.equal(decidePass(input, P20).action, 'continue');
  assert.equal(decidePass(input, { ...P20, safetyMargin: 0 }).action, 'stop-copy');
});

test('gives up cleanly when the measured stop alone (a long final hash scan) exceeds the usable budget', () => {
  // Right after the full pass (pass 1) one more pass measures again; from pass 2 on it is a verdict.
  assert.equal(decidePass({ ...base, dirtyBytes: 0, dirtyRate: 0, bandwidth: GiB, stopCostMs: 280 }).action, 'continue');
  const d = decidePass({ ...base, pass: 2, dirtyBytes: 0, dirtyRate: 0, bandwidth: GiB, stopCostMs: 280 });
  assert.equal(d.action, 'give-up');
  assert.match(d.reason, /stopping costs 280 ms/);
});

test('with the earlier prices known, a stop over the budget ends pre-copy only after stallPasses passes in a row', () => {
  const over = { ...base, pass: 2, dirtyBytes: 0, dirtyRate: 0, bandwidth: GiB, stopCostMs: 280 };
  // Cheaper before (a probe on a busy host, a scan that shrinks with the dirty set): measure again.
  const once = decidePass({ ...over, stopCostHistory: [40] });
  assert.equal(once.action, 'continue');
  assert.match(once.reason, /for 1 of 3 passes/);
  assert.equal(decidePass({ ...over, pass: 3, stopCostHistory: [40, 280] }).action, 'continue');
  // Over for three passes in a row (a full rescan every stop): the verdict.
  const d = decidePass({ ...over, pass: 4, stopCostHistory: [40, 280, 270] });
  assert.equal(d.action, 'give-up');
  assert.match(d.reason, /stopping costs 280 ms/);
  // Back under the budget: the dirty bytes decide again (here: nothing dirty, so stop).
  assert.equal(decidePass({ ...over, pass: 4, stopCostMs: 30, stopCostHistory: [280, 280, 280] }).action, 'stop-copy');
});

test('the stop cost: final scan plus the larger of RPC round trips × calls and what earlier stops cost', () => {
  assert.equal(estimateStopCost({ scanMs: 0 }), 0);
  assert.equal(estimateStopCost({ scanMs: 12, rpcRttMs: 2, rpcCalls: 5 }), 22); // 12 + 5 × 2
  assert.equal(estimateStopCost({ scanMs: 12, rpcRttMs: 2, rpcCalls: 5, learnedOverheadMs: [30, 55, 40] }), 67); // 12 + worst 55
  assert.equal(estimateStopCost({ scanMs: 1, rpcRttMs: 20, rpcCalls: 5, learnedOverheadMs: [30] }), 101); // 1 + 100
});

test('the up-front estimate plans within the usable budget', () => {
  // 1 GiB FB at 1 GiB/s, no dirtying: pass 1 leaves nothing; 20 ms floor.
  const e = estimateUpfront(GiB, 0, GiB, P20);
  assert.equal(e.converges, true);
  assert.equal(e.downtimeMs, 20);
  // Dirtying at 512 MiB/s: pass 1 (1 s) leaves 512 MiB, pass 2 (0.5 s) 256 MiB = 250 ms + 20 > 255 usable,
  // pass 3 (0.25 s) 128 MiB → 145 ms: 3 passes.
  assert.equal(estimateUpfront(GiB, 512 * MiB, GiB, P20).passes, 3);
});

test('a guest outrunning the transport for one pass is measured again when the earlier ratios are known', () => {
  // 255.5 MiB/s dirtied against 246.8 MiB/s sent (the fresh FB's first dirty pass): ratio 1.035, and
  // 538 MiB at 246.8 MiB/s = 2180 ms + 35 > 85 usable: no stop. Without a history: the verdict, as before.
  const input = { ...base, pass: 2, dirtyBytes: 538 * MiB, dirtyRate: 255.5 * MiB, bandwidth: 246.8 * MiB, history: [294 * MiB, 538 * MiB] };
  const P100 = { ...DEFAULT_POLICY, downtimeBudgetMs: 100 };
  const first = decidePass(input, P100);
  assert.equal(first.action, 'give-up');
  assert.match(first.reason, /cannot converge/);
  // With a history that has no ratio ≥ 1 yet (pass 1 measured none): measure again, and say why.
  const again = decidePass({ ...input, dirtyRatioHistory: [] }, P100);
  assert.equal(again.action, 'continue');
  assert.match(again.reason, /ratio 1.04, 1 of 3 passes\); measuring again/);
  assert.ok(Math.abs(again.dirtyRatio! - 255.5 / 246.8) < 1e-9);
  // Pass 3 at 280 MiB/s: ratio 255.5 / 280 = 0.9125, under 1 but still too slow: from 538 MiB, 27 passes left and a
  // fit of 50 ms × 280 MiB/s = 14 MiB, at most (14 / 538)^(1/27) = 0.8736 fits. Its excess over that (0.039) is under
  // half the last pass's ((1.0353 − 0.8736) / 2 = 0.081): the gap is closing, one more pass, the second of three.
  const falling = decidePass({ ...input, pass: 3, bandwidth: 280 * MiB, dirtyRatioHistory: [again.dirtyRatio!] }, P100);
  assert.equal(falling.action, 'continue');
  assert.match(falling.reason, /predicted to need more than 30 passes \(dirty ratio 0\.91, at most 0\.87 fits\) \(ratio 0\.91, 2 of 3 passes, falling\); measuring again/);
  // Pass 4 at 270 MiB/s: 0.946 against (13.5 / 538)^(1/26) = 0.868, too slow a third pass in a row (1.035 and
  // 0.9125 were over 0.868 too): the bound, whatever the trend.
  const third = decidePass({ ...input, pass: 4, bandwidth: 270 * MiB, dirtyRatioHistory: [1.035, 0.9125] }, P100);
  assert.equal(third.action, 'give-up');
  assert.match(third.reason, /predicted to need more than 30 passes \(dirty ratio 0\.95, at most 0\.87 fits\) for 3 passes in a row/);
});

test('a ratio ≥ 1 that held for two passes without falling is the verdict', () => {
  // 1.035 then 1.02: excess 0.02 > 0.035 / 2 = 0.0175, so the gap did not close: give up at the second pass.
  const d = decidePass({ ...base, pass: 3, dirtyBytes: GiB, dirtyRate: 1.02 * 200 * MiB, bandwidth: 200 * MiB, history: [GiB, GiB], dirtyRatioHistory: [1.035] });
  assert.equal(d.action, 'give-up');
  assert.match(d.reason, /for 2 passes without the gap closing: pre-copy cannot converge/);
  // A ratio below 1 earlier does not count towards the streak: 0.8 then 1.1 is a first pass ≥ 1.
  assert.equal(decidePass({ ...base, pass: 3, dirtyBytes: GiB, dirtyRate: 1.1 * 200 * MiB, bandwidth: 200 * MiB, history: [GiB, GiB], dirtyRatioHistory: [1.2, 0.8] }).action, 'continue');
  // maxPasses still bounds it: at pass 30 a first ratio ≥ 1 is the verdict.
  assert.equal(decidePass({ ...base, pass: 30, dirtyBytes: GiB, dirtyRate: 1.1 * 200 * MiB, bandwidth: 200 * MiB, history: [GiB], dirtyRatioHistory: [] }).action, 'give-up');
});

test('once the ratio falls below 1 after a warm-up, the prediction takes over again', () => {
  // Ratios 1.035, 0.98 (falling), now 0.5: 400 MiB at 512 MiB/s = 781 ms + 35 > 85 usable; fit = 50 ms × 512 MiB/s
  // = 25.6 MiB; 400 × 0.5^n ≤ 25.6 needs n = 4 (400 → 200 → 100 → 50 → 25): continue, 4 passes predicted.
  const d = decidePass({ ...base, pass: 4, dirtyBytes: 400 * MiB, dirtyRate: 256 * MiB, bandwidth: 512 * MiB, history: [294 * MiB, 538 * MiB, 520 * MiB, 400 * MiB], dirtyRatioHistory: [1.035, 0.98] }, { ...DEFAULT_POLICY, downtimeBudgetMs: 100 });
  assert.equal(d.action, 'continue');
  assert.equal(d.predictedPasses, 4);
  assert.equal(d.dirtyRatio, 0.5);
});
