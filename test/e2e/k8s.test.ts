/**
 * vgpud as the Kubernetes node agent, end to end (issue 13's acceptance) with the REAL vgpud on the simulated
 * RTX 6000 Ada and stand-ins for the kubelet (device-plugin API over its own gRPC wiring on real Unix sockets), the
 * kubelet's PodResources API, and the API server (one Node over HTTP, reached through @kubernetes/client-node):
 *  - the Node label picks the layout; the state label ends in success; the type present registers, its vGPUs stream
 *    Healthy, Allocate answers with the PCI_RESOURCE_* env of their VF addresses;
 *  - the pod PodResources names shows in `vgpuctl list/show` and on the per-vGPU metric;
 *  - a kubelet restart (sockets deleted, kubelet.sock new) registers again; relabelling re-lays the GPU out;
 *  - kill -9 of the daemon: back registered with the same device ids, the layout already in place (success, no
 *    pending); a label naming no config ends in failed with the reason in a Warning event.
 */
import 'reflect-metadata';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createHarness, type Harness } from './helpers/daemon-harness.js';
import { ApiServerStandIn } from '../helpers/k8s/api-server-stand-in.js';
import { KubeletStandIn } from '../helpers/k8s/kubelet-stand-in.js';
import { PodResourcesStandIn } from '../helpers/k8s/pod-resources-stand-in.js';

const NODE = 'sim-node-0';
const R24 = 'nvidia.com/NVIDIA_RTX6000-Ada-24Q';
const R8 = 'nvidia.com/NVIDIA_RTX6000-Ada-8Q';
const ENV24 = 'PCI_RESOURCE_NVIDIA_COM_NVIDIA_RTX6000-ADA-24Q';
const LAYOUTS = `version: v1
vgpu-configs:
  one-24q:
    - device-filter: "0x26B110DE"
      devices: all
      vgpu-devices:
        RTX6000-Ada-24Q: 1
  two-24q:
    - device-filter: "0x26B110DE"
      devices: all
      vgpu-devices:
        RTX6000-Ada-24Q: 2
  four-8q:
    - devices: all
      vgpu-devices:
        RTX6000-Ada-8Q: 4
`;

interface Vgpu { id: string; vfBdf: string; typeName: string; holder?: { namespace: string; pod: string } }

describe('vgpud as the Kubernetes node agent (real processes, stand-ins for kubelet, PodResources, API server)', () => {
  let h: Harness;
  let kubelet: KubeletStandIn;
  let podres: PodResourcesStandIn;
  let api: ApiServerStandIn;
  const state = (): string[] => api.history.get('nvidia.com/vgpu.config.state') ?? [];
  const list = async (): Promise<Vgpu[]> => (JSON.parse((await h.ctl('list', '--json')).out) as { vgpus: Vgpu[] }).vgpus;

  before(async () => {
    h = await createHarness('vgpud-e2e-k8s-');
    kubelet = new KubeletStandIn(join(h.dir, 'device-plugins'));
    await kubelet.start();
    podres = new PodResourcesStandIn(join(h.dir, 'pod-resources.sock'));
    await podres.start();
    api = new ApiServerStandIn(NODE, { 'nvidia.com/vgpu.config': 'one-24q' });
    await api.start();
    writeFileSync(join(h.dir, 'layouts.yaml'), LAYOUTS);
    appendFileSync(h.config, [
      '  k8s:',
      `    nodeName: ${NODE}`,
      `    kubeconfig: "${api.kubeconfig(h.dir)}"`,
      `    layoutFile: "${join(h.dir, 'layouts.yaml')}"`,
      '    defaultConfig: ""',
      '    apiBackoff: {initialMs: 20, maxMs: 200}',
      `    podResources: {socket: "${podres.socket}", maxAgeMs: 0}`,
      `    nfd: {featureFile: "${join(h.dir, 'features.d', 'vgpud')}"}`,
      `    devicePlugin: {devicePluginDir: "${kubelet.dir}", registerBackoff: {initialMs: 20, maxMs: 200}}`,
      '',
    ].join('\n'));
    await h.start();
  });
  after(async () => {
    await h?.close();
    await kubelet?.stop();
    await podres?.stop();
    await api?.stop();
  });

  it('the label picks the layout; the type registers and streams its vGPUs Healthy; Allocate gives their VF addresses', async () => {
    await api.until(() => state().at(-1) === 'success');
    assert.deepEqual(state(), ['pending', 'success']);
    await kubelet.until(() => kubelet.devices.get(R24)?.length === 1);
    const [v] = await list();
    assert.equal(v!.typeName, 'NVIDIA RTX6000-Ada-24Q');
    assert.deepEqual(kubelet.devices.get(R24), [{ id: v!.vfBdf, health: 'Healthy' }]);
    assert.deepEqual(kubelet.registrationsOf(R24).map((r) => r.endpoint), ['vgpud-NVIDIA_RTX6000-Ada-24Q.sock']);
    const [res] = await kubelet.allocate(R24, [v!.vfBdf]);
    assert.equal(res!.envs[ENV24], v!.vfBdf);
    const features = readFileSync(join(h.dir, 'features.d', 'vgpud'), 'utf8');
    assert.match(features, /^nvidia\.com\/vgpu\.present=true$/m);
    assert.match(features, /^nvidia\.com\/vgpu\.product=NVIDIA-RTX-6000-Ada-Generation$/m);
  });

  it('the pod holding a vGPU shows in vgpuctl list/show and on the vgpud_vgpu_info metric', async () => {
    const [v] = await list();
    podres.pods = [{ namespace: 'vms', name: 'virt-launcher-win11-x7k2p', containers: [{ name: 'compute', devices: [{ resource: R24, ids: [v!.vfBdf] }] }] }];
    const table = (await h.ctl('list')).out;
    assert.match(table, /HOLDER/);
    assert.match(table, new RegExp(`${v!.id} .*vms/virt-launcher-win11-x7k2p`));
    assert.match((await h.ctl('show', v!.id)).out, /holder\s+pod vms\/virt-launcher-win11-x7k2p \(container compute, nvidia\.com\/NVIDIA_RTX6000-Ada-24Q\)/);
    const metrics = (await h.http('GET', '/metrics')).body;
    assert.match(metrics, new RegExp(`vgpud_vgpu_info\\{vgpu="${v!.id}".*namespace="vms",pod="virt-launcher-win11-x7k2p"\\} 1`));
  });

  it('a kubelet restart is noticed: every resource registers again and streams its devices', async () => {
    await kubelet.restart();
    await kubelet.until(() => kubelet.registrationsOf(R24).length === 2 && kubelet.devices.get(R24)?.length === 1);
  });

  it('relabelling the Node re-lays the GPU out (the held vGPU stays) and ends in success', async () => {
    const [held] = await list();
    api.setLabel('nvidia.com/vgpu.config', 'two-24q');
    await api.until(() => state().length === 4 && state().at(-1) === 'success');
    assert.deepEqual(state().slice(2), ['pending', 'success']);
    await kubelet.until(() => kubelet.devices.get(R24)?.length === 2 && kubelet.devices.get(R24)!.every((d) => d.health === 'Healthy'));
    assert.ok((await list()).some((v) => v.id === held!.id), 'the held vGPU is still there');
    // a layout that would destroy the held vGPU is refused, naming the pod
    api.setLabel('nvidia.com/vgpu.config', 'four-8q');
    await api.until(() => state().at(-1) === 'failed' && api.events.some((e) => e.type === 'Warning'));
    assert.match(api.events.find((e) => e.type === 'Warning')!.message, /vms\/virt-launcher-win11-x7k2p/);
    assert.equal(kubelet.devices.has(R8), false);
    api.setLabel('nvidia.com/vgpu.config', 'two-24q');
    await api.until(() => state().at(-1) === 'success' && state().length === 6);
  });

  it('after kill -9 the daemon comes back registered with the same device ids, the layout in place', async () => {
    const before = kubelet.devices.get(R24)!.map((d) => d.id).sort();
    const regs = kubelet.registrationsOf(R24).length;
    const states = state().length;
    const applied = api.events.filter((e) => e.reason === 'VgpuConfigApplied').length;
    h.daemon!.proc.kill('SIGKILL');
    await h.daemon!.exited;
    await h.start();
    await kubelet.until(() => kubelet.registrationsOf(R24).length > regs && kubelet.devices.get(R24)?.length === 2);
    assert.deepEqual(kubelet.devices.get(R24)!.map((d) => d.id).sort(), before);
    // The new daemon finds the label's config in place: it says so in an Event, with no pending and no change of the
    // state label.
    await api.until(() => api.events.filter((e) => e.reason === 'VgpuConfigApplied').length > applied);
    assert.match(api.events.at(-1)!.message, /^vGPU config "two-24q" is in place$/);
    assert.equal((await list()).length, 2);
    assert.equal(state().length, states);
  });

  it('a label naming no config ends in failed with the reason in a Warning event; the agent keeps serving', async () => {
    const warnings = api.events.filter((e) => e.type === 'Warning').length;
    api.setLabel('nvidia.com/vgpu.config', 'no-such-config');
    await api.until(() => state().at(-1) === 'failed' && api.events.filter((e) => e.type === 'Warning').length > warnings);
    assert.match(api.events.at(-1)!.message, /the layout has no config named 'no-such-config'/);
    assert.equal((await list()).length, 2, 'nothing changed');
    const [v] = await list();
    const [res] = await kubelet.allocate(R24, [v!.vfBdf]);
    assert.equal(res!.envs[ENV24], v!.vfBdf);
  });
});
