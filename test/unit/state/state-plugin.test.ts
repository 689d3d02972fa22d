import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { VgpuJournal } from '../../../core/contracts/vgpu-journal.js';
import { TOKENS } from '../../../core/tokens.js';
import { createStatePlugin } from '../../../plugins/state/index.js';
import { createTestContainer } from '../../helpers/test-container.js';

test('the state plugin binds an open journal in api.stateDir and flushes it on stop; a restart reads it back', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'vgpud-state-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const config = { api: { stateDir: dir } };
  const tc = await createTestContainer({ plugins: [createStatePlugin()], config });
  const j = tc.container.get<VgpuJournal>(TOKENS.VgpuJournal);
  await j.putGpu({ bdf: '0000:41:00.0', managerClients: [7], selections: [{ vf: 1, typeId: 941, placementId: 3 }], updatedAt: 1 });
  await tc.stop();
  assert.ok((await readdir(dir)).some((f) => f.startsWith('gpu-')), 'the GPU record is on disk');

  const again = await createTestContainer({ plugins: [createStatePlugin()], config });
  t.after(() => again.stop());
  assert.deepEqual(again.container.get<VgpuJournal>(TOKENS.VgpuJournal).gpu('0000:41:00.0')?.selections, [{ vf: 1, typeId: 941, placementId: 3 }]);
});
