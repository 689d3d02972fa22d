/**
 * The spin-before-sleep a waiter does when it expects an answer (core/runtime/adaptive-spin.ts): bounded, on by
 * default with a budget learned per kind of call, and backing off while answers keep coming late — so a busy host
 * stops spinning. No clock in the assertions: a spin's length is its budget, what is checked is whether it spins at
 * all, for how long a budget, and what it reports.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { AUTO_CAP_US, AUTO_SPIN, AdaptiveSpin, DEFAULT_SPIN_US, MAX_SKIP, spinBudgetFromEnv } from '../../../core/runtime/adaptive-spin.js';

it('learns its budget unless VGPUD_GSP_SPIN_US fixes one (0 = off); a bad value falls back to the default', () => {
  assert.equal(DEFAULT_SPIN_US, AUTO_SPIN);
  assert.equal(spinBudgetFromEnv({}), AUTO_SPIN);
  assert.equal(spinBudgetFromEnv({ VGPUD_GSP_SPIN_US: '0' }), 0);
  assert.equal(spinBudgetFromEnv({ VGPUD_GSP_SPIN_US: '40' }), 40);
  assert.equal(spinBudgetFromEnv({ VGPUD_GSP_SPIN_US: 'fast' }), DEFAULT_SPIN_US);
  assert.equal(spinBudgetFromEnv({ VGPUD_GSP_SPIN_US: '-1' }), DEFAULT_SPIN_US);
  const off = new AdaptiveSpin(0);
  let looked = 0;
  assert.equal(off.spin(() => { looked++; return true; }), false, 'a zero budget never spins');
  assert.equal(looked, 0);
});

it('an answer already there is a hit; one that never comes is a miss after the budget', () => {
  const s = new AdaptiveSpin(20);
  assert.equal(s.spin(() => true), true);
  assert.equal(s.spin(() => false), false);
  assert.deepEqual([s.hits, s.misses], [1, 1]);
});

it('backs off after misses (1, 2, 4 … up to MAX_SKIP waits without a spin) and resumes after a hit', () => {
  const s = new AdaptiveSpin(5);
  /** How many of the next `n` waits would spin (next() > 0), each wait missing when it spins. */
  const spinsOver = (n: number, answered: boolean): number => {
    let spun = 0;
    for (let i = 0; i < n; i++) {
      const us = s.next();
      if (us > 0) {
        spun++;
        s.record(answered);
      }
    }
    return spun;
  };
  // Misses every time: spin, skip 1, spin, skip 2, spin, skip 4 … so the spins thin out to 1 in MAX_SKIP + 1.
  assert.equal(spinsOver(1 + 1 + 1 + 2 + 1 + 4, false), 3);
  spinsOver(1000, false);
  assert.ok(spinsOver(10 * (MAX_SKIP + 1), false) <= 10, 'a host where answers come late spins on at most 1 wait in MAX_SKIP + 1');
  // Once an answer is caught the spin is back on every wait.
  let us = 0;
  while ((us = s.next()) === 0) { /* wait out the current back-off */ }
  assert.ok(us > 0);
  s.record(true);
  assert.equal(spinsOver(20, true), 20);
});

it('learned: a first call of a kind spins up to the cap, later ones about twice what its answers took', () => {
  const s = new AdaptiveSpin(AUTO_SPIN);
  assert.equal(s.budgetFor(7), AUTO_CAP_US);
  for (let i = 0; i < 20; i++) s.observe(7, 30);
  const b = s.budgetFor(7);
  assert.ok(b >= 60 && b < 2 * 30 + 20, `budget ${b} µs for answers of 30 µs`);
  assert.equal(s.next(7), b);
  assert.equal(s.budgetFor(8), AUTO_CAP_US, 'each kind learns on its own');
});

it('learned: a kind whose answers take longer than the cap is not spun for, and does not hold back the others', () => {
  const s = new AdaptiveSpin(AUTO_SPIN);
  for (let i = 0; i < 20; i++) s.observe(1, 5 * AUTO_CAP_US);
  assert.equal(s.budgetFor(1), 0);
  let looked = 0;
  assert.equal(s.spin(() => { looked++; return true; }, s.next(1)), false);
  assert.equal(looked, 0);
  assert.deepEqual([s.hits, s.misses], [0, 0], 'not spinning for a slow kind is no miss: no back-off for the rest');
  assert.ok(s.next(2) > 0);
  // When that kind's answers get quick again the spin comes back.
  for (let i = 0; i < 20; i++) s.observe(1, 20);
  assert.ok(s.budgetFor(1) > 0);
});

it('learned: one stalled answer does not stop the spinning for its kind', () => {
  const s = new AdaptiveSpin(AUTO_SPIN);
  for (let i = 0; i < 10; i++) s.observe(3, 20);
  s.observe(3, 1_000_000); // a second-long stall (GC pause, preempted thread)
  assert.ok(s.budgetFor(3) > 0);
});

it('a fixed budget is not learned: every kind gets it', () => {
  const s = new AdaptiveSpin(40);
  for (let i = 0; i < 20; i++) s.observe(1, 5000);
  assert.equal(s.budgetFor(1), 40);
  assert.equal(s.next(2), 40);
});
