// 1,000 create/destroy cycles across mixed types on the MOCK HAL (the simulator's plugin task does not answer the
// mailbox yet; test/integration/lifecycle/ holds the simulator version). Ends with nothing held.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TYPES, rig } from './lifecycle-rig.js';
import { soakCycles } from '../../helpers/soak-cycles.js';

test('1,000 create/destroy cycles across mixed types end with zero resources held', async () => {
  const r = await rig({ policy: 'heterogeneous', totalVfs: 4 });
  const emptyFb = r.gpu.memory.stats();
  const { created, refused, made } = await soakCycles(r.lc, TYPES, { cycles: 1000, vfs: 4, seed: 12345 });
  assert.deepEqual(r.mock.books(), r.baseline);
  assert.deepEqual(r.gpu.memory.stats(), emptyFb);
  assert.equal(r.mgr.policy.placementStats().usedSlots, 0);
  assert.equal(r.tasks.live().length, 0);
  // Every cycle destroyed a vGPU it created (up to `vfs` more were live at the end); refusals were no-room only.
  assert.ok(created >= 1000 && created <= 1004, `${created} creates`);
  assert.equal(made.size, TYPES.length, 'every type was created');
  assert.ok(refused < created, `most creates succeeded (${refused} refused, ${created} made)`);
});
