/**
 * Booting GSP-RM as nova-core and nouveau do: the system-info and registry RPCs are queued without waiting for a
 * reply, real GSP-RM never answers them, and its GSP_INIT_DONE event is what completes the boot.
 */
import 'reflect-metadata';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryLogger } from '../../../core/logging/memory-logger.js';
import { AdaHal } from '../../../hal/ada-lovelace/ada-hal.js';
import { GspFunction } from '../../../hal/gsp/gsp-layout.js';
import { startSimDevice } from '../../../hal/ada-lovelace/sim/start-sim-device.js';

test('boot awaits no reply to GSP_SET_SYSTEM_INFO or SET_REGISTRY: the simulated GSP-RM sends none, and GSP_INIT_DONE completes it', async (t) => {
  const dev = await startSimDevice({ board: 'rtx6000-ada', bdf: '0000:41:00.0', mode: 'worker', fbBytes: 1n << 30n });
  t.after(() => dev.stop());
  const gpu = await new AdaHal().open(dev.pciInfo(), { logger: new MemoryLogger() });
  t.after(() => gpu.close());
  const info = await gpu.firmware.boot({ version: '570.144' });
  assert.equal(info.initDone, true);
  assert.equal(info.version, '570.144');

  const s = await dev.controls.gspStats();
  for (const fn of [GspFunction.GSP_SET_SYSTEM_INFO, GspFunction.SET_REGISTRY]) {
    assert.equal(s.requestsByFn[fn], 1, `GSP-RM received function ${fn} once`);
    assert.equal(s.repliesByFn[fn], undefined, `and sent no reply to function ${fn}`);
  }
  assert.equal(s.unanswered, 2);
  // Every other command of the boot (the version probe's RM client, control and free) was answered, one at a time.
  const answered = Object.values(s.repliesByFn).reduce((a, b) => a + b, 0);
  assert.equal(answered, s.requests - 2);
  assert.equal(s.maxOutstanding, 1);
  assert.match(new TextDecoder().decode(gpu.firmware.readLog('gsp')), /GSP_INIT_DONE/);
});
