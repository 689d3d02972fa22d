/**
 * Live migration between two REAL daemons, each with its own simulated RTX 6000 Ada in its own vgpu-sim process:
 * daemon B accepts migrations on a Unix socket (`plugins.migration.listen`), `vgpuctl migrate ID --to SOCKET` runs
 * on daemon A while the vGPU's guest keeps writing its FB (the simulator's guest workload: it writes while the
 * vGPU runs and is held by MIGRATION_STOP_WORK, as a VM's GPU work is).
 *
 *  - moved: the destination FB equals what the source held at the stop, byte for byte (the workload window is
 *    rebuilt from its write count, the test's own data compared, everything else read back as zero); the source
 *    daemon has no vGPU left, the destination's is ready and its plugin task runs.
 *  - kill -9 of the destination mid-migration: the source's vGPU runs on (its guest keeps writing); the destination
 *    restarted holds no vGPU.
 *  - kill -9 of the source mid-migration: the destination drops what it received; the source restarted re-attaches
 *    its vGPU, which runs (its guest keeps writing).
 *
 * "Mid-migration" is made certain, not timed: when B's vGPU for the incoming stream is ready (a bus event), B is
 * SIGSTOPped, so the stream cannot complete before the test kills one side (the source blocks on a full socket).
 */
import 'reflect-metadata';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { replayGuestWorkload, type GuestWorkloadStats } from '../../hal/sim/device/guest-workload.js';
import { createHarness, GPU, type Harness } from './helpers/daemon-harness.js';

const GPU_B = '0000:42:00.0';
const WINDOW = 16 << 20;
/** A limit that cannot bind: these tests check what moves and what survives, not the downtime (bench:migrate does). */
const DOWNTIME_MS = '600000';

interface Vgpu { id: string; gfid: number; state: string; fb: { offset: string; size: string } }

describe('migration between two real daemons (process-mode simulators)', () => {
  let A: Harness;
  let B: Harness;
  let sockB: string;

  const list = async (h: Harness): Promise<Vgpu[]> => {
    const r = await h.ctl('list', '--json');
    assert.equal(r.code, 0, r.err);
    return (JSON.parse(r.out) as { vgpus: Vgpu[] }).vgpus;
  };
  const workload = async (h: Harness, gfid: number): Promise<GuestWorkloadStats> => (await h.sim.controls.guestWorkload(gfid, 'stats'))!;
  /** Ask the device until the workload has written more than `than` (each answer comes from its GSP thread). */
  const writesPast = async (h: Harness, gfid: number, than: number): Promise<GuestWorkloadStats> => {
    for (;;) {
      const s = await workload(h, gfid);
      if (s.state === 'running' && s.writes > than) return s;
    }
  };
  /** A running 1Q on A whose guest writes its FB. */
  const source = async (seed: number): Promise<Vgpu> => {
    const c = await A.ctl('create', '--gpu', GPU, '--type', 'RTX6000-Ada-1Q', '--json');
    assert.equal(c.code, 0, c.err);
    const v = (JSON.parse(c.out) as { vgpus: Vgpu[] }).vgpus[0]!;
    await A.sim.controls.guestWorkload(v.gfid, { rateMiBps: 32, seed, windowBytes: WINDOW });
    await writesPast(A, v.gfid, 0);
    return v;
  };
  /** Start `vgpuctl migrate` on A; resolves once B's vGPU for it is ready, with B stopped (SIGSTOP) right then. */
  const migrateUntilDestinationReady = async (id: string): Promise<{ migrate: Promise<{ code: number; out: string; err: string }> }> => {
    const w = await B.waitEvent((e) => e.event === 'vgpu:state' && e.data.to === 'ready', 120_000);
    await w.ready;
    const migrate = A.ctl('migrate', id, '--to', sockB, '--downtime-ms', DOWNTIME_MS, '--json');
    await w.event;
    B.daemon!.proc.kill('SIGSTOP');
    return { migrate };
  };

  before(async () => {
    [A, B] = await Promise.all([
      createHarness('vgpud-e2e-migA-'),
      createHarness('vgpud-e2e-migB-', { bdf: GPU_B, pluginLines: (dir) => [`  migration: {listen: "${join(dir, 'migrate.sock')}"}`] }),
    ]);
    sockB = join(B.dir, 'migrate.sock');
    await Promise.all([A.start(), B.start()]);
    assert.match(B.daemon!.out(), /accepting incoming vGPU migrations/);
  });
  after(async () => {
    if (B?.daemon?.proc.signalCode === 'SIGSTOP') B.daemon.proc.kill('SIGCONT');
    await Promise.all([A?.close(), B?.close()]);
  });

  it('moves a vGPU while its guest writes: destination FB equal byte for byte, source empty, destination ready', async () => {
    const v = await source(11);
    const base = BigInt(v.fb.offset);
    const size = BigInt(v.fb.size);
    // The test's own data beyond the workload's window: 63 spots of 64 KiB spread up to the end of the FB.
    const step = ((size - BigInt(WINDOW)) / 64n) & ~4095n;
    const spots = Array.from({ length: 63 }, (_, i) => ({ at: BigInt(WINDOW) + step * BigInt(i + 1), data: randomBytes(64 << 10) }));
    for (const s of spots) s.data.copy(A.sim.fbWindow(base + s.at, s.data.length));
    const before = await workload(A, v.gfid);

    const m = await A.ctl('migrate', v.id, '--to', sockB, '--downtime-ms', DOWNTIME_MS, '--json');
    assert.equal(m.code, 0, m.err);
    const r = (JSON.parse(m.out) as { result: { vgpu: string; passes: number; stop: { finalPages: number } } }).result;
    const end = (await A.sim.controls.guestWorkload(v.gfid, 'end'))!;
    assert.ok(end.writes > before.writes, 'the guest wrote while the migration ran');
    assert.ok(r.passes >= 2 || r.stop.finalPages > 0, 'pages the guest dirtied after the first pass were sent again');

    // Source: nothing left, in the daemon and in the device.
    assert.deepEqual(await list(A), []);
    assert.equal(await A.sim.controls.pluginTask(v.gfid), null);
    // Destination: one ready vGPU whose firmware task runs.
    const [d] = await list(B);
    assert.equal(d?.id, r.vgpu);
    try {
      await checkDestination(d, v, spots, end.writes);
    } finally {
      // The next tests start from an empty destination whatever happened here.
      assert.equal((await B.ctl('destroy', d.id)).code, 0);
    }
  });

  async function checkDestination(d: Vgpu, v: Vgpu, spots: { at: bigint; data: Buffer }[], writes: number): Promise<void> {
    const size = BigInt(v.fb.size);
    assert.equal(d.state, 'ready');
    assert.equal(await B.sim.controls.pluginTask(d.gfid), 'running');
    assert.equal(d.fb.size, v.fb.size);
    // Its FB, every byte: the guest's window as its writes left it, the test's spots, zero everywhere else.
    const dBase = BigInt(d.fb.offset);
    assert.ok(Buffer.from(B.sim.fbWindow(dBase, WINDOW)).equals(replayGuestWorkload({ seed: 11, windowBytes: WINDOW }, writes)), 'guest window');
    let from = BigInt(WINDOW);
    for (const s of spots) {
      assert.ok(Buffer.from(B.sim.fbWindow(dBase + s.at, s.data.length)).equals(s.data), `spot at ${s.at}`);
      assert.equal(await B.sim.arena.verify(B.sim.fbOffset + dBase + from, s.at - from, 0), null, `zero before ${s.at}`);
      from = s.at + BigInt(s.data.length);
    }
    assert.equal(await B.sim.arena.verify(B.sim.fbOffset + dBase + from, size - from, 0), null, 'zero to the end');
  }

  it('kill -9 of the destination mid-migration: the source runs on; the destination restarted is empty', async () => {
    const v = await source(12);
    const { migrate } = await migrateUntilDestinationReady(v.id);
    B.daemon!.proc.kill('SIGKILL');
    await B.daemon!.exited;
    const m = await migrate;
    assert.equal(m.code, 4, m.err);
    assert.match(m.err, /migration of .* failed/);
    const [s] = await list(A);
    assert.equal(s?.id, v.id);
    assert.equal(s.state, 'ready');
    const w = await workload(A, v.gfid);
    await writesPast(A, v.gfid, w.writes); // the guest runs: it keeps writing

    await B.start();
    assert.deepEqual(await list(B), [], 'the destination keeps nothing of the interrupted migration');
    assert.match(B.daemon!.out(), /interrupted incoming migration/);
  });

  it('kill -9 of the source mid-migration: the destination drops it; the source restarted runs its vGPU', async () => {
    const [v] = await list(A);
    assert.ok(v !== undefined);
    const { migrate } = await migrateUntilDestinationReady(v.id);
    A.daemon!.proc.kill('SIGKILL');
    await A.daemon!.exited;
    const m = await migrate;
    assert.equal(m.code, 4, `${m.out}${m.err}`);
    assert.doesNotMatch(m.err, /\n +at /, 'a message, not a stack trace');
    // B goes on: it must notice the source is gone and destroy what it made.
    const w = await B.waitEvent((e) => e.event === 'vgpu:state' && e.data.to === 'destroyed', 120_000);
    B.daemon!.proc.kill('SIGCONT');
    await w.ready;
    if ((await list(B)).length > 0) await w.event;
    assert.deepEqual(await list(B), []);

    await A.start();
    assert.match(A.daemon!.out(), /re-attached a running vGPU/);
    const [s] = await list(A);
    assert.equal(s?.id, v.id);
    assert.equal(s.state, 'ready');
    const before = await workload(A, v.gfid);
    await writesPast(A, v.gfid, before.writes); // not held by a stop the dead daemon left behind
    assert.equal((await A.ctl('destroy', v.id)).code, 0);
  });
});
