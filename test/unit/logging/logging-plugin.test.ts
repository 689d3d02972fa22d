/**
 * The 'logging' plugin on the mock HAL: a vGPU's three firmware log areas drained into the store, the daemon log,
 * 'log:line' events and a rotating per-vGPU file; lines kept after destroy and dropped when the VF is reused; a
 * daemon without the plugin is unaffected.
 */
import 'reflect-metadata';
import { afterEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EventBus } from '../../../core/contracts/events.js';
import type { GpuRegistry } from '../../../core/gpu-registry.js';
import { TOKENS } from '../../../core/tokens.js';
import { MockHal } from '../../../hal/mock/mock-hal.js';
import type { MockGpu } from '../../../hal/mock/mock-gpu.js';
import { createLoggingPlugin, LOG_DRAINER, type FirmwareLogDrainer, type VgpuLogStore } from '../../../plugins/logging/index.js';
import { createTestContainer, type TestContainer } from '../../helpers/test-container.js';

const BDF = '0000:41:00.0';
let tc: TestContainer | undefined;
let dir: string | undefined;

afterEach(async () => {
  await tc?.stop();
  tc = undefined;
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

async function rig(logging: Record<string, unknown> = {}, withPlugin = true) {
  dir = mkdtempSync(join(tmpdir(), 'vgpud-logging-'));
  tc = await createTestContainer({
    plugins: withPlugin ? [createLoggingPlugin()] : [],
    // maxDelayMs is long: the tests drain explicitly, never wait on the timer.
    config: { api: { stateDir: dir }, plugins: { logging: { maxDelayMs: 60_000, ...logging } } },
  });
  const gpu = await new MockHal({ devices: [{ bdf: BDF }] }).openDevice() as MockGpu;
  await gpu.firmware.boot({ version: '570.144' });
  tc.container.get<GpuRegistry>(TOKENS.GpuRegistry).add(gpu);
  const bus = tc.container.get<EventBus>(TOKENS.EventBus);
  const state = (vgpuId: string, vf: number, to: 'creating' | 'ready' | 'stopping' | 'destroyed' | 'failed'): void => {
    bus.emit('vgpu:state', { gpu: BDF, vgpuId, vf, from: null, to });
  };
  return { tc, gpu, bus, state, dir };
}

function drainer(t: TestContainer): FirmwareLogDrainer {
  return t.container.get<FirmwareLogDrainer>(LOG_DRAINER);
}
function store(t: TestContainer): VgpuLogStore {
  return t.container.get<VgpuLogStore>(TOKENS.VgpuLogStore);
}

describe('logging plugin', () => {
  it('drains only new complete lines of the three areas into the store, the daemon log and log:line events', async () => {
    const r = await rig();
    const events: string[] = [];
    r.bus.on('log:line', (e) => events.push(`${e.vgpuId}/${e.area}: ${e.line}`));
    r.state('vg-a', 2, 'creating');
    r.gpu.firmware.appendLog('init-task', 3, 'bootloaded\n');
    r.gpu.firmware.appendLog('vgpu-task', 3, 'seq 1 VERSION_NEGOTIATION: ok\nseq 2 SETUP');
    r.state('vg-a', 2, 'ready');
    assert.deepEqual(store(r.tc).lines('vg-a'), ['[init-task] bootloaded', '[vgpu-task] seq 1 VERSION_NEGOTIATION: ok']);
    r.gpu.firmware.appendLog('vgpu-task', 3, '_CONFIG: ok\n');
    r.gpu.firmware.appendLog('kernel', 3, 'RC on chid 4\n');
    r.gpu.firmware.appendLog('vgpu-task', 1, 'another gfid\n');
    drainer(r.tc).drainAll();
    drainer(r.tc).drainAll(); // nothing new: nothing repeated
    assert.deepEqual(store(r.tc).lines('vg-a'), [
      '[init-task] bootloaded', '[vgpu-task] seq 1 VERSION_NEGOTIATION: ok', '[vgpu-task] seq 2 SETUP_CONFIG: ok', '[kernel] RC on chid 4',
    ]);
    assert.deepEqual(store(r.tc).lines('vg-a', 1), ['[kernel] RC on chid 4']);
    assert.equal(events.length, 4);
    assert.ok(events.includes('vg-a/kernel: RC on chid 4'));
    const logged = r.tc.logger.lines.filter((l) => l.meta?.vgpu === 'vg-a');
    assert.ok(logged.some((l) => l.message === 'RC on chid 4' && l.meta?.gpu === BDF && l.meta?.area === 'kernel'));
    const files = readdirSync(join(r.dir, 'logs'));
    assert.equal(files.length, 1);
    assert.match(readFileSync(join(r.dir, 'logs', files[0]!), 'utf8'), /\[kernel\] RC on chid 4\n$/);
  });

  it('rotates the per-vGPU file by size and keeps maxFiles old ones', async () => {
    const r = await rig({ maxBytes: 2048, maxFiles: 2 });
    r.state('vg-r', 0, 'ready');
    for (let i = 0; i < 100; i++) r.gpu.firmware.appendLog('vgpu-task', 1, `line ${i} ${'x'.repeat(60)}\n`);
    drainer(r.tc).drainAll();
    const logs = join(r.dir, 'logs');
    const files = readdirSync(logs).sort();
    assert.equal(files.length, 3, `current + 2 rotated: ${files.join(', ')}`);
    for (const f of files) assert.ok(statSync(join(logs, f)).size <= 2048, `${f} within maxBytes`);
    const current = files.find((f) => f.endsWith('.log'))!;
    assert.match(readFileSync(join(logs, current), 'utf8'), /line 99 x+\n$/);
    // The oldest text was dropped with the oldest rotation; the store still has every line.
    assert.doesNotMatch(files.map((f) => readFileSync(join(logs, f), 'utf8')).join(''), /line 0 x/);
    assert.equal(store(r.tc).lines('vg-r').length, 100);
  });

  it('keeps the lines after destroy (with a final drain) and drops them when a new vGPU takes the VF', async () => {
    const r = await rig();
    r.state('vg-old', 4, 'ready');
    r.gpu.firmware.appendLog('init-task', 5, 'old tenant\n');
    r.gpu.firmware.appendLog('init-task', 5, 'shut down');
    r.state('vg-old', 4, 'stopping');
    r.state('vg-old', 4, 'destroyed');
    assert.deepEqual(store(r.tc).lines('vg-old'), ['[init-task] old tenant', '[init-task] shut down']);
    assert.deepEqual(store(r.tc).linesForVf(BDF, 4), ['[init-task] old tenant', '[init-task] shut down']);
    // Not drained any more once destroyed.
    r.gpu.firmware.appendLog('init-task', 5, 'after destroy\n');
    drainer(r.tc).drainAll();
    assert.equal(store(r.tc).lines('vg-old').length, 2);
    // Another VF's vGPU does not disturb them; a new vGPU on VF 4 drops them.
    r.state('vg-other', 6, 'creating');
    assert.equal(store(r.tc).lines('vg-old').length, 2);
    r.state('vg-new', 4, 'creating');
    assert.deepEqual(store(r.tc).lines('vg-old'), []);
    assert.deepEqual(store(r.tc).vgpus().sort(), ['vg-new', 'vg-other']);
  });

  it('drains when the firmware says it wrote, without being asked, and not while it writes nothing', async () => {
    const r = await rig({ maxDelayMs: 10 });
    r.state('vg-n', 2, 'ready');
    const before = drainer(r.tc).drainCount;
    assert.equal(drainer(r.tc).notifies(BDF), true, 'the mock firmware notifies: no sweep timer for this GPU');
    const line = new Promise<string>((resolve) => r.bus.on('log:line', (e) => { if (e.vgpuId === 'vg-n') resolve(`${e.area}: ${e.line}`); }));
    r.gpu.firmware.appendLog('kernel', 3, 'RC on chid 9\n');
    assert.equal(await line, 'kernel: RC on chid 9');
    assert.deepEqual(store(r.tc).lines('vg-n'), ['[kernel] RC on chid 9']);
    assert.equal(drainer(r.tc).drainCount, before + 1, 'one drain for the notification, none otherwise');
    // Text written for a gfid with no vGPU drains nothing.
    r.gpu.firmware.appendLog('kernel', 7, 'nobody here\n');
    const next = new Promise<string>((resolve) => r.bus.on('log:line', (e) => { if (e.vgpuId === 'vg-n') resolve(e.line); }));
    r.gpu.firmware.appendLog('vgpu-task', 3, 'seq 5 GET_GUEST_INFO: ok\n');
    assert.equal(await next, 'seq 5 GET_GUEST_INFO: ok');
    assert.equal(drainer(r.tc).drainCount, before + 2);
  });

  it('refuses a bad config section at start, naming the key', async () => {
    await assert.rejects(rig({ maxFiles: -1 }), /plugins\.logging/);
  });

  it('is optional: without it the token is unbound and vGPU state events still flow', async () => {
    const r = await rig({}, false);
    assert.equal(r.tc.container.isBound(TOKENS.VgpuLogStore), false);
    r.gpu.firmware.appendLog('vgpu-task', 1, 'nobody drains this\n');
    assert.doesNotThrow(() => r.state('vg-x', 0, 'ready'));
    assert.deepEqual(readdirSync(r.dir), []);
  });
});
