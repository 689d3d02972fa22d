/**
 * Two -24Q vGPUs on a simulated RTX 6000 Ada (PROCESS mode: the board's full 48 GiB FB in a sparse file, which
 * two 24 GiB slices need), created in parallel: both ready, FB slices disjoint, destroyed, nothing held. The
 * logging plugin's pieces (FirmwareLogDrainer, VgpuLogStore) drain each vGPU's firmware log areas: each vGPU's log
 * shows its own boot lines (init-task and vgpu-task of its gfid), and keeps them after destroy until a new vGPU
 * takes the VF. The 1,000-cycle soak is in soak.test.ts (worker mode).
 */
import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { GpuRegistryImpl } from '../../../core/gpu-registry.js';
import { MemoryLogger } from '../../../core/logging/memory-logger.js';
import { loadNativeOps } from '../../../native/index.js';
import { FirmwareLogDrainer, VgpuLogStoreImpl } from '../../../plugins/logging/index.js';
import type { VgpuRecord } from '../../../plugins/lifecycle/vgpu-record.js';
import { simRig, until, type SimRig } from './sim-rig.js';

const native = loadNativeOps().kind === 'native';
const skip = !native && 'needs the native addon (npm run build:native): a 48 GiB FB only fits a sparse file region';
const simDir = mkdtempSync('/dev/shm/vgpud-lifecycle-test-');
const logDir = mkdtempSync('/tmp/vgpud-lifecycle-logs-');

let r: SimRig;
let store: VgpuLogStoreImpl;
let drainer: FirmwareLogDrainer;
before(async () => {
  if (!native) return;
  r = await simRig({ bdf: '0000:61:00.0', mode: 'process', dir: simDir, policy: 'homogeneous' });
  const gpus = new GpuRegistryImpl();
  gpus.add(r.gpu);
  store = new VgpuLogStoreImpl(5000);
  // maxDelayMs high: the test drains explicitly (drainAll) and at the state changes, as the plugin does.
  drainer = new FirmwareLogDrainer(r.bus, gpus, new MemoryLogger({ level: 'warn' }), store, { dir: logDir, maxBytes: 1 << 20, maxFiles: 2, maxDelayMs: 60_000, keepLines: 5000, keepDestroyed: 16, keepDestroyedHours: 0 });
  drainer.start();
});
after(async () => {
  drainer?.stop();
  await r?.stop();
  rmSync(simDir, { recursive: true, force: true });
  rmSync(logDir, { recursive: true, force: true });
});

/** The vGPU's drained lines, once they include every pattern (the firmware writes a line just after answering). */
function linesWith(id: string, patterns: RegExp[]): Promise<string[]> {
  return until(`log lines of ${id} matching ${patterns.join(', ')}`, () => {
    drainer.drainAll();
    const lines = store.lines(id);
    return patterns.every((p) => lines.some((l) => p.test(l))) ? lines : undefined;
  });
}

/** The boot lines a vGPU's log must show: its own gfid in the init-task area, its own config in the vgpu-task area. */
function bootLines(rec: VgpuRecord): RegExp[] {
  return [
    new RegExp(`^\\[init-task\\] .*plugin task for gfid ${rec.gfid} bootloaded`),
    new RegExp(`^\\[init-task\\] .*gfid ${rec.gfid}: control buffer v1 found; GSP_PLUGIN_BOOTLOADED written`),
    /^\[vgpu-task\] .*seq 1 VERSION_NEGOTIATION: ok/,
    new RegExp(`^\\[vgpu-task\\] .*seq 2 SETUP_CONFIG_PARAMS_AND_INIT: ok \\(type ${rec.type.id}, ${rec.res.chids!.count} channels, dbdf 0x${rec.dbdf.toString(16)}\\)`),
  ];
}

it('two -24Q vGPUs created in parallel: both ready, disjoint FB, per-vGPU boot logs kept after destroy until the VF is reused', { skip }, async () => {
  const t24 = r.type('24Q');
  const [a, b] = await Promise.all([r.lc.create(0, t24), r.lc.create(1, t24)]);
  assert.equal(a.state, 'ready');
  assert.equal(b.state, 'ready');
  assert.equal(await r.dev.controls.pluginTask(a.gfid), 'running');
  assert.equal(await r.dev.controls.pluginTask(b.gfid), 'running');

  // Disjoint: the two guest FB slices and the two heaps, pairwise.
  const ranges = [a.res.guestFb!, b.res.guestFb!, a.res.heap!, b.res.heap!];
  for (let i = 0; i < ranges.length; i++) {
    for (let j = i + 1; j < ranges.length; j++) {
      const x = ranges[i]!;
      const y = ranges[j]!;
      assert.ok(x.offset + x.size <= y.offset || y.offset + y.size <= x.offset, `ranges ${i} and ${j} overlap`);
    }
  }
  assert.equal(a.res.guestFb!.size, t24.fbLength);

  // Per-vGPU logs: each shows its own boot lines and none of the other's. (Patterns taken now: destroy clears res.)
  const boot = new Map([a, b].map((rec) => [rec.id, bootLines(rec)]));
  const la = await linesWith(a.id, boot.get(a.id)!);
  const lb = await linesWith(b.id, boot.get(b.id)!);
  assert.ok(!la.some((l) => new RegExp(`gfid ${b.gfid}\\b`).test(l)), 'no line of the other vGPU in this one\'s log');
  assert.ok(!lb.some((l) => new RegExp(`gfid ${a.gfid}\\b`).test(l)), 'no line of the other vGPU in this one\'s log');
  assert.deepEqual(store.linesForVf(r.gpu.bdf, 0), la);

  await Promise.all([r.lc.destroy(a.id), r.lc.destroy(b.id)]);
  assert.deepEqual(await r.books(), r.baseline, 'nothing held after destroy');
  assert.equal(r.gpu.firmware.readLog('init-task', a.gfid).byteLength, 0, 'the firmware released the log areas at CLEANUP');

  // Kept after destroy: in the store and in the per-vGPU files.
  for (const rec of [a, b]) {
    for (const p of boot.get(rec.id)!) assert.ok(store.lines(rec.id).some((l) => p.test(l)), `${rec.id} still shows ${p}`);
    const file = readdirSync(logDir).find((f) => f.endsWith(`_vf${rec.vf.index}_${rec.id}.log`));
    assert.ok(file !== undefined, `a log file for ${rec.id}`);
    const text = readFileSync(join(logDir, file), 'utf8');
    assert.match(text, new RegExp(`\\[init-task\\] .*plugin task for gfid ${rec.gfid} bootloaded`));
    assert.match(text, /\[vgpu-task\] .*SETUP_CONFIG_PARAMS_AND_INIT: ok/);
  }

  // Until the VF is reused: a new vGPU on VF 0 drops a's lines; VF 1 still shows b's.
  const c = await r.lc.create(0, t24);
  assert.deepEqual(store.lines(a.id), []);
  await linesWith(c.id, bootLines(c));
  assert.ok(store.linesForVf(r.gpu.bdf, 0).every((l) => store.lines(c.id).includes(l)));
  assert.ok(store.linesForVf(r.gpu.bdf, 1).some((l) => boot.get(b.id)![3]!.test(l)));
  await r.lc.destroy(c.id);
  assert.deepEqual(await r.books(), r.baseline);
  assert.ok(existsSync(logDir));
});

it('a destroyed vGPU\'s kept log includes its plugin task\'s shutdown line', {
  skip,
}, async () => {
  const rec = await r.lc.create(2, r.type('24Q'));
  await linesWith(rec.id, bootLines(rec));
  await r.lc.destroy(rec.id);
  assert.ok(store.lines(rec.id).some((l) => new RegExp(`^\\[init-task\\] .*plugin task for gfid ${rec.gfid} shut down`).test(l)),
    `the shutdown line is in the kept log:\n${store.lines(rec.id).join('\n')}`);
});
