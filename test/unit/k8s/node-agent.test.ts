// Layouts chosen by Node label, against an API-server stand-in over HTTP (the real @kubernetes/client-node).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { GPU_A, GPU_B, LAYOUTS, NODE, agentRig, stateEndsIn, typesOn } from './node-agent-rig.js';

test('no label: the default config is applied; pending → success, with a Normal event on the Node', async (t) => {
  const r = await agentRig(t);
  const steps: string[] = [];
  r.bus.on('layout:begin', (e) => steps.push(`begin ${e.config}`));
  r.bus.on('layout:end', (e) => steps.push(`end ${e.config} ${e.ok}`));
  assert.deepEqual(await stateEndsIn(r, 'success'), ['pending', 'success']);
  assert.deepEqual(typesOn(r.svc, GPU_A), ['24Q']);
  assert.deepEqual(typesOn(r.svc, GPU_B), ['24Q']);
  assert.deepEqual(steps, ['begin default', 'end default true']);
  await r.api.until(() => r.api.events.length === 1);
  const [ev] = r.api.events;
  assert.deepEqual([ev!.type, ev!.reason, ev!.namespace, ev!.involvedObject.kind, ev!.involvedObject.name], ['Normal', 'VgpuConfigApplied', 'default', 'Node', NODE]);
  assert.match(ev!.message, /vGPU config "default" is in place: created 2 and destroyed 0 vGPU\(s\)/);
  assert.equal(r.plugin.handle.labels()?.last?.state, 'success');
});

test('relabelling the Node re-lays the GPUs out; a label for the config already in place goes to success without pending', async (t) => {
  const r = await agentRig(t, { labels: { 'nvidia.com/vgpu.config': 'default' } });
  await stateEndsIn(r, 'success');
  r.api.setLabel('nvidia.com/vgpu.config', 'all-8q');
  assert.deepEqual(await stateEndsIn(r, 'success', 4), ['pending', 'success', 'pending', 'success']);
  assert.deepEqual(typesOn(r.svc, GPU_A), ['8Q', '8Q']);
  assert.deepEqual(typesOn(r.svc, GPU_B), ['8Q', '8Q']);
  // already applied: straight to success (the label is set to something else first so the change is visible)
  r.api.setLabel('nvidia.com/vgpu.config.state', 'stale');
  r.api.setLabel('nvidia.com/vgpu.config', 'all-8q-again');
  await stateEndsIn(r, 'failed');
  r.api.setLabel('nvidia.com/vgpu.config', 'all-8q');
  const h = await stateEndsIn(r, 'success', 7);
  assert.deepEqual(h.slice(-3), ['stale', 'failed', 'success'], 'no pending for a config already in place');
});

test('a label naming no config ends in failed with the reason in a Warning event; nothing changes; the agent keeps serving', async (t) => {
  const r = await agentRig(t, { labels: { 'nvidia.com/vgpu.config': 'no-such-config' } });
  assert.deepEqual(await stateEndsIn(r, 'failed'), ['failed']);
  assert.equal(r.svc.list().length, 0);
  await r.api.until(() => r.api.events.some((e) => e.type === 'Warning'));
  const w = r.api.events.find((e) => e.type === 'Warning')!;
  assert.equal(w.reason, 'VgpuConfigFailed');
  assert.match(w.message, /vGPU config "no-such-config" not applied: the layout has no config named 'no-such-config' \(use one of: default, all-8q, two-24q\)/);
  r.api.setLabel('nvidia.com/vgpu.config', 'two-24q');
  await stateEndsIn(r, 'success');
  assert.deepEqual(typesOn(r.svc, GPU_A), ['24Q', '24Q']);
});

test('a broken layout file fails with its reason; fixing the file heals the state without relabelling', async (t) => {
  const r = await agentRig(t, { layouts: 'version: v1\nvgpu-configs: [not, a, map]\n' });
  await stateEndsIn(r, 'failed');
  await r.api.until(() => r.api.events.some((e) => e.type === 'Warning'));
  assert.match(r.api.events.find((e) => e.type === 'Warning')!.message, /vGPU config "default" not applied: /);
  writeFileSync(r.layoutFile, LAYOUTS);
  await stateEndsIn(r, 'success');
  assert.equal(r.svc.list().length, 2);
});

test('a vGPU a pod holds is not destroyed by a re-layout (failed, naming the pod); in-use ones neither', async (t) => {
  const r = await agentRig(t, { labels: { 'nvidia.com/vgpu.config': 'default' }, podResources: true });
  await stateEndsIn(r, 'success');
  const held = r.svc.list({ gpu: GPU_A })[0]!;
  r.podres!.pods = [{ namespace: 'vms', name: 'virt-launcher-win11-x7k2p', containers: [{ name: 'compute', devices: [{ resource: 'nvidia.com/NVIDIA_RTX6000-Ada-24Q', ids: [held.vfBdf] }] }] }];
  r.bus.emit('device:allocated', { resource: 'nvidia.com/NVIDIA_RTX6000-Ada-24Q', vgpus: [held.id] });
  r.api.setLabel('nvidia.com/vgpu.config', 'all-8q');
  await stateEndsIn(r, 'failed');
  await r.api.until(() => r.api.events.some((e) => e.type === 'Warning'));
  assert.match(r.api.events.find((e) => e.type === 'Warning')!.message, new RegExp(`${held.id} \\(pod vms/virt-launcher-win11-x7k2p\\)`));
  assert.deepEqual(typesOn(r.svc, GPU_A), ['24Q'], 'nothing changed');
  // the pod goes away: the same label now applies (after the file is touched, which re-plans)
  r.podres!.pods = [];
  r.bus.emit('device:allocated', { resource: 'x/y', vgpus: [] }); // stale now
  writeFileSync(r.layoutFile, LAYOUTS);
  await stateEndsIn(r, 'success');
  assert.deepEqual(typesOn(r.svc, GPU_A), ['8Q', '8Q']);
  // a vGPU a VM has open blocks a re-layout the same way
  const open = r.svc.list({ gpu: GPU_B })[0]!;
  r.svc.patch(open.id, { inUse: true });
  const warnings = r.api.events.filter((e) => e.type === 'Warning').length;
  r.api.setLabel('nvidia.com/vgpu.config', 'default');
  await stateEndsIn(r, 'failed');
  await r.api.until(() => r.api.events.filter((e) => e.type === 'Warning').length === warnings + 1);
  assert.match(r.api.events.at(-1)!.message, new RegExp(`${open.id} \\(open by a VM\\)`));
  assert.deepEqual(typesOn(r.svc, GPU_B), ['8Q', '8Q']);
});

test('the watch is opened again when the API server ends it, and failed label writes are retried until they land', async (t) => {
  const r = await agentRig(t, { labels: { 'nvidia.com/vgpu.config': 'default' } });
  await stateEndsIn(r, 'success');
  await r.api.until(() => r.api.openWatches === 1);
  r.api.closeWatches();
  await r.api.until(() => r.api.openWatches === 1);
  r.api.failNext(3);
  r.api.setLabel('nvidia.com/vgpu.config', 'two-24q');
  await stateEndsIn(r, 'success', 4);
  assert.deepEqual(typesOn(r.svc, GPU_B), ['24Q', '24Q']);
  assert.ok(r.tc.logger.lines.some((l) => /could not set the Node's vGPU config state; retrying/.test(l.message)));
});

test('without a node name the label flow is off (the rest of the agent runs)', async (t) => {
  const r = await agentRig(t, { k8s: { nodeName: '' } });
  assert.equal(r.plugin.handle.labels(), undefined);
  assert.ok(r.tc.logger.lines.some((l) => /layouts by Node label are off/.test(l.message)));
  assert.equal(r.api.requests.length, 0);
  assert.ok(r.plugin.handle.nfd() !== undefined, 'the NFD file is still kept');
});
