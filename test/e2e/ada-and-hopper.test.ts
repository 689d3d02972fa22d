/**
 * Issue 14's acceptance with the REAL vgpud and vgpuctl: one daemon drives a simulated RTX 6000 Ada
 * (hal-ada-lovelace) and a simulated H100 PCIe (hal-hopper) side by side, both vgpu-sim processes in one folder.
 * The H100 lists NVIDIA's time-sliced C-series types with NVIDIA's max instances; a layout in NVIDIA's format whose
 * entry has device-filter 0x2331 applies on it (and only on it); vGPUs on both survive a kill -9 of the daemon.
 */
import 'reflect-metadata';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SimDeviceHandle } from '../../hal/sim/device/start-sim-device.js';
import { startHopperDevice } from '../../hal/hopper/sim/start-hopper-device.js';
import { RPC_GUARD_MS } from '../helpers/guard-timeouts.js';
import { createHarness, GPU, type Harness } from './helpers/daemon-harness.js';

const H100 = '0000:81:00.0';

/** NVIDIA AI Enterprise "Hopper Architecture vGPU Types", H100 PCIe 80GB, time-sliced: name → max per GPU. */
const H100_PCIE_TYPES: Record<string, number> = {
  'H100-4C': 20, 'H100-5C': 16, 'H100-8C': 10, 'H100-10C': 8, 'H100-16C': 6, 'H100-20C': 4, 'H100-40C': 2, 'H100-80C': 1,
};

const LAYOUT = `version: v1
vgpu-configs:
  h100-inference:
    - device-filter: "0x233110DE"
      devices: all
      vgpu-devices:
        H100-20C: 2
`;

interface Vgpu { id: string; gpu: string; typeName: string; state: string }

describe('Ada and Hopper GPUs in one daemon (real processes)', () => {
  let h: Harness;
  let hopper: SimDeviceHandle;

  const list = async (): Promise<Vgpu[]> => {
    const r = await h.ctl('list', '--json');
    assert.equal(r.code, 0, r.err);
    return (JSON.parse(r.out) as { vgpus: Vgpu[] }).vgpus;
  };
  const byGpu = async (): Promise<Record<string, string[]>> => {
    const out: Record<string, string[]> = {};
    for (const v of await list()) {
      assert.equal(v.state, 'ready', `${v.id} on ${v.gpu} is ${v.state}`);
      (out[v.gpu] ??= []).push(v.typeName.replace(/^NVIDIA /, ''));
    }
    for (const k of Object.keys(out)) out[k]!.sort();
    return out;
  };

  before(async () => {
    h = await createHarness('vgpud-e2e-ada-hopper-', {
      pluginLines: (dir) => ['  hal-hopper:', `    devices: [{board: h100-pcie, bdf: "${H100}", mode: process, dir: "${join(dir, 'sim')}"}]`],
    });
    hopper = await startHopperDevice({ board: 'h100-pcie', bdf: H100, mode: 'process', dir: h.simDir, startTimeoutMs: RPC_GUARD_MS });
    await h.start();
  });
  after(async () => {
    await h?.close();
    await hopper?.stop();
  });

  it('vgpuctl gpus shows both generations, each GPU driven by its own HAL', async () => {
    const r = await h.ctl('gpus', '--json');
    assert.equal(r.code, 0, r.err);
    const gpus = (JSON.parse(r.out) as { gpus: { bdf: string; name?: string; generation?: string }[] }).gpus;
    assert.deepEqual(gpus.map((g) => g.bdf).sort(), [GPU, H100].sort());
    assert.match(JSON.stringify(gpus.find((g) => g.bdf === H100)), /H100/);
  });

  it('the H100 PCIe lists exactly NVIDIA\'s C-series types with NVIDIA\'s max instances, all available on the empty GPU', async () => {
    const r = await h.ctl('types', '--gpu', H100, '--all', '--json');
    assert.equal(r.code, 0, r.err);
    const types = (JSON.parse(r.out) as { types: { name: string; maxInstances: number; available: number }[] }).types;
    assert.deepEqual(Object.fromEntries(types.map((t) => [t.name.replace(/^NVIDIA /, ''), t.maxInstances])), H100_PCIE_TYPES);
    for (const t of types) assert.equal(t.available, t.maxInstances, `${t.name} available on an empty GPU`);
  });

  it('a layout in NVIDIA\'s format with a device-filter for 0x2331 applies on the H100 only', async () => {
    const file = join(h.dir, 'vgpu-config.yaml');
    writeFileSync(file, LAYOUT);
    const a = await h.ctl('apply', file, '-c', 'h100-inference');
    assert.equal(a.code, 0, a.err);
    assert.deepEqual(await byGpu(), { [H100]: ['H100-20C', 'H100-20C'] });
    const ok = await h.ctl('assert', file, '-c', 'h100-inference');
    assert.equal(ok.code, 0, ok.out + ok.err);
  });

  it('vGPUs on both GPUs survive kill -9 of the daemon: the restarted daemon re-attaches both', async () => {
    const c = await h.ctl('create', '--gpu', GPU, '--type', 'RTX6000-Ada-24Q');
    assert.equal(c.code, 0, c.err);
    const before = await byGpu();
    assert.deepEqual(before, { [GPU]: ['RTX6000-Ada-24Q'], [H100]: ['H100-20C', 'H100-20C'] });
    h.daemon!.proc.kill('SIGKILL');
    await h.daemon!.exited;
    await h.start();
    assert.deepEqual(await byGpu(), before);
  });
});
