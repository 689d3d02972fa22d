// Who holds what: the 'k8s' plugin's VgpuHolders over a PodResources stand-in (real Unix socket, its own gRPC wiring).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import type { EventBus } from '../../../core/contracts/events.js';
import type { VgpuHolders } from '../../../core/contracts/vgpu-holders.js';
import { TOKENS } from '../../../core/tokens.js';
import { createK8sPlugin } from '../../../plugins/k8s/k8s-plugin.js';
import { fakeServicePlugin } from '../../helpers/k8s/fake-service-plugin.js';
import type { FakeVgpuService } from '../../helpers/k8s/fake-vgpu-service.js';
import { PodResourcesStandIn } from '../../helpers/k8s/pod-resources-stand-in.js';
import { createTestContainer } from '../../helpers/test-container.js';

const GPU = '0000:41:00.0';

async function rig(t: TestContext, o: { maxAgeMs?: number; startKubelet?: boolean; section?: boolean } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'vgpud-holders-'));
  const socket = join(dir, 'kubelet.sock');
  const podres = new PodResourcesStandIn(socket);
  if (o.startKubelet !== false) await podres.start();
  const plugin = createK8sPlugin();
  const tc = await createTestContainer({
    plugins: [fakeServicePlugin([{ bdf: GPU }]), plugin],
    config: o.section === false ? {} : { plugins: { k8s: { nfd: { enabled: false }, podResources: { socket, maxAgeMs: o.maxAgeMs ?? 60_000 } } } },
  });
  t.after(async () => {
    await tc.stop();
    await podres.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  const svc = tc.container.get<FakeVgpuService>(TOKENS.VgpuManager);
  return { tc, svc, podres, plugin, holders: tc.container.get<VgpuHolders>(TOKENS.VgpuHolders), bus: tc.container.get<EventBus>(TOKENS.EventBus) };
}

test('PodResources device ids map to vGPUs by VF address (any case) or vGPU id; other devices are ignored', async (t) => {
  const r = await rig(t);
  const a = await r.svc.create({ gpu: GPU, type: 949 });
  const b = await r.svc.create({ gpu: GPU, type: 949 });
  await r.svc.create({ gpu: GPU, type: 949 });
  r.podres.pods = [
    { namespace: 'vms', name: 'virt-launcher-a', containers: [{ name: 'compute', devices: [{ resource: 'nvidia.com/NVIDIA_RTX6000-Ada-24Q', ids: [a.vfBdf.toUpperCase()] }] }] },
    { namespace: 'ml', name: 'trainer', containers: [{ name: 'main', devices: [{ resource: 'example.com/vgpu', ids: [b.id] }, { resource: 'nvidia.com/gpu', ids: ['GPU-1234'] }] }] },
  ];
  const h = await r.holders.current();
  assert.deepEqual([...h.entries()].sort(), [
    [a.id, { namespace: 'vms', pod: 'virt-launcher-a', container: 'compute', resource: 'nvidia.com/NVIDIA_RTX6000-Ada-24Q' }],
    [b.id, { namespace: 'ml', pod: 'trainer', container: 'main', resource: 'example.com/vgpu' }],
  ]);
});

test('the kubelet is asked only when someone reads and the answer is stale: an Allocate or a destroy makes it stale', async (t) => {
  const r = await rig(t);
  const a = await r.svc.create({ gpu: GPU, type: 949 });
  await r.holders.current();
  await r.holders.current();
  assert.equal(r.podres.calls, 1, 'a fresh answer is reused');
  r.podres.pods = [{ namespace: 'vms', name: 'p', containers: [{ name: 'c', devices: [{ resource: 'r/x', ids: [a.vfBdf] }] }] }];
  r.bus.emit('device:allocated', { resource: 'r/x', vgpus: [a.id] });
  assert.equal((await r.holders.current()).get(a.id)?.pod, 'p');
  assert.equal(r.podres.calls, 2);
  await r.svc.destroy(a.id);
  assert.equal((await r.holders.current()).size, 0, 'the destroyed vGPU is held by nobody');
  assert.equal(r.podres.calls, 3);
  assert.equal(r.holders.cached().size, 0);
});

test('no PodResources socket: nobody holds anything, quietly; a kubelet that stops answering keeps the last answer', async (t) => {
  const r = await rig(t, { startKubelet: false, maxAgeMs: 0 });
  const a = await r.svc.create({ gpu: GPU, type: 949 });
  assert.equal((await r.holders.current()).size, 0);
  assert.ok(!r.tc.logger.lines.some((l) => l.level === 'warn'));
  await r.podres.start();
  r.podres.pods = [{ namespace: 'vms', name: 'p', containers: [{ name: 'c', devices: [{ resource: 'r/x', ids: [a.vfBdf] }] }] }];
  assert.equal((await r.holders.current()).get(a.id)?.pod, 'p');
  // the kubelet dies and something else is left at its socket path: the call fails, the last answer stands, one warning
  await r.podres.stop();
  writeFileSync(r.podres.socket, '');
  assert.equal((await r.holders.current()).get(a.id)?.pod, 'p');
  assert.equal((await r.holders.current()).get(a.id)?.pod, 'p');
  assert.equal(r.tc.logger.lines.filter((l) => /cannot read who holds the vGPUs/.test(l.message)).length, 1);
});

test('without a plugins.k8s section the plugin does nothing: no holders, no files, no calls', async (t) => {
  const r = await rig(t, { section: false });
  const a = await r.svc.create({ gpu: GPU, type: 949 });
  r.podres.pods = [{ namespace: 'vms', name: 'p', containers: [{ name: 'c', devices: [{ resource: 'r/x', ids: [a.vfBdf] }] }] }];
  assert.equal((await r.holders.current()).size, 0);
  assert.equal(r.podres.calls, 0);
  assert.equal(r.plugin.handle.nfd(), undefined);
  assert.equal(r.plugin.handle.labels(), undefined);
});
