/**
 * Issue 16 defect 2, end to end: the REAL vgpud over its socket, the REAL vgpuctl, and a REAL vgpu-sim process that is
 * killed with -9 while vGPUs exist.
 *  - The idle daemon notices at once (the device's interrupt link closes), the GPU goes lost, `vgpuctl status` exits 5
 *    and says why; a new vgpu-sim on the same device file is waited for, the GPU is reset and ready again, the lost
 *    vGPUs are listed as lost, the FB file (and what a guest wrote into it) is kept, and creates work.
 *  - A daemon restarted while the device was restarted too (a stale device file) manages the GPU, reports the
 *    journalled vGPUs as lost, and creates again — no file to delete by hand.
 */
import 'reflect-metadata';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startSimDevice } from '../../hal/ada-lovelace/sim/start-sim-device.js';
import { loadNativeOps } from '../../native/index.js';
import { createHarness, GPU, type Harness } from './helpers/daemon-harness.js';

interface Vgpu { id: string; state: string; gfid: number; fb: { offset: string; size: string } }
const native = loadNativeOps().kind === 'native';
const GUEST = Buffer.from('written by a guest before its GPU was lost');

describe('a simulated GPU whose vgpu-sim is killed (real daemon, real processes)', { skip: native ? false : 'needs the native addon' }, () => {
  let h: Harness;
  before(async () => {
    h = await createHarness('vgpud-e2e-loss-');
    await h.start();
  });
  after(async () => { await h?.close(); });

  const list = async (): Promise<Vgpu[]> => {
    const r = await h.ctl('list', '--json');
    assert.equal(r.code, 0, r.err);
    return (JSON.parse(r.out) as { vgpus: Vgpu[] }).vgpus;
  };
  const restartSim = async (): Promise<void> => {
    h.sim = await startSimDevice({ board: 'rtx6000-ada', bdf: GPU, mode: 'process', dir: h.simDir });
  };
  const gpuEvent = (match: (e: { event: string; data: Record<string, unknown> }) => boolean) => h.waitEvent(match, 60_000, 'gpu:lost,gpu:reset,gpu:ready');

  it('kill -9 of the device: noticed by an event, status exits 5 with the reason, GPU reset when the device is back, FB kept', async () => {
    const created = await h.ctl('create', '--gpu', GPU, '--type', '4Q', '--count', '2', '--json');
    assert.equal(created.code, 0, created.err);
    const [a, b] = (JSON.parse(created.out) as { vgpus: Vgpu[] }).vgpus;
    h.sim.fbWindow(BigInt(a!.fb.offset), GUEST.length).set(GUEST);

    const lost = await gpuEvent((e) => e.event === 'gpu:lost');
    await lost.ready;
    const waiting = await gpuEvent((e) => e.event === 'gpu:reset' && e.data.phase === 'waiting');
    await waiting.ready;
    h.sim.child!.kill('SIGKILL'); // no request is sent to the daemon: it has to notice by itself
    assert.match(String((await lost.event).reason), /Xid 79/);
    await waiting.event;

    const st = await h.ctl('status');
    assert.equal(st.code, 5, `status must fail while the GPU is lost:\n${st.out}${st.err}`);
    assert.match(st.err, new RegExp(`GPU ${GPU} is lost: .*Xid 79.*waiting for it to come back`));
    assert.deepEqual((await list()).map((v) => [v.id, v.state]), [[a!.id, 'lost'], [b!.id, 'lost']]);
    const refused = await h.ctl('create', '--gpu', GPU, '--type', '4Q');
    assert.equal(refused.code, 4); // 503: the GPU is unavailable until its reset
    assert.match(refused.err, /is lost/);

    const done = await gpuEvent((e) => e.event === 'gpu:reset' && e.data.phase === 'done');
    await done.ready;
    await restartSim();
    assert.deepEqual((await done.event).lostVgpus, [a!.id, b!.id]);

    const ok = await h.ctl('status');
    assert.equal(ok.code, 0, ok.err);
    assert.match(ok.out, /0000:41:00\.0 .* ready /);
    assert.deepEqual(Buffer.from(h.sim.fbWindow(BigInt(a!.fb.offset), GUEST.length)), GUEST, 'the device file and its FB were kept');
    assert.deepEqual((await list()).map((v) => [v.id, v.state]), [[a!.id, 'lost'], [b!.id, 'lost']]);
    const c = await h.ctl('create', '--gpu', GPU, '--type', '4Q', '--json');
    assert.equal(c.code, 0, c.err);
    const cv = (JSON.parse(c.out) as { vgpus: Vgpu[] }).vgpus[0]!;
    assert.equal(cv.state, 'ready');
    assert.equal(await h.sim.controls.pluginTask(cv.gfid), 'running');
    for (const id of [a!.id, b!.id, cv.id]) assert.equal((await h.ctl('destroy', id)).code, 0);
    assert.deepEqual(await list(), []);
  });

  it('a daemon restarted on a device file whose simulator was restarted too manages the GPU and reports the old vGPUs lost', async () => {
    const created = await h.ctl('create', '--gpu', GPU, '--type', '4Q', '--json');
    assert.equal(created.code, 0, created.err);
    const a = (JSON.parse(created.out) as { vgpus: Vgpu[] }).vgpus[0]!;
    h.daemon!.proc.kill('SIGKILL');
    await h.daemon!.exited;
    h.sim.child!.kill('SIGKILL');
    await new Promise<void>((r) => { if (h.sim.child!.exitCode !== null || h.sim.child!.signalCode !== null) r(); else h.sim.child!.once('exit', () => r()); });
    await restartSim();
    await h.start();
    const st = await h.ctl('status');
    assert.equal(st.code, 0, `${st.out}${st.err}`);
    assert.deepEqual((await list()).map((v) => [v.id, v.state]), [[a.id, 'lost']]);
    const b = await h.ctl('create', '--gpu', GPU, '--type', '4Q', '--json');
    assert.equal(b.code, 0, b.err);
    assert.equal((JSON.parse(b.out) as { vgpus: Vgpu[] }).vgpus[0]!.state, 'ready');
  });
});
