// Every GSP RPC a probed simulated GPU answers is observed for the metrics' latency histogram: the probe turns the
// firmware's RPC observations into 'rpc:latency' bus events tagged with the GPU, successes and failures alike.
import 'reflect-metadata';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from '../../../core/config/load-config.js';
import { EventBusImpl } from '../../../core/event-bus.js';
import { HalRegistryImpl } from '../../../core/hal-registry.js';
import { MemoryLogger } from '../../../core/logging/memory-logger.js';
import { GpuProbe } from '../../../core/manager/gpu-probe.js';
import { RmControl, encodeVmmuSegmentSize } from '../../../core/firmware-abi/rm-controls.js';
import { AdaHal } from '../../../hal/ada-lovelace/ada-hal.js';
import { SimPciBus } from '../../../hal/sim/device/sim-pci-bus.js';
import { startSimDevice } from '../../../hal/ada-lovelace/sim/start-sim-device.js';

test('RPCs of a probed simulated GPU reach the bus as rpc:latency, with the error code of a failed one', async (t) => {
  const dev = await startSimDevice({ board: 'rtx6000-ada', bdf: '0000:51:00.0', mode: 'worker', fbBytes: 1n << 30n });
  t.after(() => dev.stop());
  const logger = new MemoryLogger();
  const bus = new SimPciBus();
  t.after(bus.register(dev.arena));
  const hal = new AdaHal();
  const events = new EventBusImpl(logger);
  const seen: { gpu: string; fn: string; ms: number; error?: string }[] = [];
  events.on('rpc:latency', (e) => seen.push(e));
  const probe = new GpuProbe(new HalRegistryImpl([hal], [bus], logger), events, logger, loadConfig({}));
  const { ready } = await probe.probeAll();
  const gpu = ready[0]!.gpu;
  t.after(() => gpu.close());

  const client = await gpu.firmware.allocClient();
  await gpu.firmware.control(client, RmControl.GPU_GET_VMMU_SEGMENT_SIZE, encodeVmmuSegmentSize(0x2000000n).fill(0));
  await assert.rejects(gpu.firmware.control(client, 0x2080dead, new Uint8Array(8)));
  await gpu.firmware.freeClient(client);

  assert.ok(seen.length >= 5, `saw ${seen.length} RPCs`);
  assert.ok(seen.every((e) => e.gpu === '0000:51:00.0' && e.ms >= 0));
  assert.ok(seen.some((e) => e.fn === 'GSP_RM_ALLOC' && e.error === undefined));
  assert.ok(seen.some((e) => e.fn === 'GSP_RM_CONTROL' && e.error !== undefined), 'the refused control is reported with its code');
});
