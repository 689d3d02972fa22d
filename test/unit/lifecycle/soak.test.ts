// 1,000 create/destroy cycles across mixed types on the MOCK HAL (the simulator's plugin task does not answer the
// mailbox yet; test/integration/lifecycle/ holds the simulator version). Ends with nothing held.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TYPES, rig } from './lifecycle-rig.js';

test('1,000 create/destroy cycles across mixed types end with zero resources held', async () => {
  const r = await rig({ policy: 'heterogeneous', totalVfs: 4 });
  const emptyFb = r.gpu.memory.stats();
  let seed = 12345;
  const rand = (n: number): number => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed % n; };
  const live = new Map<number, string>(); // vf → vgpu id
  let cycles = 0;
  let refused = 0;
  while (cycles < 1000) {
    const vf = rand(4);
    const id = live.get(vf);
    if (id !== undefined) {
      await r.lc.destroy(id);
      live.delete(vf);
      cycles++;
      continue;
    }
    try {
      const rec = await r.lc.create(vf, TYPES[rand(TYPES.length)]!);
      live.set(vf, rec.id);
    } catch {
      refused++; // no room for that type next to the others: the policy refused it, nothing was made
    }
  }
  for (const id of live.values()) await r.lc.destroy(id);
  assert.deepEqual(r.mock.books(), r.baseline);
  assert.deepEqual(r.gpu.memory.stats(), emptyFb);
  assert.equal(r.mgr.policy.placementStats().usedSlots, 0);
  assert.equal(r.tasks.live().length, 0);
  assert.ok(refused < cycles, `most creates succeeded (${refused} refused)`);
});
