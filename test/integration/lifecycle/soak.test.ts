/**
 * 1,000 create/destroy cycles across mixed types on the simulated RTX 6000 Ada (worker mode, 8 GiB FB, 4 VFs in
 * play, heterogeneous policy): every create goes through the real GSP-RM RPCs and the simulated plugin task's
 * mailbox. It must end with nothing held — no RM client but the manager's, no plugin task, no FB or CHID range,
 * no placement slot — and FB accounting equal to the empty GPU's.
 */
import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { soakCycles } from '../../helpers/soak-cycles.js';
import { simRig, type SimRig } from './sim-rig.js';

let r: SimRig;
before(async () => { r = await simRig({ bdf: '0000:62:00.0', policy: 'heterogeneous', logLevel: 'warn' }); });
after(async () => { await r?.stop(); });

it('1,000 create/destroy cycles across mixed types end with zero resources held and the empty GPU\'s FB accounting', async () => {
  const empty = r.gpu.memory.stats();
  assert.equal(empty.used, 0n);
  const types = ['1Q', '2Q', '3Q', '4Q'].map((s) => r.type(s));
  const { created, refused, made } = await soakCycles(r.lc, types, { cycles: 1000, vfs: 4, seed: 7 });
  // Every cycle destroyed a vGPU it created (up to 4 more were live at the end); refusals were no-room only.
  assert.ok(created >= 1000 && created <= 1004, `${created} creates`);
  assert.equal(made.size, types.length, 'every type was created');
  assert.ok(refused < created, `most creates succeeded (${refused} refused, ${created} made)`);
  assert.deepEqual(r.lc.records(), []);
  assert.deepEqual(await r.books(), r.baseline);
  assert.deepEqual(r.gpu.memory.stats(), empty);
});
