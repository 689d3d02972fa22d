import { afterEach, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { JournalVgpu } from '../../../core/contracts/vgpu-journal.js';
import { FileVgpuJournal } from '../../../plugins/state/file-vgpu-journal.js';

const rec = (id: string, extra: Partial<JournalVgpu> = {}): JournalVgpu => ({
  id, gpu: '0000:41:00.0', vf: 3, typeId: 949, typeName: 'NVIDIA RTX6000-Ada-24Q', state: 'creating', placementId: 12,
  autoSelected: true, uuid: '0123456789abcdef0123456789abcdef', createdAt: 1000, updatedAt: 1000, ...extra,
});

describe('FileVgpuJournal', () => {
  let dir: string;
  beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'vgpud-journal-')); });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('reloads vGPU and GPU records exactly, 64-bit offsets and RM handles included', async () => {
    const j = new FileVgpuJournal(dir);
    await j.open();
    const ready = rec('vgpu-1', {
      state: 'ready', chids: { offset: 64, count: 64 }, guestFb: { offset: 1n << 40n, size: 24n << 30n },
      heap: { offset: 0n, size: 128n << 20n }, clientHandle: 0xc2000005, client: { hClient: 0xc2000005, hDevice: 0xde000005, hSubdevice: 0x5d000005 }, pluginTask: true,
    });
    await j.putVgpu(rec('vgpu-2'));
    await j.putVgpu(ready);
    await j.removeVgpu('vgpu-2');
    await j.putGpu({ bdf: '0000:41:00.0', managerClients: [0xc2000001], selections: [{ vf: 3, typeId: 949, placementId: 12 }], updatedAt: 5 });
    const again = new FileVgpuJournal(dir);
    await again.open();
    assert.deepEqual(again.vgpus(), [ready]);
    assert.deepEqual(again.gpu('0000:41:00.0')?.selections, [{ vf: 3, typeId: 949, placementId: 12 }]);
  });

  it('never hands out a sequence number twice, across reopen', async () => {
    const j = new FileVgpuJournal(dir);
    await j.open();
    const [a, b] = await Promise.all([j.reserve('vgpu-id', 10), j.reserve('vgpu-id', 10)]);
    assert.notEqual(a, b);
    const again = new FileVgpuJournal(dir);
    await again.open();
    assert.ok((await again.reserve('vgpu-id', 1)) >= Math.max(a, b) + 10);
  });

  it('removes a torn temp file and keeps the record it would have replaced', async () => {
    const j = new FileVgpuJournal(dir);
    await j.open();
    await j.putVgpu(rec('vgpu-1'));
    writeFileSync(join(dir, '.vgpu-vgpu-1.json.999.tmp'), '{"version":2,"id":"vgpu-1","sta');
    const again = new FileVgpuJournal(dir);
    await again.open();
    assert.deepEqual(again.vgpus(), [rec('vgpu-1')]);
    assert.equal(readdirSync(dir).some((f) => f.endsWith('.tmp')), false);
  });
});
