import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isVgpuError } from '../../../core/contracts/exceptions.js';
import type { EventBus } from '../../../core/contracts/events.js';
import type { VgpuService } from '../../../core/contracts/vgpu-service.js';
import { TOKENS } from '../../../core/tokens.js';
import type { VgpudPlugin } from '../../../core/contracts/plugin.js';
import { createMockHalPlugin } from '../../../hal/mock/mock-hal-plugin.js';
import { MockHal } from '../../../hal/mock/mock-hal.js';
import { createLifecyclePlugin } from '../../../plugins/lifecycle/lifecycle-plugin.js';
import { createRouterPlugin } from '../../../plugins/router/router-plugin.js';
import { createScrubPlugin } from '../../../plugins/scrub/scrub-plugin.js';
import { VgpuServiceImpl } from '../../../plugins/lifecycle/vgpu-service-impl.js';
import { FakePluginTasks } from '../../helpers/fake-plugin-task.js';
import { createTestContainer } from '../../helpers/test-container.js';
import { BDF, GiB, answerManagerControls, metadata, readMeta } from './lifecycle-rig.js';

/** A started container with the mock HAL, the lifecycle and `extra` plugins; `readFile` serves the metadata file. */
async function daemon(o: { extra?: VgpudPlugin[]; config?: Record<string, unknown>; readFile?: () => Promise<Uint8Array>; scrub?: boolean } = {}) {
  const mock = new MockHal({ devices: [{ bdf: BDF, totalVfs: 4 }], rpcTimeoutMs: 2000 });
  const readFile = o.readFile ?? readMeta(metadata());
  const tc = await createTestContainer({
    // The scrub plugin too, as the daemon wires it: a lifecycle without a scrubber refuses to create.
    plugins: [
      createMockHalPlugin(mock), ...(o.scrub === false ? [] : [createScrubPlugin()]), ...(o.extra ?? []),
      createLifecyclePlugin({ init: { metadataDir: '/meta', manager: () => ({ readFile }) } }), createRouterPlugin(),
    ],
    config: { timeouts: { bootloadMs: 500, rpcMs: 1000 }, ...o.config } as never,
    start: false,
  });
  // The mock firmware answers nothing by itself: give it the manager's controls and a plugin task as soon as the
  // probe has opened the GPU (before its boot).
  const tasks: FakePluginTasks[] = [];
  tc.container.get<EventBus>(TOKENS.EventBus).on('gpu:probed', (e) => {
    const gpu = mock.gpu(e.gpu);
    answerManagerControls(gpu);
    tasks.push(FakePluginTasks.install(gpu));
  });
  await tc.host.start();
  return { mock, tc, tasks, service: tc.container.get<VgpuService>(TOKENS.VgpuManager), impl: tc.container.get(VgpuServiceImpl) };
}

test('the plugin binds the VgpuService: gpus, types, create by short name, VF ABI, logs, destroy', async (t) => {
  const { mock, tc, service } = await daemon();
  t.after(() => tc.stop());
  const [g] = service.gpus();
  assert.equal(g?.bdf, BDF);
  assert.equal(g?.state, 'ready');
  assert.equal(g?.policy, 'homogeneous');
  const types = service.types(BDF);
  assert.deepEqual(types.map((x) => [x.id, x.series, x.available]), [[941, 'Q', 4], [944, 'Q', 4], [946, 'Q', 4], [949, 'Q', 2]]);

  const v = await service.create({ gpu: BDF, type: '24Q' });
  assert.equal(v.typeId, 949);
  assert.equal(v.vf, 0);
  assert.equal(v.state, 'ready');
  assert.equal(v.fb?.size, 23n * GiB);
  assert.equal(service.get(v.id).gfid, 1);
  assert.equal(g?.backend, 'manager', 'the router says which backend manages the GPU');
  // homogeneous: only the active type is still creatable, once more
  assert.deepEqual(service.types(BDF).map((x) => [x.id, x.available]), [[949, 1]]);

  // select a type through the ABI, then create on that VF without naming one
  const vf2 = mock.gpu().vfs()[2]!.bdf;
  assert.equal(service.readVfAttribute(vf2, 'current_vgpu_type'), '0\n');
  service.writeVfAttribute(vf2, 'current_vgpu_type', '949\n');
  const w = await service.create({ gpu: BDF, type: 949, vf: 2 });
  assert.equal(w.vf, 2);
  assert.throws(() => service.writeVfAttribute(vf2, 'current_vgpu_type', '0\n'), (e) => isVgpuError(e, 'VGPU_EBUSY'));
  assert.throws(() => service.setPolicy(BDF, 'heterogeneous'), (e) => isVgpuError(e, 'VGPU_EBUSY'));
  assert.deepEqual(service.list().map((x) => x.id), [v.id, w.id]);
  assert.ok(service.logs(v.id).some((l) => /ready/.test(l)));
  await assert.rejects(service.create({ gpu: BDF, type: 'nope' }), (e) => isVgpuError(e, 'VGPU_ENODEV_TYPE'));

  await service.destroy(v.id);
  await service.destroy(w.id);
  assert.throws(() => service.get(v.id), (e) => isVgpuError(e, 'VGPU_ENOENT'));
  assert.ok(service.logs(v.id).some((l) => /destroyed/.test(l)), 'the log is kept after destroy');
  assert.equal(service.readVfAttribute(vf2, 'current_vgpu_type'), '949\n');
  service.writeVfAttribute(vf2, 'current_vgpu_type', '0\n');
  service.setPolicy(BDF, 'heterogeneous');
  assert.equal(service.gpus()[0]?.policy, 'heterogeneous');
  const books = mock.books();
  assert.deepEqual([books.fbRanges, books.mappings, books.chidRanges, books.clients.length], [[], [], [], 1]);
});

test('without the scrub plugin the service refuses to create and says so at start; allowUnscrubbedFb creates, logged as an error', async (t) => {
  const plain = await daemon({ scrub: false });
  t.after(() => plain.tc.stop());
  assert.ok(plain.tc.logger.lines.some((l) => l.level === 'warn' && /no FB scrubber is bound.*will be refused/.test(l.message)), 'the start warns');
  await assert.rejects(plain.service.create({ gpu: BDF, type: '24Q' }), (e) => isVgpuError(e, 'VGPU_ESTATE') && /no FB scrubber is bound/.test(e.message));
  assert.deepEqual(plain.service.list(), []);
  assert.equal(plain.service.types(BDF).find((x) => x.id === 949)?.available, 2, 'the refused create selected no VF type');

  const allowed = await daemon({ scrub: false, config: { plugins: { lifecycle: { allowUnscrubbedFb: true } } } });
  t.after(() => allowed.tc.stop());
  assert.ok(allowed.tc.logger.lines.some((l) => l.level === 'error' && /FB SCRUBBING IS OFF/.test(l.message)), 'logged loudly at start');
  const v = await allowed.service.create({ gpu: BDF, type: '24Q' });
  await allowed.service.destroy(v.id);
});

test('create with a caller\'s UUID (as mdev takes one): used for the firmware and shown; a malformed or taken one is refused', async (t) => {
  const { tc, service } = await daemon();
  t.after(() => tc.stop());
  const uuid = '3b9d5a4e-2f6c-4e1a-9a51-0c7d2b8e6f10';
  const v = await service.create({ gpu: BDF, type: '1Q', uuid: uuid.toUpperCase().replace(/-/g, '') });
  assert.equal(v.uuid, uuid);
  assert.equal(service.get(v.id).uuid, uuid);
  await assert.rejects(service.create({ gpu: BDF, type: '1Q', uuid }), (e) => isVgpuError(e, 'VGPU_EBUSY') && e.message.includes(v.id));
  await assert.rejects(service.create({ gpu: BDF, type: '1Q', uuid: 'not-a-uuid' }), (e) => isVgpuError(e, 'VGPU_EINVAL'));
  assert.equal(service.list().length, 1, 'the refused creates made nothing');
  const w = await service.create({ gpu: BDF, type: '1Q' });
  assert.match(w.uuid ?? '', /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  assert.notEqual(w.uuid, uuid);
  await service.destroy(v.id);
  await service.destroy(w.id);
});

test('stopping the plugin leaves running vGPUs alone', async () => {
  const { mock, tc, service } = await daemon();
  const v = await service.create({ gpu: BDF, type: 941 });
  await tc.stop();
  assert.deepEqual(mock.books().chidRanges.map((c) => c.owner), [v.id]);
  assert.equal(tc.container.get(VgpuServiceImpl).gpus().length, 0, 'detached: no GPU is managed any more');
});

test('with the logging plugin, logs() returns the drained firmware lines and keeps them after destroy', async (t) => {
  const { mkdtempSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { createLoggingPlugin } = await import('../../../plugins/logging/logging-plugin.js');
  const dir = mkdtempSync(join(tmpdir(), 'vgpud-logs-'));
  const { mock, tc, service } = await daemon({ extra: [createLoggingPlugin()], config: { plugins: { logging: { dir, pollMs: 10 } } } });
  t.after(async () => { await tc.stop(); rmSync(dir, { recursive: true, force: true }); });
  const bus = tc.container.get<EventBus>(TOKENS.EventBus);
  const v = await service.create({ gpu: BDF, type: '24Q' });
  // What the firmware's vGPU task writes for this gfid reaches the store through the drain.
  // The drain's timer is unref'd (logs never keep a daemon alive), so the wait holds its own deadline timer.
  const drained = new Promise<void>((resolve, reject) => {
    const deadline = setTimeout(() => reject(new Error('the firmware line was not drained within 5 s')), 5000);
    const off = bus.on('log:line', (e) => {
      if (e.vgpuId === v.id && /guest driver loaded/.test(e.line)) { off(); clearTimeout(deadline); resolve(); }
    });
  });
  mock.gpu().firmware.appendLog('vgpu-task', v.gfid, 'guest driver loaded\n');
  await drained;
  assert.ok(service.logs(v.id).some((l) => /guest driver loaded/.test(l)));
  await service.destroy(v.id);
  // On a real GPU the log areas go with the management heap at cleanup; the mock keeps them, so drop them here to
  // prove the lines come from the logging plugin's copy, not from a live read.
  (mock.gpu().firmware as unknown as { logs: Map<string, unknown> }).logs.clear();
  assert.ok(service.logs(v.id).some((l) => /guest driver loaded/.test(l)), 'kept after destroy until the VF is reused');
});

test('reloadMetadata (SIGHUP): accepted when running types stay the same, refused with the reason when one would change', async (t) => {
  const { TYPES, vtype } = await import('./lifecycle-rig.js');
  let current = metadata();
  const { tc, service } = await daemon({ readFile: async () => current });
  t.after(() => tc.stop());
  const v = await service.create({ gpu: BDF, type: '24Q' });

  // A file with one more type and the running one unchanged is taken.
  current = metadata([...TYPES, vtype(950, 'NVIDIA RTX6000-Ada-48Q', 46, 1)]);
  assert.deepEqual(await service.reloadMetadata!(), [{ gpu: BDF, ok: true }]);

  // A file that shrinks the running 24Q type is refused, and the GPU keeps its types.
  current = metadata(TYPES.map((x) => (x.id === 949 ? { ...x, fbLength: x.fbLength / 2n } : x)));
  const [r] = await service.reloadMetadata!();
  assert.equal(r?.ok, false);
  assert.match(r?.reason ?? '', /949|24Q/);
  assert.equal(service.get(v.id).fb?.size, 23n * GiB);
  await service.destroy(v.id);
});
