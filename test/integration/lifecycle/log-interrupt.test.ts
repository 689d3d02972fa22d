/**
 * Firmware log text reaches the logging plugin because the simulated device says it wrote some (the log interrupt on
 * its link, from the GSP thread), not because anything polls: a mailbox call on the simulator makes its plugin task
 * write a vgpu-task line, and the drainer (whose sweep would never run: the device notifies) delivers it.
 */
import 'reflect-metadata';
import { after, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GpuRegistryImpl } from '../../../core/gpu-registry.js';
import { MemoryLogger } from '../../../core/logging/memory-logger.js';
import { VgpuRpcMsg } from '../../../core/firmware-abi/vgpu-mailbox.js';
import { FirmwareLogDrainer } from '../../../plugins/logging/firmware-log-drainer.js';
import { VgpuLogStoreImpl } from '../../../plugins/logging/vgpu-log-store.js';
import { simRig, type SimRig } from './sim-rig.js';

let r: SimRig | undefined;
let drainer: FirmwareLogDrainer | undefined;
const logDir = mkdtempSync(join(tmpdir(), 'vgpud-logirq-'));
after(async () => {
  drainer?.stop();
  await r?.stop();
  rmSync(logDir, { recursive: true, force: true });
});

it('a plugin task\'s log line is drained on the device\'s log interrupt, with no poll and no drainAll', async () => {
  r = await simRig({ bdf: '0000:66:00.0' });
  const gpus = new GpuRegistryImpl();
  gpus.add(r.gpu);
  const store = new VgpuLogStoreImpl(100);
  drainer = new FirmwareLogDrainer(r.bus, gpus, new MemoryLogger({ level: 'warn' }), store, { dir: logDir, maxBytes: 1 << 20, maxFiles: 1, maxDelayMs: 20, keepLines: 100, keepDestroyed: 16, keepDestroyedHours: 0 });
  drainer.start();
  const a = await r.lc.create(0, r.type('1Q'));
  assert.equal(drainer.notifies(r.gpu.bdf), true);
  const line = new Promise<string>((resolve) => r!.bus.on('log:line', (e) => {
    if (e.vgpuId === a.id && /GET_GUEST_INFO/.test(e.line)) resolve(e.line);
  }));
  await a.res.channel!.call(VgpuRpcMsg.GET_GUEST_INFO, new Uint8Array(0));
  assert.match(await line, /seq \d+ GET_GUEST_INFO: ok/);
  assert.ok(store.lines(a.id).some((l) => /GET_GUEST_INFO/.test(l)));
  await r.lc.destroy(a.id);
});
