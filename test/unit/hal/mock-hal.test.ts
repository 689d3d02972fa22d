import 'reflect-metadata';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Container, injectable, multiInject } from 'inversify';
import { ErrorCode, isVgpuError } from '../../../core/contracts/exceptions.js';
import type { Hal, PciBus, PciDeviceInfo } from '../../../core/contracts/hal.js';
import type { HalRegistry } from '../../../core/hal-registry.js';
import { TOKENS } from '../../../core/tokens.js';
import { MemoryLogger } from '../../../core/logging/memory-logger.js';
import { MockHal } from '../../../hal/mock/mock-hal.js';
import { emptyBooks } from '../../../hal/mock/mock-gpu.js';
import { createMockHalPlugin } from '../../../hal/mock/mock-hal-plugin.js';
import { MockPciBus } from '../../../hal/mock/mock-pci-bus.js';
import { createTestContainer } from '../../helpers/test-container.js';

const logger = new MemoryLogger();

describe('MockHal', () => {
  it('claims its PCI ids on mock transports only', async () => {
    const mock = new MockHal({ devices: [{ bdf: '0000:41:00.0' }, { bdf: '0000:42:00.0', deviceId: 0x26b5 }] });
    const [a, b] = await mock.bus.list();
    assert.equal(mock.supports(a!), true);
    assert.equal(mock.supports(b!), false, '0x26b5 is not claimed by default');
    assert.equal(mock.supports({ ...a!, transport: { kind: 'sim' } }), false);
    await assert.rejects(mock.open(b!, { logger }), (e) => isVgpuError(e, ErrorCode.UnsupportedDevice));
    const l40 = new MockHal({ bus: mock.bus, claims: [{ vendorId: 0x10de, deviceId: 0x26b5 }] });
    assert.equal(l40.supports(b!), true);
    assert.equal(l40.faults, mock.faults, 'HALs on one bus share the controls');
  });

  it('opens a GPU whose config reflects the device options', async () => {
    const mock = new MockHal({ devices: [{ bdf: '0000:41:00.0', fbBytes: 24n << 30n, channels: 1536, totalVfs: 16, numVfs: 3, engines: [1, 9] }] });
    const gpu = await mock.openDevice();
    assert.equal(gpu.halId, 'mock');
    assert.equal(gpu.config.fbBytes, 24n << 30n);
    assert.equal(gpu.channels.total, 1536);
    assert.equal(gpu.config.totalVfs, 16);
    assert.deepEqual([...gpu.config.engineBitmap.subarray(0, 2)], [0b10, 0b10]);
    assert.equal(gpu.caps.has('ce-chan-alloc'), true);
    assert.deepEqual(gpu.vfs().map((v) => [v.index, v.gfid, v.bdf]), [[0, 1, '0000:41:00.4'], [1, 2, '0000:41:00.5'], [2, 3, '0000:41:00.6']]);
    await assert.rejects(mock.openDevice(), (e) => isVgpuError(e, ErrorCode.Busy));
  });

  it('delivers host events; sriov-configure changes the VF count', async () => {
    const mock = new MockHal({ devices: [{ bdf: '0000:41:00.0' }] });
    const gpu = await mock.openDevice();
    const seen: string[] = [];
    const off = gpu.onHostEvent((e) => seen.push(`${e.kind}:${e.numVfs ?? ''}`));
    mock.hostEvent({ kind: 'sriov-configure', numVfs: 2 });
    assert.equal(gpu.vfs().length, 2);
    mock.hostEvent({ kind: 'unbind' });
    off();
    mock.hostEvent({ kind: 'suspend' });
    assert.deepEqual(seen, ['sriov-configure:2', 'unbind:']);
    assert.throws(() => mock.hostEvent({ kind: 'sriov-configure', numVfs: 99 }), (e) => isVgpuError(e, ErrorCode.InvalidArgument));
  });

  it('keeps device state across detach and re-open; close frees everything', async () => {
    const mock = new MockHal({ devices: [{ bdf: '0000:41:00.0' }] });
    const gpu = await mock.openDevice();
    await gpu.firmware.boot({ version: '570.144' });
    const r = gpu.memory.reserve({ size: 1n << 20n, owner: 'vgpu-1', label: 'guest-fb' });
    gpu.memory.map(r).write(0, Buffer.from('keep'));
    await gpu.detach();
    assert.equal(mock.books().fbRanges.length, 1, 'a detached GPU still holds its ranges');
    const again = await mock.openDevice();
    assert.equal(again.firmware.state, 'running');
    assert.deepEqual(again.memory.list(), [r]);
    assert.equal(again.memory.map(r).read(0, 4).toString(), 'keep');
    await again.close();
    assert.deepEqual(mock.books(), emptyBooks());
    const fresh = await mock.openDevice();
    assert.equal(fresh.firmware.state, 'off');
  });

  it('has a register window with presets, write watchers and bounds checks', async () => {
    const mock = new MockHal({ devices: [{ bdf: '0000:41:00.0', registers: { 0x0: 0x19300000 } }] });
    const gpu = await mock.openDevice();
    assert.equal(gpu.registers.read32(0), 0x19300000);
    const writes: number[] = [];
    gpu.registers.onWrite(0xb82200, (v) => writes.push(v));
    gpu.registers.write32(0xb82200, 7);
    assert.equal(gpu.registers.read32(0xb82200), 7);
    assert.deepEqual(writes, [7]);
    assert.throws(() => gpu.registers.read32(2), (e) => isVgpuError(e, ErrorCode.NativeRange));
    assert.throws(() => gpu.registers.read32(16 << 20), (e) => isVgpuError(e, ErrorCode.NativeRange));
  });

  it('records every operation with its outcome', async () => {
    const mock = new MockHal({ devices: [{ bdf: '0000:41:00.0' }] });
    const gpu = await mock.openDevice();
    await assert.rejects(gpu.firmware.allocClient());
    const ops = mock.calls.map((c) => `${c.op}:${c.outcome}`);
    assert.deepEqual(ops, ['pci.list:ok', 'hal.open:ok', 'firmware.allocClient:error']);
    assert.equal(mock.calls[2]!.error?.code, ErrorCode.IllegalState);
    assert.equal(mock.calls[2]!.gpu, '0000:41:00.0');
  });
});

// ---- consumers: swapping the real HAL for the mock ----

/** A tiny consumer that only knows the contracts: lists the GPUs the bound HALs drive. */
@injectable()
class GpuInventory {
  constructor(
    @multiInject(TOKENS.Hal) private readonly hals: Hal[],
    @multiInject(TOKENS.PciBus) private readonly buses: PciBus[],
  ) {}

  async describe(): Promise<string[]> {
    const out: string[] = [];
    for (const bus of this.buses) {
      for (const dev of await bus.list()) {
        const hal = this.hals.find((h) => h.supports(dev));
        if (hal === undefined) continue;
        const gpu = await hal.open(dev, { logger });
        out.push(`${gpu.bdf} ${gpu.config.fbBytes >> 30n}GiB ${hal.id}`);
        await gpu.close();
      }
    }
    return out;
  }
}

/** Stand-in for the real (Ada) HAL: must never be reached once swapped. */
const realHal: Hal = {
  id: 'ada-lovelace', generation: 'ada', claims: [{ vendorId: 0x10de, deviceId: 0x26b1 }],
  supports: () => true,
  open: () => Promise.reject(new Error('the real HAL was used')),
};

describe('swapping the HAL for the mock', () => {
  it('rebinds TOKENS.Hal to the mock in one line', async () => {
    const mock = new MockHal({ devices: [{ bdf: '0000:41:00.0', fbBytes: 48n << 30n }] });
    const container = new Container();
    container.bind(TOKENS.Hal).toConstantValue(realHal);
    container.bind(TOKENS.PciBus).toConstantValue(mock.bus);
    container.bind(GpuInventory).toSelf();

    container.rebind(TOKENS.Hal).toConstantValue(mock); // ← the swap

    assert.deepEqual(await container.get(GpuInventory).describe(), ['0000:41:00.0 48GiB mock']);
    assert.deepEqual(mock.calls.map((c) => c.op), ['pci.list', 'hal.open', 'gpu.close']);
    assert.deepEqual(mock.books(), emptyBooks());
  });

  it('works through the plugin and the core HalRegistry', async () => {
    const plugin = createMockHalPlugin({ devices: [{ bdf: '0000:41:00.0' }] });
    const tc = await createTestContainer({
      plugins: [plugin],
      config: { plugins: { 'hal-mock': { devices: [{ bdf: '0000:81:00.0', fbGiB: 24 }] } } },
    });
    try {
      const mock = tc.container.get(MockHal);
      assert.equal(mock, plugin.hal, 'the controls are reachable from the container');
      assert.equal(tc.container.get(MockPciBus), mock.bus);
      const registry = tc.container.get<HalRegistry>(TOKENS.HalRegistry);
      const devices: PciDeviceInfo[] = await registry.devices();
      assert.deepEqual(devices.map((d) => d.bdf), ['0000:41:00.0', '0000:81:00.0']);
      const dev = devices[1]!;
      const gpu = await registry.forDevice(dev).open(dev, { logger: tc.logger });
      assert.equal(gpu.config.fbBytes, 24n << 30n);
      mock.faults.inject({ op: 'firmware.boot' });
      await assert.rejects(gpu.firmware.boot({ version: '570.144' }), (e) => isVgpuError(e, ErrorCode.FirmwareRpc));
      await gpu.close();
    } finally {
      await tc.stop();
    }
  });

  it('rejects a bad plugin config section', async () => {
    await assert.rejects(createTestContainer({
      plugins: [createMockHalPlugin()],
      config: { plugins: { 'hal-mock': { devices: [{ bdf: 42 }] } } },
    }), (e) => /devices\[0\]\.bdf/.test((e as Error).message));
  });
});
