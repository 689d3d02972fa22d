// The sysfs backend's host VF journal on files: records and type catalogues survive a reopen exactly, a removed
// record stays removed, torn temp files go, and a file someone else wrote is ignored rather than trusted.
import { afterEach, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { HostVfRecord } from '../../../core/contracts/host-vf-journal.js';
import { MemoryLogger } from '../../../core/logging/memory-logger.js';
import { FileHostVfJournal } from '../../../plugins/state/file-host-vf-journal.js';

const rec = (id: string, vf: number, state: HostVfRecord['state'] = 'set'): HostVfRecord => ({
  id, gpu: '0000:41:00.0', vf, vfBdf: `0000:41:00.${4 + vf}`, typeId: 949, typeName: 'NVIDIA RTX6000-Ada-24Q', state,
  requestId: 'ctl-1', createdAt: 100 + vf, updatedAt: 200 + vf,
});

describe('FileHostVfJournal', () => {
  let dir: string;
  beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'vgpud-hostvfs-')); });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('reloads records and catalogues exactly; removes stay removed; torn temp files go; foreign files are ignored', async () => {
    const j = new FileHostVfJournal(join(dir, 'host-vfs'));
    await j.open();
    await j.put(rec('vgpu-1', 0));
    await j.put({ ...rec('vgpu-2', 1, 'setting'), adopted: true });
    await j.put(rec('vgpu-3', 2));
    await j.remove('vgpu-3');
    await j.putCatalogue({ gpu: '0000:41:00.0', types: [{ id: 949, name: 'NVIDIA RTX6000-Ada-24Q' }], updatedAt: 5 });
    await j.flush();
    writeFileSync(join(dir, 'host-vfs', `.vf-vgpu-9.json.${process.pid}.tmp`), '{"vers');
    writeFileSync(join(dir, 'host-vfs', 'vf-vgpu-8.json'), '{"version":1,"id":"vgpu-8"}');
    const log = new MemoryLogger();
    const again = new FileHostVfJournal(join(dir, 'host-vfs'), log);
    await again.open();
    assert.deepEqual(again.records(), [rec('vgpu-1', 0), { ...rec('vgpu-2', 1, 'setting'), adopted: true }]);
    assert.deepEqual(again.catalogue('0000:41:00.0'), { gpu: '0000:41:00.0', types: [{ id: 949, name: 'NVIDIA RTX6000-Ada-24Q' }], updatedAt: 5 });
    assert.ok(log.lines.some((l) => l.level === 'error' && /unreadable/.test(l.message)), 'the foreign record is reported');
    assert.deepEqual(readdirSync(join(dir, 'host-vfs')).sort(), ['types-0000:41:00.0.json', 'vf-vgpu-1.json', 'vf-vgpu-2.json', 'vf-vgpu-8.json']);
  });

  it('refuses to be written before it is open, and an id that cannot be a file name', async () => {
    const j = new FileHostVfJournal(join(dir, 'host-vfs'));
    assert.throws(() => j.put(rec('vgpu-1', 0)), /not open/);
    await j.open();
    assert.throws(() => j.put(rec('../x', 0)), /file name/);
  });
});
