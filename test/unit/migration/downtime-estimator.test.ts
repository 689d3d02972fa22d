// The pre-copy decision: expected values are worked out by hand in the comments, not by the estimator.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_POLICY, decidePass } from '../../../plugins/migration/downtime-estimator.js';

const MiB = 2 ** 20;
const GiB = 2 ** 30;
const base = { pass: 1, elapsedMs: 3000, history: [] as number[] };

test('stops when the remaining dirty bytes fit the 300 ms budget', () => {
  // 100 MiB at 1 GiB/s = 97.7 ms + 20 ms fixed = 117.7 ms ≤ 300
  const d = decidePass({ ...base, dirtyBytes: 100 * MiB, dirtyRate: 256 * MiB, bandwidth: GiB, history: [100 * MiB] });
  assert.equal(d.action, 'stop-copy');
  assert.ok(Math.abs(d.predictedDowntimeMs - 117.66) < 0.1, String(d.predictedDowntimeMs));
});

test('continues when stopping now would exceed the budget but the dirty set shrinks', () => {
  // 700 MiB at 1 GiB/s = 683.6 ms + 20 > 300; dirty ratio 0.25 → next pass leaves 175 MiB (≈191 ms) → 1 pass
  const d = decidePass({ ...base, dirtyBytes: 700 * MiB, dirtyRate: 256 * MiB, bandwidth: GiB, history: [700 * MiB] });
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
});
