/**
 * A PCI bus that lists the mock devices a test creates. Each device carries its full mock specification in its
 * transport (`{ kind: 'mock', bus, spec }`), so any MockHal can open it and nothing else will claim it.
 */
import { ErrorCode, VgpuError } from '../../core/contracts/exceptions.js';
import type { BarSizes, HalCapability, PciBus, PciDeviceInfo } from '../../core/contracts/hal.js';
import { MockControls } from './mock-controls.js';

export const ALL_MOCK_CAPS: readonly HalCapability[] = [
  'gsp-client-alloc', 'rm-alloc', 'chid-alloc', 'fb-mem-alloc', 'fb-mem-bar1-map', 'chan-mem-map', 'ce-chan-alloc',
  'pushbuf-submit', 'pf-event-delivery', 'suspend-resume', 'gpu-reset', 'sriov-configure',
];

export interface MockDeviceOptions {
  /** "dddd:bb:dd.f" */
  bdf: string;
  vendorId?: number;
  deviceId?: number;
  subsystemVendorId?: number;
  subsystemId?: number;
  /** NUMA node the bus reports for the device (absent: none, as on a host without NUMA information). */
  numaNode?: number;
  classCode?: number;
  revision?: number;
  /** Marketing name in HardwareConfig. */
  name?: string;
  /** Framebuffer size; default 48 GiB (sparse: costs only what is written). */
  fbBytes?: bigint;
  /** CHIDs in the vGPU pool; default 2048. */
  channels?: number;
  totalVfs?: number;
  /** VFs enabled now; default totalVfs. */
  numVfs?: number;
  firstVfOffset?: number;
  vfStride?: number;
  vfDeviceId?: number;
  /** Version the running firmware reports; default: the booted image's version. */
  firmwareVersion?: string;
  /** Lowest firmware version accepted; default "570.144". */
  firmwareFloor?: string;
  /** NV2080 engine-type indices present. */
  engines?: number[];
  /** Bitmap width in engine types (default 0x54, NV2080_ENGINE_TYPE_LAST in 570). */
  engineTypeCount?: number;
  copyEngineClass?: number;
  pushbufDwords?: number;
  /** Capabilities the device's HAL advertises; default all. */
  caps?: HalCapability[];
  eccSupported?: boolean;
  pfBars?: Partial<BarSizes>;
  vfBars?: Partial<BarSizes>;
  /** BAR0 register presets (offset → value). */
  registers?: Record<number, number>;
  /** Commit limit of the sparse FB store (default 4 GiB). */
  maxCommitBytes?: bigint;
}

export type MockDeviceSpec = Readonly<Required<Omit<MockDeviceOptions, 'firmwareVersion' | 'maxCommitBytes' | 'pfBars' | 'vfBars' | 'numaNode'>>> & {
  readonly firmwareVersion?: string;
  readonly maxCommitBytes?: bigint;
  readonly pfBars: BarSizes;
  readonly vfBars: BarSizes;
};

const BDF = /^[0-9a-f]{4}:[0-9a-f]{2}:[0-1][0-9a-f]\.[0-7]$/;

export function resolveMockSpec(o: MockDeviceOptions): MockDeviceSpec {
  if (typeof o.bdf !== 'string' || !BDF.test(o.bdf)) {
    throw new VgpuError(ErrorCode.InvalidArgument, `'${String(o.bdf)}' is not a PCI address`, {
      hint: 'use the dddd:bb:dd.f form in lower-case hex, e.g. 0000:41:00.0',
    });
  }
  const totalVfs = o.totalVfs ?? 32;
  const spec: MockDeviceSpec = {
    bdf: o.bdf,
    vendorId: o.vendorId ?? 0x10de,
    deviceId: o.deviceId ?? 0x26b1,
    subsystemVendorId: o.subsystemVendorId ?? 0x10de,
    subsystemId: o.subsystemId ?? 0x16a1,
    classCode: o.classCode ?? 0x030200,
    revision: o.revision ?? 0xa1,
    name: o.name ?? 'Mock NVIDIA RTX 6000 Ada Generation',
    fbBytes: o.fbBytes ?? 48n << 30n,
    channels: o.channels ?? 2048,
    totalVfs,
    numVfs: o.numVfs ?? totalVfs,
    firstVfOffset: o.firstVfOffset ?? 4,
    vfStride: o.vfStride ?? 1,
    vfDeviceId: o.vfDeviceId ?? o.deviceId ?? 0x26b1,
    firmwareFloor: o.firmwareFloor ?? '570.144',
    engines: [...(o.engines ?? [1, 9, 10, 11, 12])],
    engineTypeCount: o.engineTypeCount ?? 0x54,
    copyEngineClass: o.copyEngineClass ?? 0xc7b5,
    pushbufDwords: o.pushbufDwords ?? 4096,
    caps: [...(o.caps ?? ALL_MOCK_CAPS)],
    eccSupported: o.eccSupported ?? true,
    registers: { ...(o.registers ?? {}) },
    pfBars: { bar0: 16n << 20n, bar1: 64n << 30n, bar3: 32n << 20n, ...o.pfBars },
    vfBars: { bar0: 16n << 20n, bar1: 8n << 30n, bar3: 32n << 20n, ...o.vfBars },
    ...(o.firmwareVersion !== undefined ? { firmwareVersion: o.firmwareVersion } : {}),
    ...(o.maxCommitBytes !== undefined ? { maxCommitBytes: o.maxCommitBytes } : {}),
  };
  if (spec.fbBytes <= 0n || !Number.isInteger(spec.channels) || spec.channels <= 0 || spec.numVfs > totalVfs || spec.numVfs < 0) {
    throw new VgpuError(ErrorCode.InvalidArgument, `mock device ${o.bdf}: fbBytes and channels must be positive and numVfs ≤ totalVfs`, {
      hint: 'fix the createDevice options',
    });
  }
  return Object.freeze(spec);
}

export class MockPciBus implements PciBus {
  readonly name: string;
  readonly controls: MockControls;
  private readonly devices = new Map<string, PciDeviceInfo>();

  constructor(opts: { name?: string; controls?: MockControls } = {}) {
    this.name = opts.name ?? 'mock';
    this.controls = opts.controls ?? new MockControls();
  }

  /** Add a device; returns what `list()` will report for it. */
  createDevice(opts: MockDeviceOptions): PciDeviceInfo {
    const spec = resolveMockSpec(opts);
    if (this.devices.has(spec.bdf)) {
      throw new VgpuError(ErrorCode.Busy, `mock bus '${this.name}' already has a device at ${spec.bdf}`, { hint: 'use another BDF' });
    }
    const info: PciDeviceInfo = {
      bdf: spec.bdf,
      vendorId: spec.vendorId,
      deviceId: spec.deviceId,
      subsystemVendorId: spec.subsystemVendorId,
      subsystemId: spec.subsystemId,
      classCode: spec.classCode,
      revision: spec.revision,
      sriov: { totalVfs: spec.totalVfs, numVfs: spec.numVfs, firstVfOffset: spec.firstVfOffset, vfStride: spec.vfStride },
      ...(opts.numaNode !== undefined ? { numaNode: opts.numaNode } : {}),
      transport: { kind: 'mock', bus: this.name, spec },
    };
    this.devices.set(spec.bdf, info);
    return info;
  }

  /** Hot-remove a device from the listing (an opened GPU keeps running). */
  removeDevice(bdf: string): void {
    if (!this.devices.delete(bdf)) {
      throw new VgpuError(ErrorCode.NotFound, `mock bus '${this.name}' has no device ${bdf}`, { hint: 'createDevice it first' });
    }
  }

  device(bdf: string): PciDeviceInfo | undefined {
    return this.devices.get(bdf);
  }

  list(): Promise<PciDeviceInfo[]> {
    return this.controls.run('pci.list', {}, { timeoutMs: 6000 }, () =>
      [...this.devices.values()].map((d) => ({ ...d, ...(d.sriov ? { sriov: { ...d.sriov } } : {}) })));
  }
}
