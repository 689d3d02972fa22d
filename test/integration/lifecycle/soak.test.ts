/**
 * 1,000 create/destroy cycles across mixed types on the simulated RTX 6000 Ada (worker mode, 8 GiB FB, 4 VFs in
 * play, heterogeneous policy): every create goes through the real GSP-RM RPCs and the simulated plugin task's
 * mailbox. It must end with nothing held — no RM client but the manager's, no plugin task, no FB or CHID range,
 * no placement slot — and FB accounting equal to the empty GPU's.
 */
import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { isVgpuError } from '../../../core/contracts/exceptions.js';
import { simRig, type SimRig } from './sim-rig.js';

let r: SimRig;
before(async () => { r = await simRig({ bdf: '0000:62:00.0', policy: 'heterogeneous', logLevel: 'warn' }); });
after(async () => { await r?.stop(); });

it('1,000 create/destroy cycles across mixed types end with zero resources held and the empty GPU\'s FB accounting', async () => {
  const empty = r.gpu.memory.stats();
  assert.equal(empty.used, 0n);
  const types = ['1Q', '2Q', '3Q', '4Q'].map((s) => r.type(s));
  let seed = 7;
  // The high bits: an LCG's low bits cycle with a short period (seed % 4 would repeat every 4 draws).
  const rand = (n: number): number => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return (seed >>> 16) % n; };
  const live = new Map<number, string>(); // vf → vGPU id
  const made = new Set<number>(); // type ids created at least once
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
    const t = types[rand(types.length)]!;
    try {
      live.set(vf, (await r.lc.create(vf, t)).id);
      made.add(t.id);
    } catch (e) {
      // No room for that type next to the live ones: the policy refuses it at call time and nothing is made.
      if (!isVgpuError(e, 'VGPU_ENOSPC')) throw e;
      refused++;
    }
  }
  for (const id of live.values()) await r.lc.destroy(id);
  assert.equal(made.size, types.length, 'every type was created');
  assert.ok(refused < cycles, `most creates succeeded (${refused} refused)`);
  assert.deepEqual(r.lc.records(), []);
  assert.deepEqual(await r.books(), r.baseline);
  assert.deepEqual(r.gpu.memory.stats(), empty);
});
