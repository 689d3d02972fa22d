/**
 * The mock HAL: a complete in-memory implementation of every HAL contract, plus the test controls (after
 * serialport's binding-mock): devices created on its bus, fault injection, a log of every call, the books of what
 * is live, GSP crashes and host events.
 *
 *   const mock = new MockHal({ devices: [{ bdf: '0000:41:00.0' }] });
 *   const gpu = await mock.openDevice();            // or registry.forDevice(dev).open(dev, opts)
 *   mock.faults.inject({ op: 'firmware.control', nth: 2 });
 *   assert.deepEqual(mock.books(), emptyBooks());
 */
import { ErrorCode, VgpuError } from '../../core/contracts/exceptions.js';
import type { GpuOpenOptions, Hal, PciDeviceInfo, PciId } from '../../core/contracts/hal.js';
import { MemoryLogger } from '../../core/logging/memory-logger.js';
import type { MockCallRecord } from './mock-call-recorder.js';
import type { MockControls } from './mock-controls.js';
import type { FaultInjector } from './mock-faults.js';
import { emptyBooks, MockGpu, type MockBooks, type MockHostEvent } from './mock-gpu.js';
import { MockPciBus, type MockDeviceOptions, type MockDeviceSpec } from './mock-pci-bus.js';

export interface MockHalOptions {
  /** HAL id (default 'mock'). */
  id?: string;
  /** Generation name reported in HardwareConfig (default 'mock'). */
  generation?: string;
  /** PCI ids claimed (default NVIDIA 0x10de:0x26b1, RTX 6000 Ada). */
  claims?: PciId[];
  /** The bus whose controls (faults, calls) this HAL shares; default a new MockPciBus. */
  bus?: MockPciBus;
  /** Devices to create on the bus right away. */
  devices?: MockDeviceOptions[];
  /** Default RPC timeout of opened GPUs when GpuOpenOptions gives none (default 6000 ms = 1.5 × 4 s). */
  rpcTimeoutMs?: number;
}

export class MockHal implements Hal {
  readonly id: string;
  readonly generation: string;
  readonly claims: readonly PciId[];
  readonly bus: MockPciBus;
  readonly controls: MockControls;
  private readonly rpcTimeoutMs: number;
  private readonly open_ = new Map<string, MockGpu>();
  private readonly detached = new Map<string, MockGpu>();

  constructor(opts: MockHalOptions = {}) {
    this.id = opts.id ?? 'mock';
    this.generation = opts.generation ?? 'mock';
    this.claims = Object.freeze((opts.claims ?? [{ vendorId: 0x10de, deviceId: 0x26b1 }]).map((c) => Object.freeze({ ...c })));
    this.bus = opts.bus ?? new MockPciBus();
    this.controls = this.bus.controls;
    this.rpcTimeoutMs = opts.rpcTimeoutMs ?? 6000;
    for (const d of opts.devices ?? []) this.bus.createDevice(d);
  }

  /** Fault injection shared by the bus, this HAL and its GPUs. */
  get faults(): FaultInjector {
    return this.controls.faults;
  }

  /** Every recorded call so far (a copy). */
  get calls(): MockCallRecord[] {
    return this.controls.calls;
  }

  supports(device: PciDeviceInfo): boolean {
    return device.transport.kind === 'mock'
      && this.claims.some((c) => c.vendorId === device.vendorId && c.deviceId === device.deviceId);
  }

  open(device: PciDeviceInfo, opts: GpuOpenOptions): Promise<MockGpu> {
    return this.controls.run('hal.open', { bdf: device?.bdf }, { gpu: device?.bdf, timeoutMs: opts?.rpcTimeoutMs ?? this.rpcTimeoutMs }, () => {
      if (!device || !this.supports(device)) {
        throw new VgpuError(ErrorCode.UnsupportedDevice, `the mock HAL '${this.id}' does not drive ${device?.bdf} (${device?.vendorId?.toString(16)}:${device?.deviceId?.toString(16)}, transport ${device?.transport?.kind})`, {
          hint: 'open a device created on a MockPciBus whose PCI id this MockHal claims',
        });
      }
      if (this.open_.has(device.bdf)) {
        throw new VgpuError(ErrorCode.Busy, `${device.bdf} is already open`, { hint: 'close or detach it first' });
      }
      const old = this.detached.get(device.bdf);
      if (old !== undefined) {
        // Re-attach: firmware, reservations and FB contents survived the detach, as on the real device.
        this.detached.delete(device.bdf);
        old.reattach();
        this.open_.set(device.bdf, old);
        return old;
      }
      const spec = device.transport['spec'] as MockDeviceSpec;
      const gpu = new MockGpu(spec, this.controls, {
        halId: this.id, generation: this.generation, logger: opts.logger.child({ gpu: device.bdf }),
        rpcTimeoutMs: opts.rpcTimeoutMs ?? this.rpcTimeoutMs,
        onGone: (g, how) => {
          this.open_.delete(g.bdf);
          if (how === 'detached') this.detached.set(g.bdf, g);
        },
      });
      this.open_.set(device.bdf, gpu);
      return gpu;
    });
  }

  // ---- test controls ----

  /** Open a device of the bus (the only one when `bdf` is omitted) with a MemoryLogger unless one is given. */
  async openDevice(bdf?: string, opts: Partial<GpuOpenOptions> = {}): Promise<MockGpu> {
    const devices = await this.bus.list();
    const dev = bdf === undefined ? (devices.length === 1 ? devices[0] : undefined) : devices.find((d) => d.bdf === bdf);
    if (dev === undefined) {
      throw new VgpuError(ErrorCode.NotFound, bdf === undefined ? `the mock bus has ${devices.length} devices; name one` : `no mock device ${bdf}`, {
        hint: 'create it with bus.createDevice({ bdf }) or pass its bdf',
      });
    }
    return this.open(dev, { logger: opts.logger ?? new MemoryLogger(), ...(opts.rpcTimeoutMs !== undefined ? { rpcTimeoutMs: opts.rpcTimeoutMs } : {}) });
  }

  /** An open GPU (the only one when `bdf` is omitted). */
  gpu(bdf?: string): MockGpu {
    const g = bdf === undefined ? (this.open_.size === 1 ? [...this.open_.values()][0] : undefined) : this.open_.get(bdf);
    if (g === undefined) {
      throw new VgpuError(ErrorCode.NotFound, bdf === undefined ? `${this.open_.size} GPUs are open; name one` : `${bdf} is not open`, {
        hint: 'open the GPU first',
      });
    }
    return g;
  }

  /** Open GPUs. */
  gpus(): MockGpu[] {
    return [...this.open_.values()];
  }

  /** What is live on every open or detached GPU, merged. */
  books(): MockBooks {
    const all = emptyBooks();
    for (const g of [...this.open_.values(), ...this.detached.values()]) {
      const b = g.books();
      all.fbRanges.push(...b.fbRanges);
      all.mappings.push(...b.mappings);
      all.chidRanges.push(...b.chidRanges);
      all.clients.push(...b.clients);
      all.copyChannels.push(...b.copyChannels);
    }
    return all;
  }

  /** Crash the GSP of a GPU (the only open one when `bdf` is omitted). */
  crash(bdf?: string, reason?: string): void {
    this.gpu(bdf).crash(reason);
  }

  /** Deliver a host event to a GPU's onHostEvent listeners. */
  hostEvent(e: MockHostEvent, bdf?: string): void {
    this.gpu(bdf).hostEvent(e);
  }

  /** Drop every fault (releasing hangs) and the call log. */
  reset(): void {
    this.controls.faults.clear();
    this.controls.recorder.clear();
  }
}
