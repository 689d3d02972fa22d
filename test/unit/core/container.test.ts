import 'reflect-metadata';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ContainerModule } from 'inversify';
import { ErrorCode, isVgpuError } from '../../../core/contracts/exceptions.js';
import type { EventBus } from '../../../core/contracts/events.js';
import type { Hal, PciBus, PciDeviceInfo } from '../../../core/contracts/hal.js';
import type { VgpudPlugin } from '../../../core/contracts/plugin.js';
import type { Clock } from '../../../core/clock.js';
import type { HalRegistry } from '../../../core/hal-registry.js';
import { PluginHost } from '../../../core/plugin-host.js';
import { TOKENS } from '../../../core/tokens.js';
import { createTestContainer } from '../../helpers/test-container.js';

function device(bdf: string, deviceId: number): PciDeviceInfo {
  return {
    bdf, vendorId: 0x10de, deviceId, subsystemVendorId: 0x10de, subsystemId: 0, classCode: 0x030200, revision: 0xa1,
    transport: { kind: 'test' },
  };
}

function fakeHal(id: string, deviceId: number): Hal {
  return {
    id, generation: id, claims: [{ vendorId: 0x10de, deviceId }],
    supports: (d) => d.vendorId === 0x10de && d.deviceId === deviceId,
    open: () => Promise.reject(new Error('not in this test')),
  };
}

function halPlugin(name: string, hal: Hal, bus: PciBus): VgpudPlugin {
  return {
    manifest: { name, version: '1.0.0', provides: ['hal', 'pci-bus'], requires: [] },
    module: new ContainerModule(({ bind }) => {
      bind(TOKENS.Hal).toConstantValue(hal);
      bind(TOKENS.PciBus).toConstantValue(bus);
    }),
  };
}

test('the core binds its services as singletons', async () => {
  const t = await createTestContainer();
  const c = t.container;
  assert.equal(c.get(TOKENS.Logger), t.logger);
  assert.equal(c.get(TOKENS.Config), t.config);
  assert.equal(c.get(TOKENS.EventBus), c.get(TOKENS.EventBus));
  assert.equal(c.get(TOKENS.ExceptionRelay), c.get(TOKENS.ExceptionRelay));
  assert.ok(c.get(TOKENS.PluginHost) instanceof PluginHost);
  const clock = c.get<Clock>(TOKENS.Clock);
  const a = clock.now();
  assert.ok(clock.now() >= a);
  // The relay reports on the same bus everyone else injects.
  const seen: string[] = [];
  c.get<EventBus>(TOKENS.EventBus).on('exception', (e) => seen.push(e.kind));
  c.get<{ report(e: unknown): unknown }>(TOKENS.ExceptionRelay)
    .report({ gpu: 'g', source: 'hardware', kind: 'mmu-fault', message: 'm', fatal: false, at: 0 });
  assert.deepEqual(seen, ['mmu-fault']);
});

test('overrides rebind core services for tests', async () => {
  const fake: Clock = { now: () => 1234 };
  const t = await createTestContainer({ overrides: (c) => { c.rebind(TOKENS.Clock).toConstantValue(fake); } });
  assert.equal(t.container.get<Clock>(TOKENS.Clock).now(), 1234);
});

test('with no HAL plugin the registry is empty and says so', async () => {
  const t = await createTestContainer();
  const reg = t.container.get<HalRegistry>(TOKENS.HalRegistry);
  assert.deepEqual(reg.hals(), []);
  assert.deepEqual(await reg.devices(), []);
  assert.throws(() => reg.forDevice(device('0000:41:00.0', 0x26b1)),
    (e: unknown) => isVgpuError(e, ErrorCode.UnsupportedDevice) && /no HAL plugin enabled/.test(e.message));
});

test('the registry picks the HAL that supports a device and lists every bus', async () => {
  const busA: PciBus = { name: 'a', list: async () => [device('0000:41:00.0', 0x26b1), device('0000:42:00.0', 0x1234)] };
  const busB: PciBus = { name: 'b', list: async () => [device('0000:41:00.0', 0x26b1), device('0000:81:00.0', 0x27b0)] };
  const broken: PciBus = { name: 'broken', list: async () => { throw new Error('sysfs unreadable'); } };
  const t = await createTestContainer({
    plugins: [
      halPlugin('hal-one', fakeHal('one', 0x26b1), busA),
      halPlugin('hal-two', fakeHal('two', 0x27b0), busB),
      halPlugin('hal-broken', fakeHal('three', 0x9999), broken),
    ],
  });
  const reg = t.container.get<HalRegistry>(TOKENS.HalRegistry);
  const devs = await reg.devices();
  assert.deepEqual(devs.map((d) => d.bdf), ['0000:41:00.0', '0000:42:00.0', '0000:81:00.0']);
  assert.equal(reg.forDevice(devs[0]!).id, 'one');
  assert.equal(reg.forDevice(devs[2]!).id, 'two');
  assert.equal(reg.byId('two').id, 'two');
  assert.throws(() => reg.forDevice(devs[1]!), (e: unknown) => {
    assert.ok(isVgpuError(e, ErrorCode.UnsupportedDevice));
    assert.match(e.message, /0000:42:00\.0/);
    assert.match(e.message, /one \[10de:26b1\]/);
    assert.match(e.message, /two \[10de:27b0\]/);
    return true;
  });
  assert.equal(t.logger.find('PCI bus failed to list devices')[0]?.meta.bus, 'broken');
  assert.equal(t.logger.find('more than one PCI bus').length, 1);
});
