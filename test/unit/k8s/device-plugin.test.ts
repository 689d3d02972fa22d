// The device plugin against a kubelet stand-in over real Unix sockets (its own gRPC wiring), on a fake VgpuService.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { GPU_A, GPU_B, R24, R8, dpRig } from './device-plugin-rig.js';

test('registers one resource per vGPU type present and streams its vGPUs Healthy, with NUMA when known', async (t) => {
  const r = await dpRig(t, {
    before: async (svc) => {
      await svc.create({ gpu: GPU_A, type: 949 });
      await svc.create({ gpu: GPU_B, type: 949 });
      await svc.create({ gpu: GPU_A, type: 946 });
    },
  });
  await r.kubelet.until(() => r.kubelet.devices.get(R24)?.length === 2 && r.kubelet.devices.get(R8)?.length === 1);
  assert.deepEqual(r.kubelet.registrations.map((x) => x.resource).sort(), [R24, R8]);
  const reg = r.kubelet.registrationsOf(R24)[0]!;
  assert.equal(reg.version, 'v1beta1');
  assert.equal(reg.endpoint, 'vgpud-NVIDIA_RTX6000-Ada-24Q.sock');
  assert.deepEqual(reg.options, { preStartRequired: false, getPreferredAllocationAvailable: true });
  const list = r.svc.list();
  assert.deepEqual(r.kubelet.devices.get(R24), [
    { id: list[0]!.vfBdf, health: 'Healthy', numa: [1] },
    { id: list[1]!.vfBdf, health: 'Healthy' },
  ]);
  assert.deepEqual(r.kubelet.devices.get(R8), [{ id: list[2]!.vfBdf, health: 'Healthy', numa: [1] }]);
});

test('ListAndWatch sends a new list on create, destroy and health change; the last vGPU of a type withdraws the resource', async (t) => {
  const r = await dpRig(t, { before: async (svc) => { await svc.create({ gpu: GPU_A, type: 949 }); } });
  await r.kubelet.until(() => r.kubelet.devices.get(R24)?.length === 1);
  const w = await r.svc.create({ gpu: GPU_B, type: 949 });
  await r.kubelet.until(() => r.kubelet.devices.get(R24)?.length === 2);
  r.svc.setGpuState(GPU_B, 'lost');
  await r.kubelet.until(() => r.kubelet.devices.get(R24)?.find((d) => d.id === w.vfBdf)?.health === 'Unhealthy');
  assert.equal(r.kubelet.devices.get(R24)!.find((d) => d.id !== w.vfBdf)!.health, 'Healthy', 'the other GPU\'s vGPU stays Healthy');
  await r.svc.destroy(w.id, { force: true });
  await r.kubelet.until(() => r.kubelet.devices.get(R24)?.length === 1);
  // a new type appears: a new resource registers
  const e = await r.svc.create({ gpu: GPU_A, type: 946 });
  await r.kubelet.until(() => r.kubelet.devices.get(R8)?.length === 1);
  await r.svc.destroy(e.id);
  let ended = false;
  r.kubelet.once('stream-end', (res: string) => { ended = res === R8; });
  await r.kubelet.until(() => r.kubelet.devices.get(R8)?.length === 0 && ended);
  assert.ok(!readdirSync(r.dir).includes('vgpud-NVIDIA_RTX6000-Ada-8Q.sock'), 'the withdrawn resource\'s socket is removed');
});

test('Allocate answers with the PCI_RESOURCE env KubeVirt reads (and its shell-safe alias), per container', async (t) => {
  const r = await dpRig(t, {
    before: async (svc) => {
      for (let i = 0; i < 2; i++) await svc.create({ gpu: GPU_A, type: 949 });
      await svc.create({ gpu: GPU_B, type: 949 });
    },
  });
  await r.kubelet.until(() => r.kubelet.devices.get(R24)?.length === 3);
  const [a, b, c] = r.svc.list();
  const allocated: string[][] = [];
  r.bus.on('device:allocated', (e) => allocated.push(e.vgpus));
  const res = await r.kubelet.allocate(R24, [b!.vfBdf, a!.vfBdf], [c!.vfBdf]);
  assert.deepEqual(res.map((x) => x.envs), [
    { 'PCI_RESOURCE_NVIDIA_COM_NVIDIA_RTX6000-ADA-24Q': `${b!.vfBdf},${a!.vfBdf}`, PCI_RESOURCE_NVIDIA_COM_NVIDIA_RTX6000_ADA_24Q: `${b!.vfBdf},${a!.vfBdf}` },
    { 'PCI_RESOURCE_NVIDIA_COM_NVIDIA_RTX6000-ADA-24Q': c!.vfBdf, PCI_RESOURCE_NVIDIA_COM_NVIDIA_RTX6000_ADA_24Q: c!.vfBdf },
  ]);
  assert.deepEqual(res.map((x) => x.mounts), [[], []]);
  assert.deepEqual(allocated, [[b!.id, a!.id, c!.id]]);
});

test('Allocate refuses unknown, repeated and unhealthy ids with a gRPC error naming them, and keeps serving', async (t) => {
  const r = await dpRig(t, { before: async (svc) => { await svc.create({ gpu: GPU_A, type: 949 }); await svc.create({ gpu: GPU_B, type: 949 }); } });
  await r.kubelet.until(() => r.kubelet.devices.get(R24)?.length === 2);
  const [a, b] = r.svc.list();
  await assert.rejects(r.kubelet.allocate(R24, [a!.vfBdf, '0000:99:00.4']), (e: { code: number; details: string }) => {
    assert.equal(e.code, 5); // NOT_FOUND
    assert.match(e.details, /unknown device\(s\) for nvidia\.com\/NVIDIA_RTX6000-Ada-24Q: 0000:99:00\.4/);
    return true;
  });
  await assert.rejects(r.kubelet.allocate(R24, [a!.vfBdf, a!.vfBdf]), (e: { code: number; details: string }) => e.code === 3 && e.details.includes(a!.vfBdf));
  const updatesBefore = r.kubelet.updates.get(R24)!;
  r.svc.setState(b!.id, 'failed');
  await r.kubelet.until(() => r.kubelet.devices.get(R24)?.find((d) => d.id === b!.vfBdf)?.health === 'Unhealthy');
  await assert.rejects(r.kubelet.allocate(R24, [b!.vfBdf]), (e: { code: number; details: string }) => {
    assert.equal(e.code, 9); // FAILED_PRECONDITION
    assert.match(e.details, new RegExp(`unhealthy device\\(s\\).*${b!.vfBdf.replace(/\./g, '\\.')} \\(vGPU ${b!.id} is failed\\)`));
    return true;
  });
  // api.proto: a failed Allocate comes with a ListAndWatch update
  await r.kubelet.until(() => r.kubelet.updates.get(R24)! >= updatesBefore + 2);
  const ok = await r.kubelet.allocate(R24, [a!.vfBdf]);
  assert.equal(ok[0]!.envs['PCI_RESOURCE_NVIDIA_COM_NVIDIA_RTX6000-ADA-24Q'], a!.vfBdf);
});

test('a vGPU with a vfio-user socket is mounted into the container and named in VFIO_USER_RESOURCE_*', async (t) => {
  const r = await dpRig(t, { before: async (svc) => { await svc.create({ gpu: GPU_A, type: 949 }); await svc.create({ gpu: GPU_A, type: 949 }); } });
  const [a, b] = r.svc.list();
  r.svc.patch(a!.id, { vfioUser: { socket: `/run/vgpud/vfio-user/${a!.id}.sock`, attached: false } });
  r.svc.setState(a!.id, 'ready'); // an event so the inventory looks again
  await r.kubelet.until(() => r.kubelet.devices.get(R24)?.length === 2);
  const [res] = await r.kubelet.allocate(R24, [a!.vfBdf, b!.vfBdf]);
  assert.deepEqual(res!.mounts, [{ containerPath: `/run/vgpud/vfio-user/${a!.id}.sock`, hostPath: `/run/vgpud/vfio-user/${a!.id}.sock`, readOnly: false }]);
  assert.equal(res!.envs['VFIO_USER_RESOURCE_NVIDIA_COM_NVIDIA_RTX6000-ADA-24Q'], `/run/vgpud/vfio-user/${a!.id}.sock,`);
  assert.equal(res!.envs['VFIO_USER_RESOURCE_NVIDIA_COM_NVIDIA_RTX6000_ADA_24Q'], `/run/vgpud/vfio-user/${a!.id}.sock,`);
});

test('GetPreferredAllocation packs onto the fewest GPUs, or spreads when configured', async (t) => {
  const make = async (svc: import('../../helpers/k8s/fake-vgpu-service.js').FakeVgpuService): Promise<void> => {
    for (let i = 0; i < 2; i++) await svc.create({ gpu: GPU_A, type: 949 });
    for (let i = 0; i < 3; i++) await svc.create({ gpu: GPU_B, type: 949 });
  };
  const pack = await dpRig(t, { before: make });
  await pack.kubelet.until(() => pack.kubelet.devices.get(R24)?.length === 5);
  const all = pack.svc.list();
  const ids = all.map((v) => v.vfBdf);
  const gpuOf = (id: string): string => all.find((v) => v.vfBdf === id)!.gpu;
  const p = await pack.kubelet.preferred(R24, ids, [], 3);
  assert.deepEqual(new Set(p.map(gpuOf)), new Set([GPU_B]), `3 fit on GPU B alone: ${p.join(',')}`);
  const withMust = await pack.kubelet.preferred(R24, ids, [ids[0]!], 2);
  assert.deepEqual(withMust.map(gpuOf), [GPU_A, GPU_A], 'a must-include device pulls the rest onto its GPU');
  await assert.rejects(pack.kubelet.preferred(R24, ids, ['0000:99:00.4'], 1), (e: { code: number; details: string }) => e.code === 3 && /0000:99:00\.4/.test(e.details));
  await assert.rejects(pack.kubelet.preferred(R24, ids, [], 9), (e: { code: number }) => e.code === 3);

  const spread = await dpRig(t, { before: make, devicePlugin: { allocationPolicy: 'spread' } });
  await spread.kubelet.until(() => spread.kubelet.devices.get(R24)?.length === 5);
  const sAll = spread.svc.list();
  const s = await spread.kubelet.preferred(R24, sAll.map((v) => v.vfBdf), [], 2);
  assert.deepEqual(new Set(s.map((id) => sAll.find((v) => v.vfBdf === id)!.gpu)), new Set([GPU_A, GPU_B]));
});

test('a re-layout takes every device out of service until it ends', async (t) => {
  const r = await dpRig(t, { before: async (svc) => { await svc.create({ gpu: GPU_A, type: 949 }); } });
  await r.kubelet.until(() => r.kubelet.devices.get(R24)?.[0]?.health === 'Healthy');
  r.bus.emit('layout:begin', { source: 'test', config: 'all-24q' });
  await r.kubelet.until(() => r.kubelet.devices.get(R24)?.[0]?.health === 'Unhealthy');
  const [a] = r.svc.list();
  await assert.rejects(r.kubelet.allocate(R24, [a!.vfBdf]), (e: { details: string }) => /re-layout to config "all-24q" running/.test(e.details));
  r.bus.emit('layout:end', { source: 'test', config: 'all-24q', ok: true });
  await r.kubelet.until(() => r.kubelet.devices.get(R24)?.[0]?.health === 'Healthy');
});

test('a kubelet restart (its sockets deleted, kubelet.sock new) is noticed and every resource registers again', async (t) => {
  const r = await dpRig(t, { before: async (svc) => { await svc.create({ gpu: GPU_A, type: 949 }); await svc.create({ gpu: GPU_A, type: 946 }); } });
  await r.kubelet.until(() => r.kubelet.devices.has(R24) && r.kubelet.devices.has(R8));
  await r.kubelet.restart();
  await r.kubelet.until(() => r.kubelet.registrationsOf(R24).length === 2 && r.kubelet.registrationsOf(R8).length === 2
    && r.kubelet.devices.get(R24)?.length === 1 && r.kubelet.devices.get(R8)?.length === 1);
  assert.ok(existsSync(`${r.dir}/vgpud-NVIDIA_RTX6000-Ada-24Q.sock`), 'the deleted socket is served again');
  assert.ok(r.tc.logger.lines.some((l) => /socket was removed/.test(l.message)));
});

test('with no kubelet the plugin waits quietly; it registers when the kubelet comes; refusals are retried with backoff and logged', async (t) => {
  const r = await dpRig(t, {
    startKubelet: false, dir: (root) => `${root}/var/lib/kubelet/device-plugins`,
    before: async (svc) => { await svc.create({ gpu: GPU_A, type: 949 }); },
  });
  assert.equal(r.kubelet.registrations.length, 0);
  assert.ok(!r.tc.logger.lines.some((l) => l.level === 'warn' || l.level === 'error'), 'nothing but info while waiting');
  r.kubelet.refuseNext(2);
  await r.kubelet.start();
  await r.kubelet.until(() => r.kubelet.devices.get(R24)?.length === 1);
  assert.equal(r.kubelet.refused, 2);
  const warns = r.tc.logger.lines.filter((l) => l.level === 'warn' && /registration with the kubelet failed/.test(l.message));
  assert.ok(warns.length >= 1 && /refuses .* on purpose/.test(String(warns[0]!.meta?.['reason'])), 'the reason is logged');
  assert.ok(r.tc.logger.lines.some((l) => /registered with the kubelet/.test(l.message) && l.meta?.['afterFailures'] === 2));
});

test('malformed and oversized gRPC requests get errors; the server keeps serving', async (t) => {
  const r = await dpRig(t, { before: async (svc) => { await svc.create({ gpu: GPU_A, type: 949 }); } });
  await r.kubelet.until(() => r.kubelet.devices.get(R24)?.length === 1);
  const garbage = await r.kubelet.raw(R24, 'Allocate', Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01]));
  assert.notEqual(garbage.code, 0);
  const huge = await r.kubelet.raw(R24, 'Allocate', Buffer.alloc(300 << 10, 0x0a));
  assert.equal(huge.code, 8, huge.details); // RESOURCE_EXHAUSTED
  const many = Array.from({ length: 1100 }, (_, i) => `id-${i}`);
  await assert.rejects(r.kubelet.allocate(R24, many), (e: { code: number; details: string }) => e.code === 8 && /at most 128 and 1024/.test(e.details));
  const [a] = r.svc.list();
  const ok = await r.kubelet.allocate(R24, [a!.vfBdf]);
  assert.equal(ok.length, 1);
});

test('a fatal firmware error makes its vGPU (gfid) or its whole GPU (gfid 0) Unhealthy until it is ready again', async (t) => {
  const r = await dpRig(t, {
    before: async (svc) => { await svc.create({ gpu: GPU_A, type: 949 }); await svc.create({ gpu: GPU_A, type: 949 }); await svc.create({ gpu: GPU_B, type: 949 }); },
  });
  await r.kubelet.until(() => r.kubelet.devices.get(R24)?.length === 3);
  const [a, b, c] = r.svc.list();
  const health = (): Record<string, string> => Object.fromEntries(r.kubelet.devices.get(R24)!.map((d) => [d.id, d.health]));
  r.bus.emit('exception', { gpu: GPU_A, gfid: a!.gfid, source: 'firmware', kind: 'rc', message: 'RC error', fatal: true, at: Date.now() });
  await r.kubelet.until(() => health()[a!.vfBdf] === 'Unhealthy');
  assert.deepEqual([health()[b!.vfBdf], health()[c!.vfBdf]], ['Healthy', 'Healthy']);
  await assert.rejects(r.kubelet.allocate(R24, [a!.vfBdf]), (e: { details: string }) => /rc: RC error/.test(e.details));
  r.bus.emit('exception', { gpu: GPU_A, gfid: 3, source: 'firmware', kind: 'xid', message: 'not fatal', fatal: false, at: Date.now() });
  r.bus.emit('exception', { gpu: GPU_A, source: 'firmware', kind: 'gsp-crash', message: 'GSP crashed', fatal: true, at: Date.now() });
  await r.kubelet.until(() => health()[b!.vfBdf] === 'Unhealthy');
  assert.equal(health()[c!.vfBdf], 'Healthy', 'the other GPU is not affected');
  r.svc.setGpuState(GPU_A, 'ready'); // gpu:ready: the GPU came back (reset)
  r.svc.setState(a!.id, 'ready'); // the vGPU was reset
  await r.kubelet.until(() => Object.values(health()).every((h) => h === 'Healthy'));
});
