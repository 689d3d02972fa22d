// The request journal on files: records survive a reopen exactly, a vGPU record keeps its request id, torn temp
// files go, and old finished requests are pruned while running ones never are.
import { afterEach, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RequestRecord } from '../../../core/contracts/request-journal.js';
import { KEEP_FINISHED_REQUESTS } from '../../../core/requests/memory-request-journal.js';
import { FileRequestJournal } from '../../../plugins/state/file-request-journal.js';
import { FileVgpuJournal } from '../../../plugins/state/file-vgpu-journal.js';

const rec = (id: string, createdAt: number, state: RequestRecord['state'] = 'done'): RequestRecord => ({
  id, state, createdAt, updatedAt: createdAt,
  intent: { kind: 'apply', config: 'four-8q', force: false, desired: [{ gpu: '0000:41:00.0', counts: [{ typeId: 946, count: 4 }] }] },
  steps: [{ kind: 'destroy', gpu: '0000:41:00.0', typeId: 944, vgpu: 'vgpu-3', vf: 2, done: true }, { kind: 'create', gpu: '0000:41:00.0', typeId: 946, done: false }],
});

describe('FileRequestJournal', () => {
  let dir: string;
  beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'vgpud-requests-')); });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('reloads records exactly and drops a torn temp file', async () => {
    const j = new FileRequestJournal(join(dir, 'requests'));
    await j.open();
    const r = { ...rec('r-1', 10, 'running'), error: { code: 'VGPU_ENOSPC', message: 'no room', hint: 'less' } };
    await j.put(r);
    writeFileSync(join(dir, 'requests', `.req-r-2.json.${process.pid}.tmp`), '{"vers');
    const again = new FileRequestJournal(join(dir, 'requests'));
    await again.open();
    assert.deepEqual(again.list(), [r]);
    assert.deepEqual(readdirSync(join(dir, 'requests')), ['req-r-1.json']);
  });

  it('keeps the newest finished records and every running one', async () => {
    const keep = 5;
    const j = new FileRequestJournal(dir, undefined, keep);
    await j.open();
    await j.put(rec('old-running', 0, 'running'));
    for (let i = 1; i <= keep + 3; i++) await j.put(rec(`r-${i}`, i));
    await j.flush();
    const again = new FileRequestJournal(dir);
    await again.open();
    const ids = again.list().map((r) => r.id);
    assert.equal(ids.length, keep + 1);
    assert.ok(KEEP_FINISHED_REQUESTS >= 100, 'the daemon keeps enough finished requests to be asked about');
    assert.ok(ids.includes('old-running'));
    assert.ok(!ids.includes('r-1') && !ids.includes('r-3') && ids.includes('r-4'));
  });

  it('a vGPU journal record keeps the request id it was created by', async () => {
    const j = new FileVgpuJournal(dir);
    await j.open();
    await j.putVgpu({
      id: 'vgpu-1', gpu: '0000:41:00.0', vf: 0, typeId: 946, typeName: 'NVIDIA RTX6000-Ada-8Q', state: 'creating', placementId: 0,
      autoSelected: true, uuid: '0123456789abcdef0123456789abcdef', requestId: 'req-1', createdAt: 1, updatedAt: 1,
    });
    const again = new FileVgpuJournal(dir);
    await again.open();
    assert.equal(again.vgpu('vgpu-1')?.requestId, 'req-1');
  });
});
