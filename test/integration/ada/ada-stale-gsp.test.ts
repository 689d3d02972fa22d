/**
 * A host that opens a device whose GSP-RM says it runs but does not answer (hung after the previous host detached)
 * resets the GPU instead of failing it: the open succeeds with the firmware off, and the firmware boots again.
 */
import 'reflect-metadata';
import { after, it } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryLogger } from '../../../core/logging/memory-logger.js';
import { AdaHal } from '../../../hal/ada-lovelace/ada-hal.js';
import { startSimDevice, type SimDeviceHandle } from '../../../hal/ada-lovelace/sim/start-sim-device.js';

let dev: SimDeviceHandle | undefined;
after(async () => { await dev?.stop(); });

it('opening a device whose GSP-RM hung resets the GPU (FLR) and boots a fresh GSP-RM', async () => {
  dev = await startSimDevice({ board: 'rtx6000-ada', bdf: '0000:44:00.0', mode: 'worker', fbBytes: 2n << 30n });
  const first = await new AdaHal().open(dev.pciInfo(), { logger: new MemoryLogger(), rpcTimeoutMs: 5000 });
  await first.firmware.boot({ version: '570.144' });
  await first.firmware.allocClient();
  await first.detach(); // the host goes away, GSP-RM keeps running…
  await dev.controls.hangGsp(); // …and then hangs: still "running", answering nothing

  const logger = new MemoryLogger();
  const gpu = await new AdaHal().open(dev.pciInfo(), { logger, rpcTimeoutMs: 5000 });
  assert.equal(gpu.firmware.state, 'off', 'reset at open: no firmware to attach to');
  assert.ok(logger.lines.some((l) => /does not answer: resetting the GPU/.test(l.message)));
  assert.ok(logger.lines.some((l) => /function-level reset/.test(l.message)));
  assert.equal((await gpu.firmware.boot({ version: '570.144' })).version, '570.144');
  assert.equal(await dev.controls.rmClients(), 0, 'a fresh GSP-RM: the old client is gone with the old one');
  await gpu.close();
});
