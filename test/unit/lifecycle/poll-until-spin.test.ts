/**
 * The mailbox wait (plugins/lifecycle/poll-until.ts) spins for the answer of the kind it waits for before it sleeps,
 * and tells the spin how long each answer took, so the spin learns a budget per kind (core/runtime/adaptive-spin.ts).
 * No clock in the assertions: what is checked is which kind was asked for and taught, and that an answer seen while
 * spinning needs no sleep.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { AUTO_SPIN, AdaptiveSpin } from '../../../core/runtime/adaptive-spin.js';
import { pollUntil } from '../../../plugins/lifecycle/poll-until.js';

class RecordingSpin extends AdaptiveSpin {
  asked: number[] = [];
  taught: number[] = [];
  override next(key = 0): number {
    this.asked.push(key);
    return super.next(key);
  }
  override observe(key: number, us: number): void {
    this.taught.push(key);
    super.observe(key, us);
  }
}

it('an answer that lands while it spins is taken without sleeping; the spin learns from it under its kind', async () => {
  const spin = new RecordingSpin(AUTO_SPIN);
  let looks = 0;
  let slept = 0;
  const v = await pollUntil(() => (++looks >= 3 ? 'answer' : undefined), {
    timeoutMs: 5000, what: 'a test answer', spin, spinKey: 5,
    sleep: async () => { slept++; },
  });
  assert.equal(v, 'answer');
  assert.equal(slept, 0);
  assert.deepEqual(spin.asked, [5]);
  assert.deepEqual(spin.taught, [5]);
  assert.equal(spin.hits, 1);
});

it('an answer seen after a sleep teaches the spin too; a fixed budget of 0 never spins', async () => {
  const spin = new RecordingSpin(0);
  let answered = false;
  let slept = 0;
  const v = await pollUntil(() => (answered ? 1 : undefined), {
    timeoutMs: 5000, what: 'a test answer', spin, spinKey: 9,
    sleep: async () => { slept++; answered = true; },
  });
  assert.equal(v, 1);
  assert.equal(slept, 1);
  assert.deepEqual(spin.asked, [9]);
  assert.deepEqual(spin.taught, [9]);
  assert.deepEqual([spin.hits, spin.misses], [0, 0]);
});
