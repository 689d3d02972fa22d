/**
 * vGPU live migration on the simulator, cancelled at every stage of a move between two GPUs of one daemon: the
 * source must be RUNNING again with its FB intact and its firmware running, and no vGPU may stay on the
 * destination GPU.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isVgpuError } from '../../../core/contracts/exceptions.js';
import { MigState } from '../../../plugins/migration/fsm.js';
import { NO_DOWNTIME_LIMIT_MS, daemon, dispose, fbHash, fill, makeSource, startGpu, stopGpu, type Daemon, type SimGpu } from './harness.js';

let A: SimGpu, B: SimGpu;
let local: Daemon;

before(async () => {
  [A, B] = await Promise.all([startGpu('0000:41:00.0'), startGpu('0000:42:00.0')]);
  local = daemon([A, B], 'local');
});

after(async () => {
  await Promise.all([stopGpu(A), stopGpu(B)]);
});

describe('vGPU migration on the simulator: cancel', () => {
  for (const stage of ['estimate', 'precopy', 'stop-copy', 'restore'] as const) {
    it(`cancel at ${stage}: source RUNNING with its FB intact, no vGPU left on the destination GPU`, async () => {
      const id = await makeSource(local, A, 2);
      try {
        fill(local, id, 11);
        const before = await fbHash(local, id);
        const ac = new AbortController();
        await assert.rejects(local.mig.migrateVgpu(id, {
          to: B.gpu.bdf, signal: ac.signal, downtimeMs: NO_DOWNTIME_LIMIT_MS, onProgress: (p) => { if (p.phase === stage) ac.abort(); },
        }), (e: unknown) => isVgpuError(e, 'VGPU_ECANCELED'));
        assert.equal(local.mig.getState(id), MigState.RUNNING);
        assert.deepEqual(local.svc.list({ gpu: B.gpu.bdf }), []);
        assert.ok((await fbHash(local, id)).equals(before));
        // The firmware runs again: STOP_WORK is accepted only by a running plugin task.
        await local.mig.setState(id, MigState.STOP);
        await local.mig.setState(id, MigState.RUNNING);
      } finally {
        await dispose(local, id);
      }
    });
  }
});
