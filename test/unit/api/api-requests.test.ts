// Multi-step requests over the API: each gets an id (the client's or the daemon's), GET /v1/requests/:id says
// what became of it, and a failed one leaves nothing behind and says so.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { EventBusImpl } from '../../../core/event-bus.js';
import { MemoryLogger } from '../../../core/logging/memory-logger.js';
import { buildApiApp, type ApiApp } from '../../../plugins/api/build-api-app.js';
import { FAKE_GPU, FakeVgpuService, type FakeServiceOptions } from './fake-vgpu-service.js';

async function setup(opts: FakeServiceOptions = {}): Promise<{ api: ApiApp; svc: FakeVgpuService }> {
  const logger = new MemoryLogger();
  const svc = new FakeVgpuService(opts);
  return { api: await buildApiApp({ service: svc, bus: new EventBusImpl(logger), logger }), svc };
}

describe('requests', () => {
  it('create --count 2 with the client\'s id: done, its vGPUs carry the id, and a reused id is a 409', async () => {
    const { api, svc } = await setup();
    const r = await api.app.inject({ method: 'POST', url: '/v1/vgpus', payload: { gpu: FAKE_GPU, type: '8Q', count: 2, requestId: 'batch-7' } });
    assert.equal(r.statusCode, 201, r.body);
    assert.deepEqual(r.json().request, { id: 'batch-7', state: 'done' });
    const ids = r.json().vgpus.map((v: { id: string }) => v.id) as string[];
    assert.deepEqual(svc.list().map((v) => v.requestId), ['batch-7', 'batch-7']);
    const q = await api.app.inject({ url: '/v1/requests/batch-7' });
    assert.equal(q.statusCode, 200);
    const rec = q.json().request;
    assert.equal(rec.state, 'done');
    assert.deepEqual(rec.result.created, ids);
    assert.deepEqual(rec.steps.map((s: { done: boolean; vgpu: string }) => [s.done, s.vgpu]), ids.map((id) => [true, id]));
    const again = await api.app.inject({ method: 'POST', url: '/v1/vgpus', payload: { gpu: FAKE_GPU, type: '8Q', requestId: 'batch-7' } });
    assert.equal(again.statusCode, 409);
    assert.match(again.json().error.hint, /vgpuctl request batch-7/);
    assert.equal(svc.list().length, 2);
    await api.app.close();
  });

  it('a failed request is rolled back, recorded with its error, and findable by the id in the error', async () => {
    const { api, svc } = await setup({ failCreateAt: 2 });
    const r = await api.app.inject({ method: 'POST', url: '/v1/vgpus', payload: { gpu: FAKE_GPU, type: '4Q', count: 3 } });
    assert.equal(r.statusCode, 409);
    const id = r.json().error.details.request as string;
    assert.match(id, /^req-[0-9a-f-]{36}$/);
    assert.equal(svc.list().length, 0);
    const rec = (await api.app.inject({ url: `/v1/requests/${id}` })).json().request;
    assert.equal(rec.state, 'rolled-back');
    assert.equal(rec.error.code, 'VGPU_ENOSPC');
    const list = (await api.app.inject({ url: '/v1/requests?limit=5' })).json().requests;
    assert.equal(list[0].id, id);
    await api.app.close();
  });

  it('an apply is one request with its destroys and creates as steps', async () => {
    const { api, svc } = await setup();
    await svc.create({ gpu: FAKE_GPU, type: '4Q' });
    const layout = 'version: v1\nvgpu-configs:\n  two:\n    - devices: [0]\n      vgpu-devices: {RTX6000-Ada-8Q: 2}\n';
    const r = await api.app.inject({ method: 'POST', url: '/v1/apply', payload: { layout, requestId: 'to-8q' } });
    assert.equal(r.statusCode, 200, r.body);
    assert.deepEqual(r.json().request, { id: 'to-8q', state: 'done' });
    const rec = (await api.app.inject({ url: '/v1/requests/to-8q' })).json().request;
    assert.deepEqual(rec.steps.map((s: { kind: string; done: boolean }) => `${s.kind}:${s.done}`), ['destroy:true', 'create:true', 'create:true']);
    assert.deepEqual(rec.intent.desired, [{ gpu: FAKE_GPU, counts: [{ typeId: 2, count: 2 }] }]);
    // Nothing to change: no request is made.
    const again = await api.app.inject({ method: 'POST', url: '/v1/apply', payload: { layout } });
    assert.equal(again.json().applied, false);
    assert.equal(again.json().request, undefined);
    await api.app.close();
  });

  it('an unknown request is a 404 that says it never started; a malformed id a 400', async () => {
    const { api } = await setup();
    const r = await api.app.inject({ url: '/v1/requests/never-sent' });
    assert.equal(r.statusCode, 404);
    assert.match(r.json().error.hint, /never started: nothing of it was done/);
    const bad = await api.app.inject({ method: 'POST', url: '/v1/vgpus', payload: { gpu: FAKE_GPU, type: '8Q', requestId: '../etc' } });
    assert.equal(bad.statusCode, 400);
    await api.app.close();
  });
});
