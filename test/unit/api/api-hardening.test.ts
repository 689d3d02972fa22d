// What a hostile client found (issue 16, defects 1, 3, 6 and 8), each replayed against the API: every answer is
// the API's own {"error":{…}} shape with the right status, and nothing runs long or gets half-made.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { EventBusImpl } from '../../../core/event-bus.js';
import { MemoryLogger } from '../../../core/logging/memory-logger.js';
import { buildApiApp, type ApiApp } from '../../../plugins/api/build-api-app.js';
import { FAKE_GPU, FakeVgpuService, type FakeServiceOptions } from './fake-vgpu-service.js';

async function setup(opts: FakeServiceOptions = {}): Promise<{ api: ApiApp; svc: FakeVgpuService }> {
  const logger = new MemoryLogger();
  const svc = new FakeVgpuService({ bus: new EventBusImpl(logger), ...opts });
  return { api: await buildApiApp({ service: svc, bus: new EventBusImpl(logger), logger }), svc };
}

const layout = (types: string): string => `version: v1\nvgpu-configs:\n  a:\n    - device-filter: "0x26B110DE"\n      devices: all\n      vgpu-devices: {${types}}\n`;

describe('hostile requests', () => {
  it('a count of 1e15 is a 400 naming the max, for apply, dry-run and assert alike, and nothing is created', async () => {
    const { api, svc } = await setup();
    for (const [url, extra] of [['/v1/apply', {}], ['/v1/apply', { dryRun: true }], ['/v1/assert', {}]] as const) {
      for (const l of [layout('RTX6000-Ada-4Q: 1e15'), { version: 'v1', 'vgpu-configs': { a: [{ devices: 'all', 'vgpu-devices': { 'RTX6000-Ada-4Q': 1e15 } }] } }]) {
        const r = await api.app.inject({ method: 'POST', url, payload: { layout: l, ...extra } });
        assert.equal(r.statusCode, 400, `${url} ${r.body}`);
        assert.match(r.json().error.message, /at most 12 fit on one GPU/);
        assert.equal(r.json().error.details.maxInstances, 12);
      }
    }
    // 13 × 4Q (max 12) as well: refused up front, not after 12 creates and a rollback.
    const r13 = await api.app.inject({ method: 'POST', url: '/v1/apply', payload: { layout: layout('RTX6000-Ada-4Q: 13') } });
    assert.equal(r13.statusCode, 400);
    assert.equal(svc.createCalls, 0);
    await api.app.close();
  });

  it('a create count above the mixed-size maximum of a GPU in mixed-size mode is a 400 naming the mode, both maxima and the way out', async () => {
    const { api, svc } = await setup();
    svc.setPolicy(FAKE_GPU, 'heterogeneous');
    const r = await api.app.inject({ method: 'POST', url: '/v1/vgpus', payload: { gpu: FAKE_GPU, type: 'RTX6000-Ada-8Q', count: 5 } });
    assert.equal(r.statusCode, 400, r.body);
    const e = r.json().error;
    assert.match(e.message, /5 × RTX6000-Ada-8Q asked; at most 4 fit on one GPU \(the type's maximum in mixed-size \(heterogeneous\) mode; equal-size mode allows 6\)/);
    assert.match(e.hint, /equal-size mode \(vgpuctl policy .* homogeneous, while it has no vGPUs\) for up to 6/);
    assert.deepEqual([e.details.maxInstances, e.details.mode], [4, 'mixed-size']);
    assert.equal(svc.createCalls, 0);
    // In equal-size mode the same request passes the maximum (6) and is created.
    svc.setPolicy(FAKE_GPU, 'homogeneous');
    const ok = await api.app.inject({ method: 'POST', url: '/v1/vgpus', payload: { gpu: FAKE_GPU, type: 'RTX6000-Ada-8Q', count: 5 } });
    assert.equal(ok.statusCode, 201, ok.body);
    await api.app.close();
  });

  it('"config": "constructor" (and other prototype names) is an unknown config: 404', async () => {
    const { api } = await setup();
    const two = `${layout('RTX6000-Ada-8Q: 1')}  b:\n    - {devices: all, vgpu-devices: {}}\n`;
    for (const config of ['constructor', 'hasOwnProperty', '__proto__', 'valueOf']) {
      for (const url of ['/v1/apply', '/v1/assert']) {
        const r = await api.app.inject({ method: 'POST', url, payload: { layout: two, config } });
        assert.equal(r.statusCode, 404, `${url} ${config}: ${r.body}`);
        assert.equal(r.json().error.code, 'VGPU_ENOENT');
        assert.match(r.json().error.hint, /use one of: a, b/);
      }
    }
    await api.app.close();
  });

  it('a body over 1 MiB is a 413 naming the limit; another media type a 415; bad JSON a 400', async () => {
    const { api } = await setup();
    const big = await api.app.inject({
      method: 'POST', url: '/v1/apply', headers: { 'content-type': 'application/json' }, payload: JSON.stringify({ layout: 'x'.repeat(2 * 1024 * 1024) }),
    });
    assert.equal(big.statusCode, 413);
    assert.equal(big.json().error.code, 'VGPU_E2BIG');
    assert.match(big.json().error.message, /larger than the 1 MiB limit/);
    const xml = await api.app.inject({ method: 'POST', url: '/v1/vgpus', headers: { 'content-type': 'application/xml' }, payload: '<gpu/>' });
    assert.equal(xml.statusCode, 415);
    assert.equal(xml.json().error.code, 'VGPU_EMEDIATYPE');
    // text/plain has a parser (the VF ABI takes it), but a JSON route still refuses it as the wrong media type.
    const text = await api.app.inject({ method: 'POST', url: '/v1/vgpus', headers: { 'content-type': 'text/plain' }, payload: 'gpu=0' });
    assert.equal(text.statusCode, 415);
    const bad = await api.app.inject({ method: 'POST', url: '/v1/apply', headers: { 'content-type': 'application/json' }, payload: '{"layout":' });
    assert.equal(bad.statusCode, 400);
    assert.equal(bad.json().error.code, 'VGPU_EINVAL');
    await api.app.close();
  });

  it('an id over 100 characters gets the API\'s error shape (414), not the router\'s', async () => {
    const { api } = await setup();
    for (const url of [`/v1/vgpus/${'a'.repeat(150)}`, `/v1/requests/${'r'.repeat(101)}`]) {
      const r = await api.app.inject({ url });
      assert.equal(r.statusCode, 414, r.body);
      assert.equal(r.json().error.code, 'VGPU_EINVAL');
      assert.match(r.json().error.message, /longer than 100 characters/);
      assert.equal(typeof r.json().error.hint, 'string');
    }
    await api.app.close();
  });

  it('a 20,000-key layout is refused (413) without ever reaching the YAML parser; a JSON one by the body bounds', async () => {
    const { api } = await setup();
    const keys = Array.from({ length: 20_000 }, (_, i) => `        T${i}-1Q: 1`).join('\n');
    const r = await api.app.inject({ method: 'POST', url: '/v1/apply', payload: { layout: `${layout('').replace('{}', '')}${keys}\n`, dryRun: true } });
    assert.equal(r.statusCode, 413, r.body);
    assert.match(r.json().error.message, /limit: 8192 keys/);
    assert.equal(api.layouts.workerJobs, 0);
    const obj = { version: 'v1', 'vgpu-configs': { a: [{ devices: 'all', 'vgpu-devices': Object.fromEntries(Array.from({ length: 20_000 }, (_, i) => [`T${i}-1Q`, 1])) }] } };
    const j = await api.app.inject({ method: 'POST', url: '/v1/apply', payload: { layout: obj, dryRun: true } });
    assert.equal(j.statusCode, 413, j.body);
    assert.match(j.json().error.message, /keys per map/);
    await api.app.close();
  });

  it('GET /v1/status answers while an apply is in flight: one request never holds the API', async () => {
    let release!: () => void;
    const held = new Promise<void>((r) => { release = r; });
    let entered!: () => void;
    const inCreate = new Promise<void>((r) => { entered = r; });
    const { api, svc } = await setup({ gate: () => { entered(); return held; } });
    const apply = api.app.inject({ method: 'POST', url: '/v1/apply', payload: { layout: layout('RTX6000-Ada-8Q: 2') } });
    let applyDone = false;
    void apply.then(() => { applyDone = true; });
    await inCreate; // the apply's first create is running (its YAML went through the parser worker)
    const status = await api.app.inject({ url: '/v1/status' });
    assert.equal(status.statusCode, 200);
    assert.equal(status.json().vgpus.byState.creating, 1);
    assert.equal(applyDone, false);
    release();
    const done = await apply;
    assert.equal(done.statusCode, 200, done.body);
    assert.equal(svc.list().length, 2);
    await api.app.close();
  });
});
