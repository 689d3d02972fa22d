import 'reflect-metadata';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from '../../../core/config/load-config.js';
import { EventBusImpl } from '../../../core/event-bus.js';
import { HalRegistryImpl } from '../../../core/hal-registry.js';
import { MemoryLogger } from '../../../core/logging/memory-logger.js';
import { GpuProbe } from '../../../core/manager/gpu-probe.js';
import { isVgpuError } from '../../../core/contracts/exceptions.js';
import { MockHal } from '../../../hal/mock/mock-hal.js';
import { MockPciBus } from '../../../hal/mock/mock-pci-bus.js';

function setup(config: Record<string, unknown> = {}) {
  const logger = new MemoryLogger();
  const bus = new MockPciBus();
  const mock = new MockHal({ bus });
  const registry = new HalRegistryImpl([mock], [bus], logger);
  const events = new EventBusImpl(logger);
  const seen: string[] = [];
  events.on('gpu:probed', (e) => seen.push(`probed ${e.gpu} ${e.name}`));
  events.on('gpu:ready', (e) => seen.push(`ready ${e.gpu}`));
  const probe = new GpuProbe(registry, events, logger, loadConfig(config));
  return { logger, bus, mock, probe, seen };
}

test('probes every device: open, boot, events in order, steps logged on a {gpu} child', async () => {
  const s = setup();
  s.bus.createDevice({ bdf: '0000:41:00.0' });
  s.bus.createDevice({ bdf: '0000:42:00.0', name: 'Second' });
  const r = await s.probe.probeAll();
  assert.equal(r.failed.length, 0);
  assert.deepEqual(r.ready.map((g) => g.gpu.bdf), ['0000:41:00.0', '0000:42:00.0']);
  assert.equal(r.ready[0]!.firmware.version, '570.144');
  assert.equal(r.ready[0]!.gpu.firmware.state, 'running');
  assert.deepEqual(s.seen, [
    'probed 0000:41:00.0 Mock NVIDIA RTX 6000 Ada Generation', 'ready 0000:41:00.0',
    'probed 0000:42:00.0 Second', 'ready 0000:42:00.0',
  ]);
  const steps = s.logger.lines.filter((l) => l.meta['gpu'] === '0000:42:00.0').map((l) => l.message);
  for (const m of ['HAL selected', 'GPU opened', 'booting GSP firmware', 'GSP firmware running', 'GPU ready for vGPU']) {
    assert.ok(steps.includes(m), m);
  }
  for (const g of r.ready) await g.gpu.close();
});

test('one failing GPU is reported with its step and closed; the others still come up', async () => {
  const s = setup();
  s.bus.createDevice({ bdf: '0000:41:00.0', firmwareFloor: '575.0' }); // our 570.144 image is too old for it
  s.bus.createDevice({ bdf: '0000:42:00.0', deviceId: 0x1234 }); // no HAL claims it
  s.bus.createDevice({ bdf: '0000:43:00.0' });
  const r = await s.probe.probeAll({ firmwareImage: () => ({ version: '570.144' }) });
  assert.deepEqual(r.ready.map((g) => g.gpu.bdf), ['0000:43:00.0']);
  assert.deepEqual(r.failed.map((f) => [f.device.bdf, f.step, f.error.code]), [
    ['0000:41:00.0', 'boot', 'VGPU_EFWVER'],
    ['0000:42:00.0', 'select-hal', 'VGPU_ENODEV'],
  ]);
  assert.deepEqual(s.seen, ['probed 0000:41:00.0 Mock NVIDIA RTX 6000 Ada Generation', 'probed 0000:43:00.0 Mock NVIDIA RTX 6000 Ada Generation', 'ready 0000:43:00.0']);
  assert.equal(s.mock.gpus().length, 1, 'the GPU whose boot failed was closed');
  assert.deepEqual(s.mock.books().clients, []);
  await r.ready[0]!.gpu.close();
});

test('a GPU without SR-IOV VFs fails at hardware-config', async () => {
  const s = setup();
  s.bus.createDevice({ bdf: '0000:41:00.0', totalVfs: 0 });
  const dev = (await s.bus.list())[0]!;
  await assert.rejects(s.probe.probe(dev), (e) => isVgpuError(e, 'VGPU_ENODEV') && e.details['step'] === 'hardware-config');
  assert.equal(s.mock.gpus().length, 0);
});

test('the config hal override is honoured (and an unknown id fails at select-hal)', async () => {
  const s = setup({ gpus: [{ bdf: '0000:41:00.0', hal: 'nope' }] });
  s.bus.createDevice({ bdf: '0000:41:00.0' });
  const r = await s.probe.probeAll();
  assert.equal(r.failed[0]?.step, 'select-hal');
  assert.match(r.failed[0]!.error.message, /nope/);
});
