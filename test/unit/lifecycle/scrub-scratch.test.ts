import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TYPES, rig } from './lifecycle-rig.js';

test('the lifecycle tells the scrubber to keep its scratch (semaphore) below the guest-FB region, create and destroy', async () => {
  const r = await rig();
  const rec = await r.lc.create(1, TYPES[0]!);
  await r.lc.destroy(rec.id);
  const calls = r.scrubber!.calls;
  assert.deepEqual(calls.map((c) => c.reason), ['create', 'destroy']);
  for (const c of calls) {
    assert.equal(c.scratchBelow, r.mgr.region.base);
    assert.ok(c.range.offset >= r.mgr.region.base, 'the range scrubbed is guest FB, inside the region');
  }
  assert.deepEqual(r.mock.books(), r.baseline);
});
