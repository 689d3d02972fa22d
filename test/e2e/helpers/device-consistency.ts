/**
 * Checks that the daemon, the journal and the simulated device agree, judged by the device itself: RM clients and
 * plugin tasks alive in the simulated GSP-RM (the simulator's test controls), the vGPU journal files, and what
 * `vgpuctl list` says.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Harness } from './daemon-harness.js';

export interface ListedVgpu { id: string; vf: number; gfid: number; typeId: number; typeName: string; state: string; requestId?: string }

export async function listVgpus(h: Harness): Promise<ListedVgpu[]> {
  const r = await h.ctl('list', '--json');
  assert.equal(r.code, 0, r.err);
  return (JSON.parse(r.out) as { vgpus: ListedVgpu[] }).vgpus;
}

/** `id:state` of every vGPU record in the journal. */
export function journalIds(stateDir: string): string[] {
  return readdirSync(stateDir).filter((f) => /^vgpu-.*\.json$/.test(f))
    .map((f) => JSON.parse(readFileSync(join(stateDir, f), 'utf8')) as { id: string; state: string })
    .map((r) => `${r.id}:${r.state}`).sort();
}

/** Every vGPU ready, journal = live vGPUs, RM clients = manager's + one per vGPU, plugin tasks exactly on their gfids. */
export async function assertConsistent(h: Harness, baseClients: number, what: string): Promise<ListedVgpu[]> {
  const vgpus = await listVgpus(h);
  for (const v of vgpus) assert.equal(v.state, 'ready', `${what}: ${v.id} is ${v.state}`);
  assert.deepEqual(journalIds(h.state), vgpus.map((v) => `${v.id}:ready`).sort(), `${what}: journal = live vGPUs`);
  assert.equal(await h.sim.controls.rmClients(), baseClients + vgpus.length, `${what}: RM clients = manager + one per vGPU`);
  const live = new Set(vgpus.map((v) => v.gfid));
  for (let gfid = 1; gfid <= 32; gfid++) {
    const t = await h.sim.controls.pluginTask(gfid);
    assert.equal(t === 'running', live.has(gfid), `${what}: plugin task of gfid ${gfid} is ${t}`);
  }
  return vgpus;
}
