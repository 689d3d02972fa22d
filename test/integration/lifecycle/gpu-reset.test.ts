/**
 * Issue 16 defect 2 on the simulated RTX 6000 Ada: a device that goes away (its process killed, or unplugged) or whose
 * GSP-RM crashes is noticed by an event — no RPC is made to find out — and the GPU goes through the reset path: its
 * vGPUs are lost and reported, the device is waited for, reset (FLR), GSP-RM rebooted, the manager re-bound, and the
 * GPU is ready again on the same device file with its FB contents kept.
 */
import 'reflect-metadata';
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import type { BusEvents } from '../../../core/contracts/events.js';
import { loadNativeOps } from '../../../native/index.js';
import { startSimDevice, type SimDeviceHandle } from '../../../hal/ada-lovelace/sim/start-sim-device.js';
import { simRig, type SimRig } from './sim-rig.js';

const native = loadNativeOps().kind === 'native';
const rigs: SimRig[] = [];
const extraDevices: SimDeviceHandle[] = [];
const dirs: string[] = [];
after(async () => {
  for (const r of rigs) await r.stop().catch(() => undefined);
  for (const d of extraDevices) await d.stop().catch(() => undefined);
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** The next bus event of `name` that matches (registered now, so call it before causing the event). */
function next<K extends keyof BusEvents>(r: SimRig, name: K, match: (e: Parameters<BusEvents[K]>[0]) => boolean = () => true): Promise<Parameters<BusEvents[K]>[0]> {
  return new Promise((resolve) => {
    const off = r.bus.on(name, ((e: Parameters<BusEvents[K]>[0]) => {
      if (!match(e)) return;
      off();
      resolve(e);
    }) as BusEvents[K]);
  });
}

const GUEST = Buffer.from('bytes a guest wrote before its GPU went away');

describe('GPU reset after a loss (simulated RTX 6000 Ada)', () => {
  it('a device that drops off the bus is noticed at once, waited for, reset and ready again; its vGPUs are lost, FB kept', async () => {
    const r = await simRig({ bdf: '0000:63:00.0' });
    rigs.push(r);
    const t = r.type('1Q');
    const a = await r.lc.create(0, t);
    const b = await r.lc.create(1, t);
    const fb = a.res.guestFb!.offset;
    r.dev.fbWindow(fb, GUEST.length).set(GUEST);
    const calls = (await r.dev.controls.gspStats()).requests;

    const lost = next(r, 'gpu:lost');
    const waiting = next(r, 'gpu:reset', (e) => e.phase === 'waiting');
    await r.dev.controls.unplug();
    assert.match((await lost).reason, /Xid 79/);
    await waiting;
    assert.equal(r.lc.state, 'lost');
    assert.match(r.lc.reason ?? '', /waiting for it to come back/);
    assert.deepEqual(r.lc.records().map((x) => [x.id, x.state]), [[a.id, 'lost'], [b.id, 'lost']]);

    const ready = next(r, 'gpu:ready');
    const done = next(r, 'gpu:reset', (e) => e.phase === 'done');
    await r.dev.controls.replug();
    await ready;
    assert.deepEqual((await done).lostVgpus, [a.id, b.id]);
    assert.equal(r.lc.state, 'ready');
    assert.equal(r.lc.resets, 1);
    // Nothing was deleted: what the guest wrote is still in the device's FB.
    assert.deepEqual(Buffer.from(r.dev.fbWindow(fb, GUEST.length)), GUEST);
    // A fresh GSP-RM: only the manager's new client, no plugin task of the old vGPUs; the GPU creates again.
    assert.equal(await r.dev.controls.rmClients(), 1);
    assert.equal(await r.dev.controls.pluginTask(a.gfid), null);
    const c = await r.lc.create(2, t);
    assert.equal(c.state, 'ready');
    await r.lc.destroy(a.id);
    await r.lc.destroy(b.id);
    const again = await r.lc.create(0, t);
    assert.equal(again.state, 'ready');
    assert.equal(await r.dev.controls.rmClients(), 3);
    await r.lc.destroy(c.id);
    await r.lc.destroy(again.id);
    assert.equal(await r.dev.controls.rmClients(), 1);
    assert.ok(calls > 0);
  });

  it('a GSP-RM crash (Xid 120) is noticed without a call in flight and the GPU is reset in place', async () => {
    const r = await simRig({ bdf: '0000:64:00.0' });
    rigs.push(r);
    const t = r.type('1Q');
    const a = await r.lc.create(0, t);
    const lost = next(r, 'gpu:lost');
    const ready = next(r, 'gpu:ready');
    await r.dev.controls.crash();
    assert.match((await lost).reason, /Xid 120 \(GSP error\)/);
    await ready;
    assert.equal(r.lc.state, 'ready');
    assert.equal(a.state, 'lost');
    assert.equal(await r.dev.controls.pluginTask(a.gfid), null);
    const b = await r.lc.create(1, t);
    assert.equal(b.state, 'ready');
    await r.lc.destroy(b.id);
    await r.lc.destroy(a.id);
    assert.equal(await r.dev.controls.rmClients(), 1);
  });

  it('process mode: vgpu-sim killed with -9 is noticed by the link closing; a new vgpu-sim on the same file brings the GPU back', { skip: native ? false : 'needs the native addon' }, async () => {
    const dir = mkdtempSync('/dev/shm/vgpud-reset-test-');
    dirs.push(dir);
    const r = await simRig({ bdf: '0000:65:00.0', mode: 'process', dir });
    rigs.push(r);
    const t = r.type('4Q');
    const a = await r.lc.create(0, t);
    const fb = a.res.guestFb!.offset;
    r.dev.fbWindow(fb, GUEST.length).set(GUEST);

    const lost = next(r, 'gpu:lost');
    const waiting = next(r, 'gpu:reset', (e) => e.phase === 'waiting');
    r.dev.child!.kill('SIGKILL');
    assert.match((await lost).reason, /Xid 79 .*process is gone/);
    await waiting;
    assert.equal(a.state, 'lost');

    const ready = next(r, 'gpu:ready');
    const dev2 = await startSimDevice({ board: 'rtx6000-ada', bdf: '0000:65:00.0', mode: 'process', dir, fbBytes: r.dev.descriptor.fbBytes });
    extraDevices.push(dev2);
    await ready;
    assert.equal(r.lc.state, 'ready');
    assert.deepEqual(Buffer.from(dev2.fbWindow(fb, GUEST.length)), GUEST, 'the device file and its FB were kept');
    const b = await r.lc.create(1, t);
    assert.equal(b.state, 'ready');
    assert.equal(await dev2.controls.pluginTask(b.gfid), 'running');
    assert.equal(await dev2.controls.rmClients(), 2);
    await r.lc.destroy(b.id);
    await r.lc.destroy(a.id);
  });
});
