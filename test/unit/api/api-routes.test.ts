import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { EventBusImpl } from '../../../core/event-bus.js';
import { MemoryLogger } from '../../../core/logging/memory-logger.js';
import { buildApiApp, type ApiApp } from '../../../plugins/api/build-api-app.js';
import { FAKE_GPU, FakeVgpuService } from './fake-vgpu-service.js';

const GiB = 1n << 30n;

async function setup(opts: { failCreateAt?: number } = {}): Promise<{ api: ApiApp; svc: FakeVgpuService; bus: EventBusImpl }> {
  const logger = new MemoryLogger();
  const bus = new EventBusImpl(logger);
  const svc = new FakeVgpuService({ bus, ...opts });
  const api = await buildApiApp({ service: svc, bus, logger });
  return { api, svc, bus };
}

describe('control API routes', () => {
  let api: ApiApp;
  let svc: FakeVgpuService;
  before(async () => ({ api, svc } = await setup()));
  after(async () => api.app.close());

  it('GET /v1/gpus prints FB sizes as exact decimal strings', async () => {
    const r = await api.app.inject({ method: 'GET', url: '/v1/gpus' });
    assert.equal(r.statusCode, 200);
    const gpu = r.json().gpus[0];
    assert.equal(gpu.bdf, FAKE_GPU);
    assert.equal(gpu.fb.total, (48n * GiB).toString());
  });

  it('creates two vGPUs in one request and lists them', async () => {
    const r = await api.app.inject({ method: 'POST', url: '/v1/vgpus', payload: { gpu: FAKE_GPU, type: 'RTX6000-Ada-24Q', count: 2 } });
    assert.equal(r.statusCode, 201, r.body);
    assert.deepEqual(r.json().vgpus.map((v: { typeName: string }) => v.typeName), ['NVIDIA RTX6000-Ada-24Q', 'NVIDIA RTX6000-Ada-24Q']);
    const l = await api.app.inject({ url: '/v1/vgpus' });
    assert.equal(l.json().vgpus.length, 2);
    const one = await api.app.inject({ url: `/v1/vgpus/${l.json().vgpus[0].id}` });
    assert.equal(one.json().vgpu.fb.size, (24n * GiB - 128n * (1n << 20n)).toString(), "the guest: the 24 GiB profile less its heap");
    assert.equal(one.json().vgpu.profileFbBytes, (24n * GiB).toString(), "the profile next to it");
  });

  it('types without ?all hides what cannot be created any more; ?all=1 shows the whole catalogue', async () => {
    const some = await api.app.inject({ url: `/v1/gpus/${FAKE_GPU}/types` });
    const all = await api.app.inject({ url: `/v1/gpus/${FAKE_GPU}/types?all=1` });
    assert.equal(some.json().types.length, 0); // 2 × 24Q fill the 48 GiB GPU
    assert.equal(all.json().types.length, 4);
  });

  it('refuses to destroy an in-use vGPU without force (409) and destroys it with ?force=1', async () => {
    const [v] = svc.list();
    svc.vgpus.get(v!.id)!.inUse = true;
    const r = await api.app.inject({ method: 'DELETE', url: `/v1/vgpus/${v!.id}` });
    assert.equal(r.statusCode, 409);
    assert.equal(r.json().error.code, 'VGPU_EBUSY');
    assert.match(r.json().error.hint, /force/);
    const f = await api.app.inject({ method: 'DELETE', url: `/v1/vgpus/${v!.id}?force=1` });
    assert.equal(f.statusCode, 200);
    assert.equal(svc.vgpus.has(v!.id), false);
  });

  it('answers an unknown vGPU with 404 and a hint', async () => {
    const r = await api.app.inject({ url: '/v1/vgpus/nope' });
    assert.equal(r.statusCode, 404);
    assert.equal(r.json().error.code, 'VGPU_ENOENT');
    assert.ok(r.json().error.hint.length > 0);
  });

  it('rejects bad bodies with 400 naming the field, and unknown keys', async () => {
    const bad = await api.app.inject({ method: 'POST', url: '/v1/vgpus', payload: { gpu: 'gpu0', type: '24Q' } });
    assert.equal(bad.statusCode, 400);
    assert.equal(bad.json().error.code, 'VGPU_EINVAL');
    assert.match(bad.json().error.message, /gpu/);
    const extra = await api.app.inject({ method: 'POST', url: '/v1/vgpus', payload: { gpu: FAKE_GPU, type: '24Q', colour: 'red' } });
    assert.equal(extra.statusCode, 400);
    assert.match(extra.json().error.message, /colour: unknown key/);
    const notJson = await api.app.inject({ method: 'POST', url: '/v1/vgpus', headers: { 'content-type': 'application/json' }, payload: '{' });
    assert.equal(notJson.statusCode, 400);
    assert.equal(notJson.json().error.code, 'VGPU_EINVAL');
  });

  it('an unknown route is a JSON 404', async () => {
    const r = await api.app.inject({ url: '/v2/gpus' });
    assert.equal(r.statusCode, 404);
    assert.match(r.json().error.message, /no route GET \/v2\/gpus/);
  });

  it('passes VF attribute text byte-exact both ways', async () => {
    const w = await api.app.inject({
      method: 'PUT', url: '/v1/vfs/0000:41:01.1/current_vgpu_type', headers: { 'content-type': 'text/plain' }, payload: '3\n',
    });
    assert.equal(w.statusCode, 204, w.body);
    assert.deepEqual(svc.lastVfWrite, { vfBdf: '0000:41:01.1', value: '3\n' });
    const r = await api.app.inject({ url: '/v1/vfs/0000:41:01.1/creatable_vgpu_types' });
    assert.equal(r.body, svc.readVfAttribute('0000:41:01.1', 'creatable_vgpu_types'));
    assert.match(String(r.headers['content-type']), /^text\/plain/);
    const bad = await api.app.inject({
      method: 'PUT', url: '/v1/vfs/0000:41:01.1/current_vgpu_type', headers: { 'content-type': 'text/plain' }, payload: 'x',
    });
    assert.equal(bad.statusCode, 400);
    const attr = await api.app.inject({ url: '/v1/vfs/0000:41:01.1/bogus' });
    assert.equal(attr.statusCode, 400);
    // NVIDIA's further attributes are names the API knows; a backend without them answers 404 (no such file).
    const extra = await api.app.inject({ url: '/v1/vfs/0000:41:01.1/vgpu_params' });
    assert.equal(extra.statusCode, 404, extra.body);
  });

  it('maps a plain Error to 500 VGPU_EINTERNAL', async () => {
    const orig = svc.gpus.bind(svc);
    svc.gpus = () => { throw new Error('boom'); };
    try {
      const r = await api.app.inject({ url: '/v1/gpus' });
      assert.equal(r.statusCode, 500);
      assert.equal(r.json().error.code, 'VGPU_EINTERNAL');
    } finally {
      svc.gpus = orig;
    }
  });
});

describe('POST /v1/vgpus with a count', () => {
  it('undoes the vGPUs it made when a later one fails, so the request changes nothing', async () => {
    const { api, svc } = await setup({ failCreateAt: 3 });
    const r = await api.app.inject({ method: 'POST', url: '/v1/vgpus', payload: { gpu: FAKE_GPU, type: '4Q', count: 3 } });
    assert.equal(r.statusCode, 409);
    assert.equal(r.json().error.code, 'VGPU_ENOSPC');
    assert.equal(r.json().error.details.undone.length, 2);
    assert.equal(svc.list().length, 0);
    await api.app.close();
  });
});

describe('policy, apply and assert', () => {
  it('sets the policy and refuses when vGPUs exist', async () => {
    const { api, svc } = await setup();
    const ok = await api.app.inject({ method: 'PUT', url: `/v1/gpus/${FAKE_GPU}/policy`, payload: { policy: 'heterogeneous' } });
    assert.equal(ok.statusCode, 200);
    assert.equal(svc.policy, 'heterogeneous');
    await svc.create({ gpu: FAKE_GPU, type: '4Q' });
    const no = await api.app.inject({ method: 'PUT', url: `/v1/gpus/${FAKE_GPU}/policy`, payload: { policy: 'homogeneous' } });
    assert.equal(no.statusCode, 409);
    assert.equal(no.json().error.code, 'VGPU_ESTATE');
    await api.app.close();
  });

  it('dry-run shows the plan without changing anything; apply makes it; assert then says ok', async () => {
    const { api, svc } = await setup();
    const layout = `version: v1\nvgpu-configs:\n  two:\n    - devices: all\n      vgpu-devices: {RTX6000-Ada-8Q: 2}\n`;
    const dry = await api.app.inject({ method: 'POST', url: '/v1/apply', payload: { layout, dryRun: true } });
    assert.equal(dry.statusCode, 200, dry.body);
    assert.equal(dry.json().plan.changes, 2);
    assert.equal(svc.list().length, 0);
    const before = await api.app.inject({ method: 'POST', url: '/v1/assert', payload: { layout } });
    assert.equal(before.json().ok, false);
    const ap = await api.app.inject({ method: 'POST', url: '/v1/apply', payload: { layout } });
    assert.equal(ap.json().applied, true);
    assert.equal(svc.list().length, 2);
    const afterAssert = await api.app.inject({ method: 'POST', url: '/v1/assert', payload: { layout } });
    assert.equal(afterAssert.json().ok, true);
    const bad = await api.app.inject({ method: 'POST', url: '/v1/apply', payload: { layout: 'version: v2\n' } });
    assert.equal(bad.statusCode, 400);
    assert.match(bad.json().error.message, /version/);
    await api.app.close();
  });
});

describe('NDJSON streams on a real socket', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vgpud-api-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  function openStream(socketPath: string, path: string): Promise<{ lines: AsyncIterator<string>; close: () => void }> {
    return new Promise((resolve, reject) => {
      const req = request({ socketPath, path }, (res) => {
        const rl = createInterface({ input: res });
        resolve({ lines: rl[Symbol.asyncIterator](), close: () => req.destroy() });
      });
      req.on('error', reject);
      req.end();
    });
  }

  it('/v1/events delivers vGPU state changes as they happen, and server close ends the stream', async () => {
    const { api, svc } = await setup();
    const sock = join(dir, 'events.sock');
    await api.app.listen({ path: sock });
    const s = await openStream(sock, '/v1/events');
    const first = JSON.parse((await s.lines.next()).value as string);
    assert.equal(first.event, 'stream:open');
    const made = await svc.create({ gpu: FAKE_GPU, type: '4Q' });
    const seen: { event: string; data: { vgpuId: string; to: string } }[] = [];
    while (seen.length < 2) seen.push(JSON.parse((await s.lines.next()).value as string));
    assert.deepEqual(seen.map((e) => [e.event, e.data.vgpuId, e.data.to]), [
      ['vgpu:state', made.id, 'creating'], ['vgpu:state', made.id, 'ready'],
    ]);
    assert.equal(api.streams.size, 1);
    await api.app.close();
    assert.equal((await s.lines.next()).done, true);
  });

  it('logs ?follow=1 sends the backlog then live lines of that vGPU only', async () => {
    const { api, svc, bus } = await setup();
    const sock = join(dir, 'logs.sock');
    await api.app.listen({ path: sock });
    const v = await svc.create({ gpu: FAKE_GPU, type: '4Q' });
    const s = await openStream(sock, `/v1/vgpus/${v.id}/logs?follow=1&lines=1`);
    assert.deepEqual(JSON.parse((await s.lines.next()).value as string), { line: `${v.id}: ready` });
    bus.emit('log:line', { gpu: FAKE_GPU, vgpuId: 'other', area: 'gsp', line: 'not mine' });
    bus.emit('log:line', { gpu: FAKE_GPU, vgpuId: v.id, area: 'gsp', line: 'mine' });
    assert.deepEqual(JSON.parse((await s.lines.next()).value as string), { line: 'mine', area: 'gsp' });
    s.close();
    await api.app.close();
  });
});
