/**
 * The destination's ledger of incoming migrations (plugins/migration/incoming-ledger.ts): entries are on disk
 * before add() resolves, recover() destroys exactly the vGPUs named by UUID, keeps entries of GPUs this run does
 * not manage and of vGPUs it could not destroy, and a damaged file is set aside without destroying anything.
 * (The kill -9 of a real destination daemon mid-migration is in test/e2e/migrate-daemons.test.ts.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ErrorCode, VgpuError } from '../../../core/contracts/exceptions.js';
import type { VgpuInfo, VgpuService } from '../../../core/contracts/vgpu-service.js';
import { MemoryLogger } from '../../../core/logging/memory-logger.js';
import { IncomingLedger, INCOMING_LEDGER_FILE } from '../../../plugins/migration/incoming-ledger.js';

function fakeService(vgpus: Array<Pick<VgpuInfo, 'id' | 'gpu' | 'uuid'>>, o: { gpus?: string[]; failDestroy?: string } = {}) {
  const destroyed: string[] = [];
  const svc = {
    gpus: () => (o.gpus ?? ['0000:42:00.0']).map((bdf) => ({ bdf })),
    list: (f?: { gpu?: string }) => vgpus.filter((v) => f?.gpu === undefined || v.gpu === f.gpu),
    destroy: async (id: string) => {
      if (id === o.failDestroy) throw new VgpuError(ErrorCode.DestroyStep, 'injected', { hint: 'test' });
      destroyed.push(id);
    },
  } as unknown as VgpuService;
  return { svc, destroyed };
}

test('entries are on disk when add() resolves; remove() takes them out', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vgpud-ledger-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const l = IncomingLedger.inStateDir(join(dir, 'state'), new MemoryLogger());
  const uuid = await l.add({ gpu: '0000:42:00.0', typeId: 941 });
  assert.match(uuid, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  const onDisk = (): Array<{ uuid: string }> => (JSON.parse(readFileSync(join(dir, 'state', INCOMING_LEDGER_FILE), 'utf8')) as { incoming: Array<{ uuid: string }> }).incoming;
  assert.deepEqual(onDisk().map((e) => e.uuid), [uuid]);
  const other = await l.add({ gpu: '0000:42:00.0', typeId: 949 });
  await l.remove(uuid);
  assert.deepEqual(onDisk().map((e) => e.uuid), [other]);
  assert.deepEqual(readdirSync(join(dir, 'state')), [INCOMING_LEDGER_FILE], 'no temp file left behind');
});

test('recover() destroys the vGPUs named by UUID and keeps what it cannot settle', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vgpud-ledger-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const log = new MemoryLogger();
  const before = IncomingLedger.inStateDir(dir, log);
  const u1 = await before.add({ gpu: '0000:42:00.0', typeId: 941 }); // its vGPU was adopted: destroy it
  const u2 = await before.add({ gpu: '0000:42:00.0', typeId: 941 }); // its create never finished: nothing to do
  const u3 = await before.add({ gpu: '0000:43:00.0', typeId: 941 }); // a GPU not managed now: keep for later
  const u4 = await before.add({ gpu: '0000:42:00.0', typeId: 941 }); // destroy fails: keep, try again next start
  void u2;
  const { svc, destroyed } = fakeService([
    { id: 'vgpu-1', gpu: '0000:42:00.0', uuid: u1 },
    { id: 'vgpu-2', gpu: '0000:42:00.0', uuid: '00000000-0000-4000-8000-000000000000' }, // someone else's: untouched
    { id: 'vgpu-4', gpu: '0000:42:00.0', uuid: u4 },
  ], { failDestroy: 'vgpu-4' });
  const after = IncomingLedger.inStateDir(dir, log); // a fresh process
  const r = await after.recover(svc);
  assert.deepEqual(destroyed, ['vgpu-1']);
  assert.deepEqual(r, { destroyed: ['vgpu-1'], kept: 2 });
  assert.deepEqual(after.list().map((e) => e.uuid).sort(), [u3, u4].sort());
  assert.ok(log.lines.some((l) => l.level === 'warn' && /interrupted incoming migration left behind/.test(l.message)));
});

test('a damaged ledger is set aside and nothing is destroyed on its word', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vgpud-ledger-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, INCOMING_LEDGER_FILE), '{"incoming": [ {"uuid": ');
  const log = new MemoryLogger();
  const { svc, destroyed } = fakeService([{ id: 'vgpu-1', gpu: '0000:42:00.0', uuid: 'x' }]);
  const r = await IncomingLedger.inStateDir(dir, log).recover(svc);
  assert.deepEqual(r, { destroyed: [], kept: 0 });
  assert.deepEqual(destroyed, []);
  assert.equal(existsSync(join(dir, INCOMING_LEDGER_FILE)), false);
  assert.ok(readdirSync(dir).some((f) => f.startsWith(`${INCOMING_LEDGER_FILE}.damaged-`)));
  assert.ok(log.lines.some((l) => l.level === 'error' && /ledger is damaged/.test(l.message)));
});
