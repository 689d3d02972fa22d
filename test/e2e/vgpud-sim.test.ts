/**
 * End to end on the simulated RTX 6000 Ada in PROCESS mode: the REAL vgpud and vgpuctl processes, a vgpu-sim
 * process in a temp dir (it outlives the daemon, like a card), a temp socket and state dir.
 *
 * Consistency after every restart is checked against the device itself, not against the daemon's word: the RM
 * clients and plugin tasks alive in the simulated GSP-RM (test controls over the simulator's IPC channel), the FB
 * accounting (`vgpuctl gpus --json`) and the journal files.
 */
import 'reflect-metadata';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { Agent } from 'node:http';
import { join } from 'node:path';
import { createHarness, GPU, type Harness } from './helpers/daemon-harness.js';

interface Vgpu { id: string; vf: number; vfBdf: string; gfid: number; typeId: number; typeName: string; state: string; fb: { offset: string; size: string } }

describe('vgpud on a process-mode simulated RTX 6000 Ada (real processes)', () => {
  let h: Harness;
  let baseClients = 0;
  /** FB one -24Q vGPU takes (guest FB + heap), measured in the first test. */
  let per24q = 0n;

  const list = async (): Promise<Vgpu[]> => {
    const r = await h.ctl('list', '--json');
    assert.equal(r.code, 0, r.err);
    return (JSON.parse(r.out) as { vgpus: Vgpu[] }).vgpus;
  };
  const fbUsed = async (): Promise<bigint> => {
    const r = await h.ctl('gpus', '--json');
    assert.equal(r.code, 0, r.err);
    return BigInt((JSON.parse(r.out) as { gpus: { fb: { used: string } }[] }).gpus[0]!.fb.used);
  };
  const journalIds = (): string[] => readdirSync(h.state).filter((f) => /^vgpu-.*\.json$/.test(f))
    .map((f) => (JSON.parse(readFileSync(join(h.state, f), 'utf8')) as { id: string; state: string }))
    .map((r) => `${r.id}:${r.state}`).sort();

  /** The daemon, the device and the journal agree: every vGPU ready, nothing leaked. */
  async function assertConsistent(what: string, fbPerVgpu?: bigint): Promise<Vgpu[]> {
    const vgpus = await list();
    for (const v of vgpus) assert.equal(v.state, 'ready', `${what}: ${v.id} is ${v.state}`);
    assert.deepEqual(journalIds(), vgpus.map((v) => `${v.id}:ready`).sort(), `${what}: journal = live vGPUs`);
    assert.equal(await h.sim.controls.rmClients(), baseClients + vgpus.length, `${what}: RM clients = manager + one per vGPU`);
    const live = new Set(vgpus.map((v) => v.gfid));
    for (let gfid = 1; gfid <= 32; gfid++) {
      const t = await h.sim.controls.pluginTask(gfid);
      assert.equal(t === 'running', live.has(gfid), `${what}: plugin task of gfid ${gfid} is ${t}`);
    }
    if (fbPerVgpu !== undefined) assert.equal(await fbUsed(), fbPerVgpu * BigInt(vgpus.length), `${what}: FB used`);
    return vgpus;
  }

  async function restart(): Promise<void> {
    await h.start();
  }

  async function killDuring(match: (e: { event: string; data: Record<string, unknown> }) => boolean, action: () => Promise<unknown>): Promise<void> {
    const w = await h.waitEvent(match);
    await w.ready;
    const pending = action();
    await w.event;
    h.daemon!.proc.kill('SIGKILL');
    await h.daemon!.exited;
    await pending;
  }

  before(async () => {
    h = await createHarness('vgpud-e2e-proc-');
    await h.start();
    baseClients = await h.sim.controls.rmClients();
  });
  after(async () => { await h?.close(); });

  it('vgpuctl types --all --json: every -N<series> type has an N GiB profile, NVIDIA\'s max instances in both modes, and a guest FB inside it', async () => {
    const r = await h.ctl('types', '--gpu', GPU, '--all', '--json');
    assert.equal(r.code, 0, r.err);
    const types = (JSON.parse(r.out) as { types: { name: string; profileFbBytes: string; guestFbBytes: string; fbBytes: string; maxInstances: number; maxInstancesMixed: number }[] }).types;
    // Mixed-size maxima of a 48 GB board per GiB of profile: a third-party copy of NVIDIA's L40S table
    // (ahmad-siavashi/gpucloudsim GridVideoCardTags.java), not the code under test.
    const mixed: Record<string, number> = { 1: 16, 2: 16, 3: 16, 4: 8, 6: 8, 8: 4, 12: 4, 16: 2, 24: 2, 48: 1 };
    assert.equal(types.length, 29, 'the RTX 6000 Ada table: 10 Q, 2 B, 10 A, 7 C');
    for (const t of types) {
      const n = BigInt(/-(\d+)[QBAC]$/.exec(t.name)![1]!);
      assert.equal(t.profileFbBytes, String(n << 30n), `${t.name}: profile = ${n} GiB`);
      // NVIDIA's tables for the 48 GB board: min(32, 48 / N).
      assert.equal(t.maxInstances, Math.min(32, Math.floor(48 / Number(n))), t.name);
      assert.equal(t.maxInstancesMixed, mixed[String(n)], `${t.name}: mixed-size maximum`);
      assert.ok(BigInt(t.guestFbBytes) < BigInt(t.profileFbBytes), `${t.name}: the heap lives inside the profile`);
      assert.equal(t.fbBytes, t.guestFbBytes);
    }
  });

  it('prints its socket and a first status table (GPU, firmware, FB, creatable types)', () => {
    assert.match(h.daemon!.out(), new RegExp(`socket: +${h.socket.replace(/[.]/g, '\\.')}`));
    assert.match(h.daemon!.out(), /^0000:41:00\.0 +NVIDIA RTX 6000 Ada Generation +ready +570\.144 +0 +0 B +48\.0 GiB +\d+$/m);
  });

  it('creates two -24Q, lists them, shows them on the VF ABI, destroys them', async () => {
    const c = await h.ctl('create', '--gpu', GPU, '--type', 'RTX6000-Ada-24Q', '--count', '2', '--json');
    assert.equal(c.code, 0, c.err);
    const made = (JSON.parse(c.out) as { vgpus: Vgpu[] }).vgpus;
    assert.equal(made.length, 2);
    const used = await fbUsed();
    per24q = used / 2n;
    assert.ok(per24q >= BigInt(made[0]!.fb.size), 'each vGPU takes at least its guest FB');
    assert.deepEqual((await assertConsistent('after create', per24q)).map((v) => v.id).sort(), made.map((v) => v.id).sort());
    const shown = await h.ctl('show', made[0]!.id);
    assert.match(shown.out, /^type max +2 per GPU in equal-size mode, 2 in mixed-size mode$/m);
    const cur = await h.ctl('vf', made[0]!.vfBdf, 'current_vgpu_type');
    assert.equal(cur.out.trim(), String(made[0]!.typeId));
    for (const v of made) assert.equal((await h.ctl('destroy', v.id)).code, 0);
    assert.deepEqual(await assertConsistent('after destroy', per24q), []);
  });

  it('apply converges (only the difference), --dry-run changes nothing, assert agrees', async () => {
    const file = join(h.dir, 'layout.yaml');
    writeFileSync(file, [
      'version: v1', 'vgpu-configs:',
      '  two-24q:', '    - devices: all', '      vgpu-devices: {RTX6000-Ada-24Q: 2}',
      '  one-24q:', '    - devices: all', '      vgpu-devices: {RTX6000-Ada-24Q: 1}', '',
    ].join('\n'));
    const dry = await h.ctl('apply', file, '-c', 'two-24q', '--dry-run');
    assert.equal(dry.code, 0, dry.err);
    assert.match(dry.out, /\+ create 2 × RTX6000-Ada-24Q/);
    assert.deepEqual(await list(), []);
    assert.equal((await h.ctl('assert', file, '-c', 'two-24q')).code, 1);
    assert.equal((await h.ctl('apply', file, '-c', 'two-24q')).code, 0);
    const two = await assertConsistent('after apply two-24q', per24q);
    assert.equal(two.length, 2);
    assert.equal((await h.ctl('assert', file, '-c', 'two-24q')).code, 0);
    assert.match((await h.ctl('apply', file, '-c', 'two-24q')).out, /no changes/);
    assert.equal((await h.ctl('apply', file, '-c', 'one-24q')).code, 0);
    const one = await assertConsistent('after apply one-24q', per24q);
    assert.equal(one.length, 1);
    assert.ok(two.some((v) => v.id === one[0]!.id), 'the vGPU the layout still wants was kept');
  });

  it('bad requests: clear errors, documented exit codes, nothing half-made', async () => {
    const before = await list();
    const badType = await h.ctl('create', '--gpu', GPU, '--type', 'RTX6000-Ada-25Q');
    assert.equal(badType.code, 3);
    assert.match(badType.err, /RTX6000-Ada-25Q/);
    assert.match(badType.err, /hint:/);
    const badId = await h.ctl('destroy', 'vgpu-999999');
    assert.equal(badId.code, 3);
    assert.match(badId.err, /no vGPU vgpu-999999/);
    const badBdf = await h.ctl('create', '--gpu', 'gpu0', '--type', '24Q');
    assert.equal(badBdf.code, 2);
    assert.match(badBdf.err, /not a PCI address/);
    // One -24Q exists; two more cannot both fit: all or none.
    const full = await h.ctl('create', '--gpu', GPU, '--type', 'RTX6000-Ada-24Q', '--count', '2');
    assert.equal(full.code, 3, full.err);
    assert.deepEqual((await assertConsistent('after refused creates', per24q)).map((v) => v.id), before.map((v) => v.id));
  });

  it('SIGTERM leaves the vGPUs running; a restart re-attaches them: same ids, VFs, FB offsets and FB bytes', async () => {
    assert.equal((await h.ctl('create', '--gpu', GPU, '--type', 'RTX6000-Ada-24Q')).code, 0);
    const vgpus = await list();
    assert.equal(vgpus.length, 2);
    // A "guest" writes its FB directly through the device file, as a VM with the FB mapped would.
    const written = vgpus.map((v) => {
      const data = randomBytes(1 << 20);
      const at = BigInt(v.fb.offset) + (5n << 20n);
      data.copy(h.sim.fbWindow(at, data.length));
      return { id: v.id, at, data };
    });
    h.daemon!.proc.kill('SIGTERM');
    assert.equal(await h.daemon!.exited, 0);
    for (const v of vgpus) assert.equal(await h.sim.controls.pluginTask(v.gfid), 'running', 'the daemon stop left the vGPU running');
    await restart();
    assert.match(h.daemon!.out(), /re-attached a running vGPU/);
    const again = await assertConsistent('after SIGTERM + restart', per24q);
    assert.deepEqual(again.map((v) => [v.id, v.vf, v.fb.offset, v.typeId]), vgpus.map((v) => [v.id, v.vf, v.fb.offset, v.typeId]));
    for (const w of written) assert.ok(h.sim.fbWindow(w.at, w.data.length).equals(w.data), `${w.id}: FB bytes survived the restart`);
    // The re-attached mailbox works: a destroy talks to the plugin task and frees everything.
    assert.equal((await h.ctl('destroy', again[1]!.id)).code, 0);
    await assertConsistent('after destroying an adopted vGPU', per24q);
  });

  for (const step of ['rm-client', 'rpc-setup']) {
    it(`kill -9 during a create (at step '${step}') then restart: ready-and-adopted or gone, nothing leaked`, async (t) => {
      const before = await list();
      await killDuring((e) => e.event === 'vgpu:step' && e.data.step === step && e.data.phase === 'begin',
        () => h.ctl('create', '--gpu', GPU, '--type', 'RTX6000-Ada-24Q'));
      await restart();
      const after = await assertConsistent(`create killed at ${step}`, per24q);
      t.diagnostic(`outcome: ${after.length > before.length ? 'adopted' : 'rolled back'}; ${h.daemon!.out().match(/journal reconciled.*/)?.[0] ?? ''}`);
      assert.ok(after.length === before.length || after.length === before.length + 1, `${after.length} vGPUs`);
      assert.ok(before.every((b) => after.some((a) => a.id === b.id)), 'the vGPUs that were ready are still there');
      for (const v of after.filter((a) => !before.some((b) => b.id === a.id))) assert.equal((await h.ctl('destroy', v.id)).code, 0);
    });
  }

  it('kill -9 during a destroy then restart: ready-and-adopted or gone, nothing leaked', async (t) => {
    const [victim] = await list();
    assert.ok(victim !== undefined);
    await killDuring((e) => e.event === 'vgpu:step' && e.data.vgpuId === victim.id && e.data.step === 'bootload' && e.data.phase === 'undo',
      () => h.ctl('destroy', victim.id));
    await restart();
    const after = await assertConsistent('destroy killed', per24q);
    t.diagnostic(`outcome: ${after.length === 1 ? 'adopted' : 'rolled back'}; ${h.daemon!.out().match(/journal reconciled.*/)?.[0] ?? ''}`);
    assert.ok(after.length <= 1);
  });

  it('load: 32 concurrent API clients, 2,000 mixed requests, every one answered, state consistent', async () => {
    for (const v of await list()) assert.equal((await h.ctl('destroy', v.id)).code, 0);
    const agents = Array.from({ length: 32 }, () => new Agent({ keepAlive: true, maxSockets: 1 }));
    const known: string[] = [];
    const statuses = new Map<number, number>();
    const untyped: string[] = [];
    let n = 0;
    const one = async (agent: Agent, i: number): Promise<void> => {
      const r = i % 20;
      let res: { status: number; body: string };
      if (r < 3) {
        res = await h.http('POST', '/v1/vgpus', { gpu: GPU, type: 'RTX6000-Ada-1Q' }, agent);
        if (res.status === 201) known.push(...(JSON.parse(res.body) as { vgpus: { id: string }[] }).vgpus.map((v) => v.id));
      } else if (r < 5) {
        const id = known.length > 0 ? known.splice(Math.floor((i * 7919) % known.length), 1)[0]! : 'vgpu-0';
        res = await h.http('DELETE', `/v1/vgpus/${id}`, undefined, agent);
      } else if (r < 9) {
        res = await h.http('GET', `/v1/vfs/0000:41:00.${4 + (i % 4)}/${i % 2 ? 'creatable_vgpu_types' : 'current_vgpu_type'}`, undefined, agent);
      } else if (r < 12) {
        res = await h.http('GET', '/v1/gpus', undefined, agent);
      } else if (r < 14) {
        res = await h.http('GET', `/v1/gpus/${GPU}/types`, undefined, agent);
      } else {
        res = await h.http('GET', '/v1/vgpus', undefined, agent);
      }
      n++;
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      if (res.status >= 400) {
        const code = (JSON.parse(res.body) as { error?: { code?: string } }).error?.code ?? '';
        if (res.status >= 500 || !/^VGPU_E[A-Z_]+$/.test(code)) untyped.push(`${res.status} ${res.body.slice(0, 200)}`);
      }
    };
    await Promise.all(agents.map(async (agent, c) => {
      for (let k = 0; k < Math.floor(2000 / 32) + (c < 2000 % 32 ? 1 : 0); k++) await one(agent, c * 1000 + k);
    }));
    for (const a of agents) a.destroy();
    assert.equal(n, 2000, 'every request answered');
    assert.deepEqual(untyped, [], 'every failure is a typed 4xx');
    assert.ok((statuses.get(201) ?? 0) > 0 && (statuses.get(204) ?? statuses.get(200) ?? 0) > 0, JSON.stringify([...statuses]));
    await assertConsistent('after the load');
  });
});
