/**
 * Shared set-up of the manager tests: a mock GPU whose firmware answers the manager's RM controls, and metadata
 * built with the real writer.
 */
import { MemoryLogger } from '../../../core/logging/memory-logger.js';
import type { VgpuTypeRecord } from '../../../core/metadata/metadata-file.js';
import { buildMetadata } from '../../../core/metadata/metadata-writer.js';
import {
  RmControl, encodeEccStatus, encodeGspFeatures, encodeVmmuSegmentSize,
} from '../../../core/firmware-abi/rm-controls.js';
import { PgpuManager, type PgpuManagerOptions } from '../../../core/manager/pgpu-manager.js';
import { MockHal } from '../../../hal/mock/mock-hal.js';
import type { MockGpu } from '../../../hal/mock/mock-gpu.js';
import type { MockDeviceOptions } from '../../../hal/mock/mock-pci-bus.js';

export const GiB = 1n << 30n;
export const MiB = 1n << 20n;
export const ADD_TYPE_PAYLOAD = Uint8Array.from({ length: 64 }, (_, i) => (i * 7 + 3) & 0xff);

export function type(id: number, name: string, fbGiB: number, maxInstance: number, extra: Partial<VgpuTypeRecord> = {}): VgpuTypeRecord {
  return {
    id, name, vdevId: (0x26b1 << 16) | (id & 0xffff), pdevId: 0x26b1, fbLength: BigInt(fbGiB) * GiB,
    gspHeapSize: 32n * MiB, bar1LengthMiB: 256, maxInstance, eccSupported: true, fbReservation: 0n, ...extra,
  };
}

/** A small 48 GiB table: 1, 2, 4, 8, 16 GiB Q types plus a non-ECC 1 GiB B type. */
export const SMALL_TABLE: VgpuTypeRecord[] = [
  type(100, 'NVIDIA T-1Q', 1, 32),
  type(101, 'NVIDIA T-2Q', 2, 16),
  type(102, 'NVIDIA T-4Q', 4, 8),
  type(103, 'NVIDIA T-8Q', 8, 4),
  type(104, 'NVIDIA T-16Q', 16, 2),
  type(105, 'NVIDIA T-1B', 1, 32, { eccSupported: false }),
];

export function metadataFor(types: readonly VgpuTypeRecord[], deviceId = 0x26b1, payload = ADD_TYPE_PAYLOAD): Uint8Array {
  return buildMetadata({
    vgpuMajor: 18, vgpuMinor: 1, gspVersion: '570.144',
    blobs: [{ deviceId, rmctrlCmd: RmControl.VGPU_MGR_INTERNAL_PGPU_ADD_VGPU_TYPE, rmctrlPayload: payload, types: types.map((t) => ({ ...t, pdevId: deviceId, vdevId: (deviceId << 16) | (t.vdevId & 0xffff) })) }],
  });
}

export interface Rig {
  mock: MockHal;
  gpu: MockGpu;
  logger: MemoryLogger;
  /** Every payload the firmware received for ADD_VGPU_TYPE. */
  uploads: Uint8Array[];
  files: Map<string, Uint8Array>;
  create(extra?: Partial<PgpuManagerOptions>): Promise<PgpuManager>;
}

export interface RigOptions {
  device?: Partial<MockDeviceOptions>;
  segmentSize?: bigint;
  ecc?: boolean;
  firmwareVersion?: string;
  metadata?: Uint8Array;
}

export async function rig(opts: RigOptions = {}): Promise<Rig> {
  const deviceId = opts.device?.deviceId ?? 0x26b1;
  const mock = new MockHal({ claims: [{ vendorId: 0x10de, deviceId }], devices: [{ bdf: '0000:41:00.0', ...opts.device }], rpcTimeoutMs: 2000 });
  const logger = new MemoryLogger();
  const gpu = await mock.openDevice(undefined, { logger });
  await gpu.firmware.boot({ version: '570.144' });
  const uploads: Uint8Array[] = [];
  gpu.firmware.onControl(RmControl.GPU_GET_VMMU_SEGMENT_SIZE, () => encodeVmmuSegmentSize(opts.segmentSize ?? 512n * MiB));
  gpu.firmware.onControl(RmControl.GPU_QUERY_ECC_STATUS, () => encodeEccStatus({ units: [{ enabled: opts.ecc ?? false, supported: true }] }));
  gpu.firmware.onControl(RmControl.GSP_GET_FEATURES, () => encodeGspFeatures({ bValid: true, firmwareVersion: opts.firmwareVersion ?? '570.144' }));
  gpu.firmware.onControl(RmControl.VGPU_MGR_INTERNAL_PGPU_ADD_VGPU_TYPE, (p) => { uploads.push(Uint8Array.from(p)); });
  const files = new Map<string, Uint8Array>([['/meta/vgpu-570.144.bin', opts.metadata ?? metadataFor(SMALL_TABLE, opts.device?.deviceId ?? 0x26b1)]]);
  const readFile = async (path: string): Promise<Uint8Array> => {
    const f = files.get(path);
    if (f === undefined) throw Object.assign(new Error(`ENOENT: no such file '${path}'`), { code: 'ENOENT' });
    return f;
  };
  return {
    mock, gpu, logger, uploads, files,
    create: (extra = {}) => PgpuManager.create({ gpu, logger, metadataDir: '/meta', readFile, ...extra }),
  };
}
