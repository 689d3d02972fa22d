/**
 * The mock's call log is bounded: however many calls a soak or a bench makes, readers see exactly the last `limit`
 * of them, in order (the oldest are dropped in batches, which a reader must never notice).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CallRecorder } from '../../../hal/mock/mock-call-recorder.js';

test('list and count always cover exactly the last `limit` calls, in order', () => {
  const r = new CallRecorder(() => 0, 16);
  for (let i = 1; i <= 100; i++) {
    r.begin(i % 3 === 0 ? 'memory.reserve' : 'firmware.control', undefined, { i });
    const all = r.list();
    const want = Math.min(i, 16);
    assert.equal(all.length, want, `after call ${i}`);
    assert.deepEqual(all.map((c) => c.seq), Array.from({ length: want }, (_, k) => i - want + 1 + k));
    const reserves = all.filter((c) => c.op === 'memory.reserve').length;
    assert.equal(r.count('memory.reserve'), reserves);
    assert.equal(r.list('memory.reserve').length, reserves);
  }
  r.clear();
  assert.deepEqual(r.list(), []);
});
