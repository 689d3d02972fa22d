/**
 * All or none across kill -9 (issue 16 defect 4), end to end: the REAL vgpud and vgpuctl on a process-mode
 * simulated RTX 6000 Ada. A multi-step request is interrupted by SIGKILL at several points (chosen by the
 * daemon's own bus events, never by time), the daemon is restarted, and then:
 * - `create --count 8` is rolled back entirely: none of its vGPUs remain (also those whose ids the client never
 *   saw), nothing leaked in the device, and `vgpuctl request ID` says it was rolled back by the restart;
 * - an apply from 4×4Q to 4×8Q is finished: the GPU holds exactly 4×8Q, `assert` passes, and the request is done.
 */
import 'reflect-metadata';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createHarness, GPU, type Harness } from './helpers/daemon-harness.js';
import { assertConsistent, listVgpus } from './helpers/device-consistency.js';

type BusEvent = { event: string; data: Record<string, unknown> };

describe('requests survive kill -9 as a whole (real processes)', () => {
  let h: Harness;
  let baseClients = 0;
  let layout = '';

  /** Run `action`, SIGKILL the daemon at the `n`-th event that matches, wait for both, restart. */
  async function killAt(n: number, match: (e: BusEvent) => boolean, action: () => Promise<{ code: number; err: string }>): Promise<{ code: number; err: string }> {
    let seen = 0;
    const w = await h.waitEvent((e) => match(e) && ++seen === n, 120_000);
    await w.ready;
    const pending = action();
    await w.event;
    h.daemon!.proc.kill('SIGKILL');
    await h.daemon!.exited;
    const r = await pending;
    await h.start();
    return r;
  }

  const request = async (id: string): Promise<{ state: string; recovered?: { action: string; note: string }; result?: { created: string[] } }> => {
    const r = await h.ctl('request', id, '--json');
    assert.equal(r.code, 0, r.err);
    return (JSON.parse(r.out) as { request: { state: string; recovered?: { action: string; note: string } } }).request;
  };

  before(async () => {
    h = await createHarness('vgpud-e2e-req-');
    await h.start();
    baseClients = await h.sim.controls.rmClients();
    layout = join(h.dir, 'layouts.yaml');
    writeFileSync(layout, [
      'version: v1', 'vgpu-configs:',
      '  four-4q:', '    - device-filter: "0x26B110DE"', '      devices: all', '      vgpu-devices: {RTX6000-Ada-4Q: 4}',
      '  four-8q:', '    - device-filter: "0x26B110DE"', '      devices: all', '      vgpu-devices: {RTX6000-Ada-8Q: 4}', '',
    ].join('\n'));
  });
  after(async () => { await h?.close(); });

  const points: [string, number, (e: BusEvent) => boolean][] = [
    ['after its first vGPU is ready', 1, (e) => e.event === 'vgpu:state' && e.data.to === 'ready'],
    ['in the middle of its third vGPU (bootload)', 3, (e) => e.event === 'vgpu:step' && e.data.step === 'bootload' && e.data.phase === 'begin'],
  ];
  for (const [where, n, match] of points) {
    it(`create --count 8 killed ${where}: after the restart none of its vGPUs remain`, async () => {
      const id = `crash-create-${n}`;
      const r = await killAt(n, match, () => h.ctl('create', '--gpu', GPU, '--type', 'RTX6000-Ada-4Q', '--count', '8', '--request-id', id));
      assert.equal(r.code, 4, r.err);
      assert.match(r.err, new RegExp(`lost the connection to vgpud during request ${id}`));
      assert.deepEqual(await assertConsistent(h, baseClients, `create killed ${where}`), []);
      const rec = await request(id);
      assert.equal(rec.state, 'rolled-back');
      assert.equal(rec.recovered?.action, 'rolled-back');
      assert.match(h.daemon!.out(), /request interrupted by a restart/);
      const status = JSON.parse((await h.ctl('status', '--json')).out) as { requestRecovery?: { rolledBack: string[] } };
      assert.deepEqual(status.requestRecovery?.rolledBack, [id]);
    });
  }

  const applyPoints: [string, number, (e: BusEvent) => boolean][] = [
    ['after its second destroy', 2, (e) => e.event === 'vgpu:state' && e.data.to === 'destroyed'],
    ['after its first 8Q is ready', 1, (e) => e.event === 'vgpu:state' && e.data.to === 'ready'],
  ];
  for (const [where, n, match] of applyPoints) {
    it(`apply 4×4Q → 4×8Q killed ${where}: after the restart the GPU holds exactly 4×8Q`, async () => {
      const id = `crash-apply-${n}`;
      assert.equal((await h.ctl('apply', layout, '-c', 'four-4q')).code, 0);
      assert.equal((await assertConsistent(h, baseClients, 'before')).length, 4);
      const r = await killAt(n, match, () => h.ctl('apply', layout, '-c', 'four-8q', '--request-id', id));
      assert.equal(r.code, 4, r.err);
      const vgpus = await assertConsistent(h, baseClients, `apply killed ${where}`);
      assert.deepEqual(vgpus.map((v) => v.typeName).sort(), Array(4).fill('NVIDIA RTX6000-Ada-8Q'));
      assert.equal((await h.ctl('assert', layout, '-c', 'four-8q')).code, 0);
      const rec = await request(id);
      assert.equal(rec.state, 'done');
      assert.equal(rec.recovered?.action, 'finished');
      // Back to empty for the next case.
      for (const v of await listVgpus(h)) assert.equal((await h.ctl('destroy', v.id)).code, 0);
    });
  }
});
