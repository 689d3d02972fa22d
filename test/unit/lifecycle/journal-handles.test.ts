/**
 * An RM client handle the firmware already has (a client only a lost journal record knew, whose sequence file was
 * then rebuilt below it) is skipped: the create journals the next handle and goes on, instead of failing at its
 * rm-client step with a duplicate handle (issue 16, defect 5).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ErrorCode, VgpuError } from '../../../core/contracts/exceptions.js';
import type { Firmware } from '../../../core/contracts/firmware.js';
import { NvStatus } from '../../../core/firmware-abi/nv-status.js';
import { GpuLifecycle } from '../../../plugins/lifecycle/gpu-lifecycle.js';
import { FileVgpuJournal } from '../../../plugins/state/file-vgpu-journal.js';
import { TYPES, rig } from './lifecycle-rig.js';

test('a create whose journalled RM handle the firmware already holds journals the next one and succeeds', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vgpud-handles-'));
  const journal = new FileVgpuJournal(dir);
  t.after(async () => {
    await journal.flush(); // GPU records are written behind the lifecycle's back
    rmSync(dir, { recursive: true, force: true });
  });
  await journal.open();
  const r = await rig();
  r.lc.detach();
  // The firmware knows a client 0xc2000007 nobody journalled; the mock honours no chosen handle, so play GSP-RM here.
  const fw = r.gpu.firmware as Firmware;
  const alloc = fw.allocClient.bind(fw);
  const asked: number[] = [];
  (fw as { allocClient: Firmware['allocClient'] }).allocClient = async (opts = {}) => {
    if (opts.hClient !== undefined) asked.push(opts.hClient);
    if (opts.hClient === 0xc2000007) {
      throw new VgpuError(ErrorCode.FirmwareRpc, 'RM alloc failed: INSERT_DUPLICATE_NAME', { details: { rmStatus: NvStatus.INSERT_DUPLICATE_NAME } });
    }
    return alloc(opts); // (the mock picks its own handles; what matters here is which one was asked for)
  };
  const handles = [0xc2000007, 0xc2000008];
  const lc = new GpuLifecycle({
    gpu: r.gpu, mgr: r.mgr, bus: r.bus, relay: r.relay, logger: r.logger, scrubber: r.scrubber, journal,
    timeouts: { rpcMs: 2000, bootloadMs: 300, mailboxMs: 300, scrubMs: 1000, pollIntervalMs: 1 },
    newId: () => 'vgpu-1', newClientHandle: async () => handles.shift()!,
  });
  lc.start();
  const v = await lc.create(0, TYPES[1]);
  assert.equal(v.state, 'ready');
  assert.deepEqual(asked, [0xc2000007, 0xc2000008]);
  assert.equal(journal.vgpu(v.id)?.clientHandle, 0xc2000008, 'the journal names the handle in use, not the skipped one');
  await lc.destroy(v.id);
  assert.equal(journal.vgpu(v.id), undefined);
});
