/**
 * Firmware calls whose outcome the host cannot know — a BOOTLOAD whose reply is lost, a SHUTDOWN or CLEANUP that
 * fails during destroy — on the simulated RTX 6000 Ada (worker mode). The host side is always freed; these tests
 * ask for the FIRMWARE side too: no plugin task left in GSP-RM for the gfid, the VF reusable, and no other VF
 * blocked by the left task's claim on FB the host has already given back.
 *
 * Each gets its own device: a left-over task would poison the next test. Upstream leaves the task running in both
 * cases; plugins/lifecycle/create-steps.ts (stopPluginTask, failedBootload) does not.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { isVgpuError } from '../../../core/contracts/exceptions.js';
import { GspFunction } from '../../../hal/gsp/gsp-layout.js';
import { simRig, type SimRig } from './sim-rig.js';

async function withRig(bdf: string, f: (r: SimRig) => Promise<void>): Promise<void> {
  const r = await simRig({ bdf, timeouts: { rpcMs: 300, bootloadMs: 300, mailboxMs: 300 } });
  try {
    await f(r);
  } finally {
    await r.stop();
  }
}

/** The firmware side is clean: no task for any gfid, the VF reusable, and a vGPU on another VF boots. */
async function assertFirmwareClean(r: SimRig, vf: number): Promise<void> {
  assert.deepEqual((await r.books()).tasks, [], 'no plugin task left in GSP-RM');
  const again = await r.lc.create(vf, r.type('1Q'));
  const other = await r.lc.create(vf + 1, r.type('1Q'));
  await r.lc.destroy(again.id);
  await r.lc.destroy(other.id);
  assert.deepEqual(await r.books(), r.baseline);
}

it('a BOOTLOAD whose reply is lost: create fails at bootload and the task GSP-RM started is shut down and cleaned', () =>
  withRig('0000:72:00.0', async (r) => {
    await r.dev.controls.inject({ kind: 'drop-reply', fn: GspFunction.GSP_RM_CONTROL, nth: 1 });
    await assert.rejects(r.lc.create(0, r.type('1Q')), (e) => isVgpuError(e, 'VGPU_ECREATE') && e.details['step'] === 'bootload');
    const b = await r.books();
    assert.equal(b.rmClients, r.baseline.rmClients);
    assert.deepEqual(b.fbRanges, []);
    await assertFirmwareClean(r, 0);
  }));

for (const [call, nth] of [['SHUTDOWN_GSP_VGPU_PLUGIN_TASK', 1], ['VGPU_PLUGIN_CLEANUP', 2]] as const) {
  it(`${call} failing once during destroy: the plugin task is still gone from GSP-RM and the VF reusable`, () =>
    withRig(`0000:7${2 + nth}:00.0`, async (r) => {
      const rec = await r.lc.create(0, r.type('1Q'));
      await r.dev.controls.inject({ kind: 'fail-call', fn: GspFunction.GSP_RM_CONTROL, nth, result: 0x1f });
      await r.lc.destroy(rec.id);
      assert.equal(rec.state, 'destroyed');
      await assertFirmwareClean(r, 0);
    }));
}

it('a plugin task that cannot be stopped keeps its FB out of reuse until a later create on the VF cleans it up', () =>
  withRig('0000:76:00.0', async (r) => {
    const rec = await r.lc.create(0, r.type('1Q'));
    const fb = rec.res.guestFb!;
    // Both tries of SHUTDOWN and both of CLEANUP fail: the firmware still runs the task for gfid 1.
    for (const nth of [1, 2, 3, 4]) await r.dev.controls.inject({ kind: 'fail-call', fn: GspFunction.GSP_RM_CONTROL, nth, result: 0x1f });
    await r.lc.destroy(rec.id);
    assert.equal(rec.state, 'destroyed');
    const held = (await r.books()).fbRanges;
    assert.ok(held.some((x) => x.offset === fb.offset && x.size === fb.size), 'the guest FB stays reserved (quarantined)');
    assert.deepEqual((await r.books()).tasks, [[1, 'running']], 'the firmware still runs the task');
    // The next create on the VF cleans the task up first, releasing the quarantined FB, and boots its own.
    const next = await r.lc.create(0, r.type('1Q'));
    await r.lc.destroy(next.id);
    assert.deepEqual(await r.books(), r.baseline);
  }));
