// Start-up recovery of requests a crash left running, over a fake VgpuService that holds what the lifecycle would
// have adopted (vGPUs carrying the request id) and a request journal holding what was on disk.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { RequestRecord } from '../../../core/contracts/request-journal.js';
import { MemoryLogger } from '../../../core/logging/memory-logger.js';
import { MemoryRequestJournal } from '../../../core/requests/memory-request-journal.js';
import { RequestServiceImpl } from '../../../core/requests/request-service.js';
import { FAKE_GPU, FakeVgpuService } from '../api/fake-vgpu-service.js';

const T4Q = 1;
const T8Q = 2;

function running(id: string, intent: RequestRecord['intent'], steps: RequestRecord['steps'] = [], state: RequestRecord['state'] = 'running'): RequestRecord {
  return { id, state, intent, steps, createdAt: 1, updatedAt: 1 };
}

describe('request recovery after a crash', () => {
  it('a create --count N is rolled back: exactly its vGPUs go, others stay; recovery runs once', async () => {
    const svc = new FakeVgpuService();
    const other = await svc.create({ gpu: FAKE_GPU, type: '8Q' });
    await svc.create({ gpu: FAKE_GPU, type: '8Q', requestId: 'c1' });
    await svc.create({ gpu: FAKE_GPU, type: '8Q', requestId: 'c1' });
    const journal = new MemoryRequestJournal();
    await journal.put(running('c1', { kind: 'create', gpu: FAKE_GPU, type: '8Q', count: 8 }));
    const requests = new RequestServiceImpl(svc, new MemoryLogger(), journal);
    const r = await requests.recover();
    assert.deepEqual(r, { finished: [], rolledBack: ['c1'], failed: [] });
    assert.deepEqual(svc.list().map((v) => v.id), [other.id]);
    const rec = requests.get('c1');
    assert.equal(rec.state, 'rolled-back');
    assert.equal(rec.recovered?.action, 'rolled-back');
    assert.match(rec.recovered!.note, /restarted during the request; rolled back: nothing of it remains/);
    assert.equal(await requests.recover(), r);
    assert.equal(svc.destroyCalls, 2);
  });

  it('an apply caught half-way is finished: the GPU ends in exactly the layout asked for', async () => {
    // Was 4 × 4Q, asked 4 × 8Q: the crash came after the four destroys and one create.
    const svc = new FakeVgpuService();
    await svc.create({ gpu: FAKE_GPU, type: '8Q', requestId: 'a1' });
    const journal = new MemoryRequestJournal();
    await journal.put(running('a1', { kind: 'apply', config: 'four-8q', force: false, desired: [{ gpu: FAKE_GPU, counts: [{ typeId: T8Q, count: 4 }] }] },
      [0, 1, 2, 3].map((vf) => ({ kind: 'destroy' as const, gpu: FAKE_GPU, typeId: T4Q, vgpu: `gone-${vf}`, vf, done: true }))));
    const requests = new RequestServiceImpl(svc, new MemoryLogger(), journal);
    assert.deepEqual(await requests.recover(), { finished: ['a1'], rolledBack: [], failed: [] });
    assert.deepEqual(svc.list().map((v) => `${v.typeId}:${v.requestId}`), Array(4).fill(`${T8Q}:a1`));
    const rec = requests.get('a1');
    assert.equal(rec.state, 'done');
    assert.equal(rec.recovered?.action, 'finished');
    assert.equal(rec.result?.created.length, 4);
    assert.deepEqual(rec.result?.destroyed, ['gone-0', 'gone-1', 'gone-2', 'gone-3']);
  });

  it('an apply that cannot be finished is rolled back to the layout it found', async () => {
    const svc = new FakeVgpuService({ failCreateAt: 2 }); // the finishing create fails
    await svc.create({ gpu: FAKE_GPU, type: '8Q', requestId: 'a2' });
    const journal = new MemoryRequestJournal();
    await journal.put(running('a2', { kind: 'apply', config: 'x', force: false, desired: [{ gpu: FAKE_GPU, counts: [{ typeId: T8Q, count: 2 }] }] },
      [{ kind: 'destroy', gpu: FAKE_GPU, typeId: T4Q, vgpu: 'old-4q', vf: 5, done: true }, { kind: 'create', gpu: FAKE_GPU, typeId: T8Q, done: false }]));
    const requests = new RequestServiceImpl(svc, new MemoryLogger(), journal);
    assert.deepEqual(await requests.recover(), { finished: [], rolledBack: ['a2'], failed: [] });
    // Its 8Q is gone, the 4Q it destroyed is back on its VF (a new vGPU: the old one's FB was scrubbed).
    assert.deepEqual(svc.list().map((v) => `${v.vf}:${v.typeId}`), [`5:${T4Q}`]);
    const rec = requests.get('a2');
    assert.equal(rec.state, 'rolled-back');
    assert.match(rec.recovered!.note, /finishing it failed .*; rolled back/);
  });

  it('a request caught while rolling back completes its rollback (it is not finished)', async () => {
    const svc = new FakeVgpuService();
    await svc.create({ gpu: FAKE_GPU, type: '8Q', requestId: 'a3' });
    const journal = new MemoryRequestJournal();
    await journal.put(running('a3', { kind: 'apply', config: 'x', force: false, desired: [{ gpu: FAKE_GPU, counts: [{ typeId: T8Q, count: 3 }] }] }, [], 'rolling-back'));
    const requests = new RequestServiceImpl(svc, new MemoryLogger(), journal);
    assert.deepEqual((await requests.recover()).rolledBack, ['a3']);
    assert.equal(svc.list().length, 0);
  });

  it('finished requests are left alone', async () => {
    const svc = new FakeVgpuService();
    await svc.create({ gpu: FAKE_GPU, type: '8Q', requestId: 'ok' });
    const journal = new MemoryRequestJournal();
    await journal.put({ ...running('ok', { kind: 'create', gpu: FAKE_GPU, type: '8Q', count: 1 }), state: 'done' });
    const requests = new RequestServiceImpl(svc, new MemoryLogger(), journal);
    assert.deepEqual(await requests.recover(), { finished: [], rolledBack: [], failed: [] });
    assert.equal(svc.list().length, 1);
  });
});
