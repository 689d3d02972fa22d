/**
 * FB scrubbing as the daemon wires it, end to end: the REAL vgpud with every built-in plugin (scrub AND lifecycle)
 * on a process-mode simulated RTX 6000 Ada, driven by the REAL vgpuctl. A "guest" writes into its vGPU's FB through
 * the device's own view (the simulator's region file, as a VM with the FB mapped would); after a destroy every byte
 * of that range must read zero before the next vGPU gets it, and the same after a reset. A daemon restarted without
 * the scrub plugin must refuse to create or reset (never hand out unscrubbed FB), and says so at start.
 */
import 'reflect-metadata';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createHarness, GPU, type Harness } from './helpers/daemon-harness.js';
import { RPC_GUARD_MS } from '../helpers/guard-timeouts.js';

interface Vgpu { id: string; vf: number; fb: { offset: string; size: string }; lastScrub?: { reason: string; bytes: string } }

describe('FB scrub wired into the daemon (real processes, all built-in plugins)', () => {
  let h: Harness;

  const show = async (id: string): Promise<Vgpu> => {
    const r = await h.ctl('show', id, '--json');
    assert.equal(r.code, 0, r.err);
    return (JSON.parse(r.out) as { vgpu: Vgpu }).vgpu;
  };
  const create = async (): Promise<Vgpu> => {
    const r = await h.ctl('create', '--gpu', GPU, '--type', 'RTX6000-Ada-1Q', '--vf', '0', '--json');
    assert.equal(r.code, 0, r.err);
    return (JSON.parse(r.out) as { vgpus: Vgpu[] }).vgpus[0]!;
  };
  /** The guest's writes: the first and last page and 62 spots between them, a non-zero pattern. */
  const dirty = (v: Vgpu): void => {
    const base = BigInt(v.fb.offset);
    const size = BigInt(v.fb.size);
    for (let i = 0n; i < 64n; i++) {
      const at = i === 63n ? base + size - 4096n : base + (size / 64n) * i;
      h.sim.fbWindow(at, 4096).fill(0xa5);
    }
  };
  /** First FB offset in the vGPU's range that is not zero, or null: every byte read back through the device. */
  const firstNonZero = async (v: Vgpu): Promise<bigint | null> => {
    const at = await h.sim.arena.verify(h.sim.fbOffset + BigInt(v.fb.offset), BigInt(v.fb.size), 0);
    return at === null ? null : at - h.sim.fbOffset;
  };

  before(async () => {
    h = await createHarness('vgpud-e2e-scrub-');
    await h.start();
  });
  after(async () => { await h?.close(); });

  it('destroy: the guest\'s FB reads zero, every byte, before the next vGPU gets the range', async () => {
    const v = await create();
    assert.equal((await show(v.id)).lastScrub?.reason, 'create', 'a new vGPU\'s FB is scrubbed before the guest sees it');
    dirty(v);
    assert.equal(await firstNonZero(v), BigInt(v.fb.offset), 'the guest\'s data is there (the check can see it)');
    assert.equal((await h.ctl('destroy', v.id)).code, 0);
    assert.equal(await firstNonZero(v), null, 'nothing of the guest is left in its FB range');
    const logs = await h.ctl('logs', v.id);
    assert.match(logs.out, new RegExp(`scrubbed ${v.fb.size} bytes of guest FB \\(destroy\\)`));
    // The next vGPU on that VF gets the same range.
    const next = await create();
    assert.equal(next.fb.offset, v.fb.offset);
    assert.equal(next.fb.size, v.fb.size);
  });

  it('reset: the FB reads zero, every byte, afterwards; the vGPU is ready again', async () => {
    const [v] = (JSON.parse((await h.ctl('list', '--json')).out) as { vgpus: Vgpu[] }).vgpus;
    assert.ok(v !== undefined);
    dirty(v);
    assert.notEqual(await firstNonZero(v), null);
    const r = await h.ctl('reset', v.id);
    assert.equal(r.code, 0, r.err);
    assert.equal(await firstNonZero(v), null, 'the reset scrubbed the whole FB range');
    const after = await show(v.id);
    assert.equal(after.lastScrub?.reason, 'reset');
    assert.equal(after.lastScrub?.bytes, v.fb.size);
  });

  it('restarted without the scrub plugin: creates and resets are refused (typed, nothing made), the start says why', async () => {
    const [v] = (JSON.parse((await h.ctl('list', '--json')).out) as { vgpus: Vgpu[] }).vgpus;
    assert.ok(v !== undefined);
    h.daemon!.proc.kill('SIGTERM');
    assert.equal(await h.daemon!.exited, 0);
    const noScrub = join(h.dir, 'no-scrub.yaml');
    writeFileSync(noScrub, [
      'logging: {format: human, level: info}',
      `timeouts: {rpcMs: ${RPC_GUARD_MS}, bootloadMs: ${RPC_GUARD_MS}, scrubMs: ${RPC_GUARD_MS}}`,
      'plugins:',
      '  enabled: [hal-ada-lovelace, state, logging, lifecycle, vgpu-router, api, metrics, migration]',
      '  hal-ada-lovelace:',
      `    devices: [{board: rtx6000-ada, bdf: "${GPU}", mode: process, dir: "${join(h.dir, 'sim')}"}]`,
      '',
    ].join('\n'));
    const d = await h.startWith(['--config', noScrub]);
    assert.match(d.out(), /no FB scrubber is bound \(the scrub plugin is not loaded\): creating and resetting vGPUs will be refused/);
    assert.match(d.out(), /re-attached a running vGPU/);

    const c = await h.ctl('create', '--gpu', GPU, '--type', 'RTX6000-Ada-1Q');
    assert.equal(c.code, 3, c.err);
    assert.match(c.err, /no FB scrubber is bound/);
    assert.match(c.err, /hint: load the scrub plugin/);
    const r = await h.ctl('reset', v.id);
    assert.equal(r.code, 3, r.err);
    assert.match(r.err, /refusing to reset vGPU/);
    const l = (JSON.parse((await h.ctl('list', '--json')).out) as { vgpus: Vgpu[] }).vgpus;
    assert.deepEqual(l.map((x) => x.id), [v.id], 'nothing was made');
    assert.equal((await h.ctl('destroy', v.id)).code, 0, 'a destroy still goes ahead (the next create scrubs)');
  });
});
