import { afterEach, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EventBusImpl } from '../../../core/event-bus.js';
import { MemoryLogger } from '../../../core/logging/memory-logger.js';
import { attachJournalRecorder } from '../../../core/state/journal-recorder.js';
import { reconcile } from '../../../core/state/reconcile.js';
import { recordFromInfo, StateJournal, type JournalRecord } from '../../../core/state/state-journal.js';
import { FAKE_GPU, FakeVgpuService } from '../api/fake-vgpu-service.js';

const rec = (id: string, state: JournalRecord['state'], extra: Partial<JournalRecord> = {}): JournalRecord => ({
  id, gpu: FAKE_GPU, vf: 3, typeId: 2, typeName: 'NVIDIA RTX6000-Ada-8Q', state,
  fb: { offset: (1n << 40n).toString(), size: (8n << 30n).toString() }, chids: { offset: 2048, count: 64 },
  createdAt: 1000, updatedAt: 1000, ...extra,
});

describe('StateJournal', () => {
  let dir: string;
  beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'vgpud-journal-')); });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('reloads every record and transition exactly, 64-bit offsets included', async () => {
    const j = new StateJournal(dir);
    await j.open();
    await j.put(rec('a', 'creating'));
    await j.put(rec('b', 'ready', { vf: 4, createdAt: 2000 }));
    await j.transition('a', 'ready', 5000);
    await j.remove('b');
    const again = new StateJournal(dir);
    await again.open();
    assert.deepEqual(again.entries(), [rec('a', 'ready', { updatedAt: 5000 })]);
  });

  it('ignores (and removes) a torn temp file: the record it would have replaced stays intact', async () => {
    const j = new StateJournal(dir);
    await j.open();
    await j.put(rec('a', 'ready'));
    // What a crash between write and rename leaves behind: a half-written temp next to the good record.
    writeFileSync(join(dir, '.vgpu-a.json.999.tmp'), '{"version":1,"id":"a","state":"stop');
    const logger = new MemoryLogger();
    const again = new StateJournal(dir, logger);
    await again.open();
    assert.deepEqual(again.entries(), [rec('a', 'ready')]);
    assert.deepEqual(readdirSync(dir), ['vgpu-a.json']);
    assert.equal(logger.at('warn').length, 1);
  });

  it('skips a record file that is not valid and says so', async () => {
    writeFileSync(join(dir, 'vgpu-x.json'), '{"nope":1}');
    const logger = new MemoryLogger();
    const j = new StateJournal(dir, logger);
    await j.open();
    assert.deepEqual(j.entries(), []);
    assert.match(logger.at('error')[0]!.message, /unreadable journal record/);
  });

  it('keeps the last of rapid transitions of one vGPU', async () => {
    const j = new StateJournal(dir);
    await j.open();
    await j.put(rec('a', 'creating'));
    const writes = (['ready', 'stopping', 'failed'] as const).map((s, i) => j.transition('a', s, 10 + i));
    await Promise.all(writes);
    const again = new StateJournal(dir);
    await again.open();
    assert.equal(again.get('a')!.state, 'failed');
  });

  it('records the manager\'s transitions from bus events', async () => {
    const logger = new MemoryLogger();
    const bus = new EventBusImpl(logger);
    const svc = new FakeVgpuService({ bus });
    const j = new StateJournal(dir);
    await j.open();
    attachJournalRecorder(j, bus, svc, logger);
    const v = await svc.create({ gpu: FAKE_GPU, type: '8Q' });
    await j.flush();
    const again = new StateJournal(dir);
    await again.open();
    assert.deepEqual(again.entries().map((r) => [r.id, r.state, r.vf, r.typeId]), [[v.id, 'ready', v.vf, v.typeId]]);
    await svc.destroy(v.id);
    await j.flush();
    assert.deepEqual(readdirSync(dir), []);
  });
});

describe('reconcile', () => {
  let dir: string;
  beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'vgpud-reconcile-')); });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('re-creates ready vGPUs on their VF with their type, rolls back half-way ones, keeps live ones', async () => {
    const svc = new FakeVgpuService();
    svc.policy = 'heterogeneous';
    const live = await svc.create({ gpu: FAKE_GPU, type: '4Q', vf: 0 });
    const halfWay = await svc.create({ gpu: FAKE_GPU, type: '4Q', vf: 1 });
    const j = new StateJournal(dir);
    await j.open();
    await j.put(recordFromInfo(live));
    await j.put({ ...recordFromInfo(halfWay), state: 'creating' });
    await j.put(rec('gone', 'ready', { vf: 5 }));
    await j.put(rec('old', 'destroyed', { vf: 6 }));
    const r = await reconcile(j, svc);
    assert.deepEqual(r.kept, [live.id]);
    assert.deepEqual(r.rolledBack, [halfWay.id]);
    assert.deepEqual(r.dropped, ['old']);
    assert.equal(r.recreated.length, 1);
    const remade = svc.get(r.recreated[0]!.to);
    assert.deepEqual([remade.vf, remade.typeId], [5, 2]);
    assert.deepEqual(svc.list().map((v) => v.vf).sort(), [0, 5]);
    assert.deepEqual(j.entries().map((e) => e.id).sort(), [live.id, remade.id].sort());
  });
});
