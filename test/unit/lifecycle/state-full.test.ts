/**
 * A full state filesystem (issue 16, defect 8): a real tiny tmpfs holds the journal. A write that fails leaves no
 * temp file behind; a destroy that cannot journal its 'stopping' entry is refused with a typed error saying the
 * state dir is full, and the vGPU stays ready with everything it holds; a create that cannot journal its intent
 * makes nothing. Once space is freed, both go through.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { isVgpuError } from '../../../core/contracts/exceptions.js';
import { FileVgpuJournal } from '../../../plugins/state/file-vgpu-journal.js';
import { mountSmallTmpfs, type SmallFs } from '../../helpers/small-tmpfs.js';
import { TYPES, rig } from './lifecycle-rig.js';

const T4Q = TYPES[1]!;
const fs = mountSmallTmpfs(256);
const skip = typeof fs === 'string' ? fs : false;

describe('a full state filesystem', { skip }, () => {
  const small = fs as SmallFs;
  let journal: FileVgpuJournal;
  after(async () => {
    await journal?.flush();
    small.unmount();
  });
  before(async () => {
    journal = new FileVgpuJournal(small.dir);
    await journal.open();
  });

  const tempFiles = (): string[] => readdirSync(small.dir).filter((f) => f.endsWith('.tmp'));

  it('a journal write that hits ENOSPC rejects with VGPU_ESTATEFULL, leaves no temp file, and keeps the old record', async () => {
    await journal.putGpu({ bdf: '0000:99:00.0', managerClients: [1], selections: [], updatedAt: 1 });
    small.fill();
    try {
      await assert.rejects(journal.putGpu({ bdf: '0000:99:00.0', managerClients: [1, 2], selections: [], updatedAt: 2 }),
        (e) => isVgpuError(e, 'VGPU_ESTATEFULL') && e.message.includes(small.dir) && /free space/.test(e.hint));
      assert.deepEqual(tempFiles(), []);
      assert.deepEqual(journal.gpu('0000:99:00.0')?.managerClients, [1], 'the view is what the disk holds');
    } finally {
      small.unfill();
    }
  });

  it('destroy on a full state dir is refused (nothing done, the vGPU stays ready); create makes nothing; both work after space is freed', async () => {
    const r = await rig({ journal });
    const v = await r.lc.create(0, T4Q);
    const held = r.mock.books();
    small.fill();
    await assert.rejects(r.lc.destroy(v.id), (e) => isVgpuError(e, 'VGPU_ESTATEFULL') && new RegExp(`cannot destroy ${v.id}`).test(e.message));
    assert.equal(v.state, 'ready');
    assert.deepEqual(r.states(v.id).slice(-2), ['stopping', 'ready']);
    assert.deepEqual(r.mock.books(), held, 'the device and the host allocators hold exactly what they held');
    assert.deepEqual(r.tasks.running(), [v.gfid]);
    assert.equal(journal.vgpu(v.id)?.state, 'ready');
    // create: the intent write fails before any hardware step
    const c = r.lc.create(1, T4Q);
    await assert.rejects(c, (e) => isVgpuError(e, 'VGPU_ESTATEFULL') && /cannot create a vGPU on VF 1/.test(e.message));
    assert.deepEqual(r.mock.books(), held, 'the refused create made nothing');
    assert.equal(r.mgr.selectionOf(1), undefined);
    await journal.flush(); // the GPU record is written behind the create's back; wait for it to fail too
    assert.deepEqual(tempFiles(), []);
    small.unfill();
    await r.lc.destroy(v.id);
    assert.deepEqual(r.mock.books(), r.baseline);
    assert.equal(journal.vgpu(v.id), undefined);
    const w = await r.lc.create(1, T4Q);
    assert.equal(w.state, 'ready');
    await r.lc.destroy(w.id);
  });
});
