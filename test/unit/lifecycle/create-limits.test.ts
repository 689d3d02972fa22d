/**
 * When several limits bind a create at once, the refusal names the one an operator acts on (issue 16, defect 8):
 * the type's instance cap first, then FB, then CHIDs. And `types` counts CHID runs the way it counts FB and heaps,
 * so it never lists a type the create path then refuses for want of CHIDs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isVgpuError } from '../../../core/contracts/exceptions.js';
import type { VgpuService } from '../../../core/contracts/vgpu-service.js';
import type { EventBus } from '../../../core/contracts/events.js';
import { TOKENS } from '../../../core/tokens.js';
import { createMockHalPlugin } from '../../../hal/mock/mock-hal-plugin.js';
import { MockHal } from '../../../hal/mock/mock-hal.js';
import { createLifecyclePlugin } from '../../../plugins/lifecycle/lifecycle-plugin.js';
import { createRouterPlugin } from '../../../plugins/router/router-plugin.js';
import { FakePluginTasks } from '../../helpers/fake-plugin-task.js';
import { createTestContainer } from '../../helpers/test-container.js';
import { BDF, TYPES, answerManagerControls, metadata, readMeta, rig, vtype } from './lifecycle-rig.js';

const T24Q = TYPES[3]!; // max 2 instances, 2048 / 2 = 1024 CHIDs each

test('a race for the last 24Q: every refusal names the 2-instance cap, not the CHIDs the other two hold', async () => {
  const r = await rig({ totalVfs: 24, policy: 'heterogeneous' });
  const first = await r.lc.create(0, T24Q);
  // The second (last) 24Q has taken its CHID run: the pool has no run of 1024 left, and the cap is reached.
  const chidsTaken = new Promise<void>((resolve) => {
    const off = r.bus.on('vgpu:step', (e) => { if (e.step === 'chids' && e.phase === 'done' && e.vgpuId !== first.id) { off(); resolve(); } });
  });
  const second = r.lc.create(1, T24Q);
  await chidsTaken;
  assert.equal(r.gpu.channels.stats().largestFree, 0);
  const refusals: string[] = [];
  for (let vf = 2; vf < 20; vf++) {
    try {
      await r.lc.create(vf, T24Q);
      assert.fail(`a third 24Q was created on VF ${vf}`);
    } catch (e) {
      assert.ok(isVgpuError(e), String(e));
      refusals.push(`${e.code} ${e.message}`);
    }
  }
  assert.equal(refusals.length, 18);
  for (const m of refusals) assert.match(m, /VGPU_ENOSPC .*already has 2 of at most 2 instances/);
  await r.lc.destroy((await second).id);
  await r.lc.destroy(first.id);
  assert.deepEqual(r.mock.books(), r.baseline);
});

test('types counts CHID runs: a type whose run no longer fits is listed with 0 available, and its create is refused naming the CHIDs', async () => {
  const mock = new MockHal({ devices: [{ bdf: BDF, totalVfs: 8 }], rpcTimeoutMs: 2000 });
  const tc = await createTestContainer({
    // A 4 GiB type capped at 2 instances: 1024 CHIDs each, but little FB, so its CHID run binds before its FB.
    plugins: [createMockHalPlugin(mock), createLifecyclePlugin({ init: { metadataDir: '/meta', manager: () => ({ readFile: readMeta(metadata([...TYPES, vtype(960, 'NVIDIA RTX6000-Ada-4C', 4, 2)])) }) } }), createRouterPlugin()],
    // No scrub plugin here: this test is about CHID runs, not the guest FB's contents.
    config: { timeouts: { bootloadMs: 500, rpcMs: 1000 }, gpus: [{ policy: 'heterogeneous' }], plugins: { lifecycle: { allowUnscrubbedFb: true } } } as never,
    start: false,
  });
  tc.container.get<EventBus>(TOKENS.EventBus).on('gpu:probed', (e) => {
    answerManagerControls(mock.gpu(e.gpu));
    FakePluginTasks.install(mock.gpu(e.gpu));
  });
  await tc.host.start();
  try {
    const service = tc.container.get<VgpuService>(TOKENS.VgpuManager);
    const avail = (name: string): number | undefined => service.types(BDF, { all: true }).find((t) => t.name.endsWith(name))?.available;
    assert.equal(avail('-4C'), 2);
    // A 1Q takes CHIDs 0..63 (first fit); a 4C then takes 64..1087; 960 CHIDs are left: no run of 1024.
    const small = await service.create({ gpu: BDF, type: '1Q' });
    const big = await service.create({ gpu: BDF, type: '4C' });
    assert.equal(avail('-4C'), 0, 'FB, heap room and the instance cap would allow another 4C; the CHIDs do not');
    await assert.rejects(service.create({ gpu: BDF, type: '4C' }), (e) => isVgpuError(e, 'VGPU_ENOSPC') && /CHID/.test(e.message));
    assert.equal(service.list().length, 2);
    await service.destroy(small.id);
    // 64 + 960 CHIDs are free, in two runs: still none of 1024 (first fit left the 4C in the middle).
    assert.equal(avail('-4C'), 0);
    await service.destroy(big.id);
    assert.equal(avail('-4C'), 2);
  } finally {
    await tc.stop();
  }
});
