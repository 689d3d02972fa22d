/**
 * The simulator's guest workload (hal/sim/device/guest-workload.ts), which the two-daemon migration test uses
 * as "the guest dirtying its FB": it writes only while the vGPU runs (MIGRATION_STOP_WORK holds it, RESUME_WORK lets
 * it go on), its window is exactly what replayGuestWorkload computes from its write count, and it ends with the vGPU.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { VgpuRpcMsg } from '../../../core/firmware-abi/vgpu-mailbox.js';
import { replayGuestWorkload, type GuestWorkloadStats } from '../../../hal/sim/device/guest-workload.js';
import { simRig, type SimRig } from '../lifecycle/sim-rig.js';

describe('simulated guest workload', () => {
  let r: SimRig;
  before(async () => { r = await simRig({ bdf: '0000:51:00.0' }); });
  after(async () => { await r?.stop(); });

  it('writes while the vGPU runs, is held by STOP_WORK, goes on after RESUME_WORK, ends with the vGPU', async () => {
    const rec = await r.lc.create(0, r.type('1Q'));
    const fb = rec.res.guestFb!;
    const windowBytes = 1 << 20;
    const seed = 7;
    const window = (): Buffer => Buffer.from(r.dev.fbWindow(fb.offset, windowBytes));
    const stats = async (): Promise<GuestWorkloadStats> => (await r.dev.controls.guestWorkload(rec.gfid, 'stats'))!;
    /** Ask until `ok` holds: each answer comes from the GSP thread between two of its ticks (no clock involved). */
    const until = async (ok: (s: GuestWorkloadStats) => boolean): Promise<GuestWorkloadStats> => {
      for (;;) {
        const s = await stats();
        if (ok(s)) return s;
      }
    };

    assert.equal(await r.dev.controls.guestWorkload(rec.gfid, 'stats'), null, 'none before one is started');
    await assert.rejects(r.dev.controls.guestWorkload(rec.gfid, { rateMiBps: 0 }), /rateMiBps must be positive/);
    await assert.rejects(r.dev.controls.guestWorkload(9, { rateMiBps: 64 }), /no running plugin task for gfid 9/);
    const start = await r.dev.controls.guestWorkload(rec.gfid, { rateMiBps: 64, seed, windowBytes });
    assert.deepEqual(start, { writes: 0, ticks: 0, seed, windowBytes, state: 'running' });
    await until((s) => s.writes > 0);

    await rec.res.channel!.call(VgpuRpcMsg.MIGRATION_STOP_WORK);
    const held = await stats();
    assert.equal(held.state, 'held');
    // Several ticks later not one more write: STOP_WORK holds it.
    const later = await until((s) => s.ticks >= held.ticks + 3);
    assert.equal(later.writes, held.writes);
    assert.ok(window().equals(replayGuestWorkload({ seed, windowBytes }, held.writes)), 'the window is exactly the replay of its writes');

    await rec.res.channel!.call(VgpuRpcMsg.MIGRATION_RESUME_WORK);
    await until((s) => s.state === 'running' && s.writes > held.writes);

    await r.lc.destroy(rec.id);
    const gone = await until((s) => s.state === 'ended');
    const end = await r.dev.controls.guestWorkload(rec.gfid, 'end');
    assert.equal(end?.writes, gone.writes, 'nothing written after the vGPU was destroyed');
  });
});
