/**
 * End to end (the REAL vgpud and vgpuctl, a vgpu-sim process that outlives the daemon): the state journal against
 * the damage a hostile tester did (issue 16 defects 5, 7 and 8). Every check after a restart is made against the
 * device itself (plugin tasks and RM clients alive in the simulated GSP-RM, FB bytes), not only the daemon's word.
 */
import 'reflect-metadata';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { mountSmallTmpfs, type SmallFs } from '../helpers/small-tmpfs.js';
import { createHarness, GPU, startDaemon, type Harness } from './helpers/daemon-harness.js';

interface Vgpu { id: string; vf: number; vfBdf: string; gfid: number; state: string; fb: { offset: string; size: string } }
interface Quarantined { vf: number; vfBdf: string; vgpuId?: string; unknown: string[]; blocksCreates: boolean; reason: string }
interface Status {
  pid: number;
  quarantine: Quarantined[];
  reconcile?: { damaged: { file: string; reason: string }[]; sequences: { seq: string; next: number }[]; quarantined: unknown[] };
}

function helpers(h: () => Harness) {
  const list = async (): Promise<Vgpu[]> => {
    const r = await h().ctl('list', '--json');
    assert.equal(r.code, 0, r.err);
    return (JSON.parse(r.out) as { vgpus: Vgpu[] }).vgpus;
  };
  const status = async (): Promise<Status> => {
    const r = await h().ctl('status', '--json');
    assert.equal(r.code, 0, r.err);
    return JSON.parse(r.out) as Status;
  };
  const create = async (type: string, count = 1): Promise<Vgpu[]> => {
    const r = await h().ctl('create', '--gpu', GPU, '--type', type, '--count', String(count), '--json');
    assert.equal(r.code, 0, r.err);
    return (JSON.parse(r.out) as { vgpus: Vgpu[] }).vgpus;
  };
  const stop = async (): Promise<void> => {
    h().daemon!.proc.kill('SIGTERM');
    assert.equal(await h().daemon!.exited, 0);
  };
  const record = (id: string): string => join(h().state, `vgpu-${id}.json`);
  return { list, status, create, stop, record };
}

describe('damaged journal records (real daemon, simulated GPU process)', () => {
  let h: Harness;
  let baseClients = 0;
  const { list, status, create, stop, record } = helpers(() => h);

  before(async () => {
    h = await createHarness('vgpud-e2e-jdamage-');
    await h.start();
    baseClients = await h.sim.controls.rmClients();
  });
  after(async () => { await h?.close(); });

  it('truncated records: their VFs are quarantined (status says so), never handed to a create, and an operator release tears down what the device held', async () => {
    const [a, b, c] = await create('RTX6000-Ada-4Q', 3);
    assert.ok(a && b && c);
    // A guest wrote into b's FB; its record loses everything after its type (heap, CHIDs, RM client), c's only its times.
    const at = BigInt(b.fb.offset) + (3n << 20n);
    const data = randomBytes(1 << 16);
    data.copy(h.sim.fbWindow(at, data.length));
    await stop();
    const cut = (id: string, key: string): void => {
      const text = readFileSync(record(id), 'utf8');
      truncateSync(record(id), text.indexOf(`"${key}"`));
    };
    cut(b.id, 'chids');
    cut(c.id, 'createdAt');
    await h.start();

    // The restart neither dropped them silently nor killed their guests: both VFs are quarantined, tasks still run.
    const s = await status();
    assert.deepEqual(s.quarantine.map((q) => [q.vf, q.vgpuId, q.blocksCreates]), [[b.vf, b.id, true], [c.vf, c.id, false]]);
    assert.deepEqual(s.quarantine[0]!.unknown, ['chids', 'heap', 'rm-client']);
    assert.deepEqual(s.reconcile?.damaged.map((d) => d.file).sort(), [`vgpu-${b.id}.json`, `vgpu-${c.id}.json`].sort());
    const text = await h.ctl('status');
    assert.match(text.out, new RegExp(`QUARANTINED VF ${b.vfBdf.replace(/[.]/g, '\\.')} .*was ${b.id}`));
    assert.match(text.out, new RegExp(`vgpuctl vf ${c.vfBdf.replace(/[.]/g, '\\.')} release`));
    assert.deepEqual((await list()).map((v) => v.id), [a.id]);
    assert.equal(await h.sim.controls.pluginTask(b.gfid), 'running');
    assert.equal(await h.sim.controls.pluginTask(c.gfid), 'running');

    // While b's heap and CHIDs are unknown, no create can be placed safely anywhere on the GPU: refused, naming why.
    const types = JSON.parse((await h.ctl('types', '--gpu', GPU, '--all', '--json')).out) as { types: { available: number }[] };
    assert.ok(types.types.every((t) => t.available === 0), 'types agrees with the create path');
    const refused = await h.ctl('create', '--gpu', GPU, '--type', 'RTX6000-Ada-4Q');
    assert.equal(refused.code, 3, refused.err);
    assert.match(refused.err, /quarantined VF/);
    assert.match(refused.err, new RegExp(`vgpuctl vf ${b.vfBdf.replace(/[.]/g, '\\.')} release`));
    assert.equal((await h.ctl('vf', c.vfBdf, 'current_vgpu_type', '0')).code, 3, 'its type cannot be changed under it');

    // Release c (everything known): task, RM client and FB go; creates stay blocked by b.
    const rc = await h.ctl('vf', c.vfBdf, 'release');
    assert.equal(rc.code, 0, rc.err);
    assert.match(rc.out, /shut down and cleaned up/);
    assert.match(rc.out, /RM client 0x[0-9a-f]+ freed/);
    assert.equal(await h.sim.controls.pluginTask(c.gfid), null);
    // Release b: its task goes and its FB is scrubbed; its RM client handle was in the part that was cut.
    const rb = await h.ctl('vf', b.vfBdf, 'release', '--json');
    assert.equal(rb.code, 0, rb.err);
    assert.ok((JSON.parse(rb.out) as { released: { done: string[] } }).released.done.some((d) => /RM client unknown/.test(d)));
    assert.equal(await h.sim.controls.pluginTask(b.gfid), null);
    assert.ok(h.sim.fbWindow(at, data.length).every((x) => x === 0), 'the guest data on the quarantined VF was scrubbed');
    assert.equal((await h.ctl('vf', b.vfBdf, 'release')).code, 3, 'a second release: nothing to release');
    assert.deepEqual((await status()).quarantine, []);
    assert.ok(readdirSync(join(h.state, 'damaged')).some((f) => f.startsWith(`vgpu-${b.id}.json.`)), 'the damaged record is kept for a human');

    // Creates work again; the new vGPUs are sound; only b's unknown client stays behind in the firmware.
    const again = await create('RTX6000-Ada-4Q', 2);
    for (const v of again) assert.equal(await h.sim.controls.pluginTask(v.gfid), 'running');
    assert.equal(await h.sim.controls.rmClients(), baseClients + 3 + 1, 'manager + a + 2 new, and the client whose handle was cut off');
    for (const v of [a, ...again]) assert.equal((await h.ctl('destroy', v.id)).code, 0);
  });

  it('a record emptied to 0 bytes (no GPU or VF left in it): every VF with a type but no vGPU is quarantined until released', async () => {
    const [a, b] = await create('RTX6000-Ada-8Q', 2);
    assert.ok(a && b);
    await stop();
    truncateSync(record(b.id), 0);
    await h.start();
    const s = await status();
    assert.deepEqual(s.quarantine.map((q) => [q.vf, q.blocksCreates]), [[b.vf, true]], 'b\'s VF still had its type selected: it is the suspect');
    assert.match(s.quarantine[0]!.reason, new RegExp(`unreadable record.*vgpu-${b.id}\\.json`));
    assert.deepEqual((await list()).map((v) => v.id), [a.id]);
    assert.equal(await h.sim.controls.pluginTask(b.gfid), 'running');
    assert.equal((await h.ctl('vf', b.vfBdf, 'release')).code, 0);
    assert.equal(await h.sim.controls.pluginTask(b.gfid), null);
    assert.equal((await h.ctl('destroy', a.id)).code, 0);
  });

  it('garbage in both sequence files: vGPU ids and RM handles continue above every one in use', async () => {
    const [a, b] = await create('RTX6000-Ada-4Q', 2);
    assert.ok(a && b);
    await stop();
    writeFileSync(join(h.state, 'seq-vgpu-id.json'), 'garbage');
    writeFileSync(join(h.state, 'seq-rm-handle.json'), '{"version":2,"next":');
    await h.start();
    const s = await status();
    assert.deepEqual(s.reconcile?.sequences.map((x) => x.seq).sort(), ['rm-handle', 'vgpu-id']);
    const clients = await h.sim.controls.rmClients();
    const made = await create('RTX6000-Ada-4Q', 2);
    const num = (id: string): number => Number(/^vgpu-(\d+)$/.exec(id)![1]);
    for (const v of made) assert.ok(num(v.id) > Math.max(num(a.id), num(b.id)), `${v.id} comes after ${a.id} and ${b.id}`);
    assert.equal(await h.sim.controls.rmClients(), clients + 2, 'two new RM clients (no handle clashed with a live one)');
    assert.deepEqual((await list()).map((v) => v.state), ['ready', 'ready', 'ready', 'ready']);
    for (const v of await list()) assert.equal((await h.ctl('destroy', v.id)).code, 0);
  });

  it('planted links: a vgpu-*.json link to a secret never reaches the log; a temp-file link is never written through', async () => {
    const secret = join(h.dir, 'shadow');
    // What a JSON parser would quote from it is its first characters: make those the marker.
    writeFileSync(secret, 'zq9secret:$6$planted$xyz:19000:0:99999:7:::\n', { mode: 0o600 });
    await stop();
    symlinkSync(secret, join(h.state, 'vgpu-evil.json'));
    await h.start();
    assert.doesNotMatch(h.daemon!.out(), /zq9secret|planted\$xyz/);
    assert.match(h.daemon!.out(), /vgpu-evil\.json/);
    assert.equal(existsSync(join(h.state, 'vgpu-evil.json')), false, 'set aside');
    // The next GPU-record write goes through a temp file named after the daemon's pid: plant a link there first.
    const target = join(h.dir, 'precious');
    writeFileSync(target, 'precious\n');
    const { pid } = await status();
    symlinkSync(target, join(h.state, `.gpu-${GPU}.json.${pid}.tmp`));
    const [v] = await create('RTX6000-Ada-8Q');
    assert.equal(readFileSync(target, 'utf8'), 'precious\n');
    assert.equal((await h.ctl('destroy', v!.id)).code, 0);
    assert.equal(readFileSync(target, 'utf8'), 'precious\n');
  });
});

describe('a state dir others can write (real daemon)', () => {
  it('the daemon refuses to start, naming the chmod that fixes it', async (t) => {
    const h = await createHarness('vgpud-e2e-statemode-');
    t.after(() => h.close());
    mkdirSync(h.state, { mode: 0o700 });
    chmodSync(h.state, 0o777);
    await assert.rejects(startDaemon(['--config', h.config, '--socket', h.socket, '--state-dir', h.state]),
      (e: Error) => new RegExp(`state dir ${h.state} is writable by its group and other users`).test(e.message) && e.message.includes(`hint: chmod 0700 ${h.state}`));
  });
});

describe('a full state filesystem (real daemon, state dir on a tiny tmpfs)', () => {
  let h: Harness;
  let fs: SmallFs | string = 'not mounted';
  const { list, create } = helpers(() => h);

  before(async () => {
    h = await createHarness('vgpud-e2e-statefull-');
    fs = mountSmallTmpfs(512, h.state);
    if (typeof fs !== 'string') await h.start();
  });
  after(async () => {
    if (h?.daemon !== undefined && h.daemon.proc.exitCode === null) {
      h.daemon.proc.kill('SIGKILL');
      await h.daemon.exited;
    }
    if (typeof fs !== 'string') fs.unmount();
    await h?.close();
  });

  it('destroy and create are refused with a typed "state dir is full" (nothing done, no temp files); both work once space is freed', async (t) => {
    if (typeof fs === 'string') {
      t.skip(fs);
      return;
    }
    const small = fs;
    const [v] = await create('RTX6000-Ada-4Q');
    assert.ok(v);
    small.fill();
    const d = await h.ctl('destroy', v.id);
    assert.equal(d.code, 4, d.err);
    assert.match(d.err, /state dir .* is full/);
    assert.match(d.err, /hint: free space/);
    assert.deepEqual((await list()).map((x) => [x.id, x.state]), [[v.id, 'ready']]);
    assert.equal(await h.sim.controls.pluginTask(v.gfid), 'running', 'nothing of the destroy was done');
    const c = await h.ctl('create', '--gpu', GPU, '--type', 'RTX6000-Ada-4Q');
    assert.equal(c.code, 4, c.err);
    assert.match(c.err, /state dir .* is full/);
    assert.equal((await list()).length, 1, 'the refused create left nothing');
    const temps = [...readdirSync(h.state), ...(existsSync(join(h.state, 'requests')) ? readdirSync(join(h.state, 'requests')) : [])];
    assert.deepEqual(temps.filter((f) => f.endsWith('.tmp')), [], 'no empty temp files left behind');
    small.unfill();
    assert.equal((await h.ctl('destroy', v.id)).code, 0);
    assert.equal(await h.sim.controls.pluginTask(v.gfid), null);
    const [w] = await create('RTX6000-Ada-4Q');
    assert.equal((await h.ctl('destroy', w!.id)).code, 0);
  });
});
