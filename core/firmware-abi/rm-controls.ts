/**
 * The RM controls the vGPU manager sends to GSP-RM (570.144 layouts), as command ids plus parameter codecs.
 * Shared by the core (which sends them) and the simulator (which answers them), so both sides read and write
 * exactly the same bytes. Offsets are computed from the C declaration by `StructLayout` (natural alignment,
 * little-endian); the table in docs/vgpu-types.md lists them and the unit tests pin them to hand-worked numbers.
 *
 * Sources: docs/reference/create-order.md (M4, bootload, shutdown/cleanup), docs/reference/metadata-format.md
 * (GSP_GET_FEATURES, ADD_VGPU_TYPE).
 */
import { ErrorCode, VgpuError } from '../contracts/exceptions.js';
import { StructLayout, cString, toCString, type EncodeInput } from './struct-layout.js';

/** RM control command ids (NV2080_CTRL_CMD_*: class 0x2080 in the top half, category and index below). */
export const RmControl = {
  GPU_QUERY_ECC_STATUS: 0x2080_012f,
  GPU_GET_VMMU_SEGMENT_SIZE: 0x2080_017e,
  GSP_GET_FEATURES: 0x2080_3601,
  VGPU_MGR_INTERNAL_BOOTLOAD_GSP_VGPU_PLUGIN_TASK: 0x2080_4001,
  VGPU_MGR_INTERNAL_SHUTDOWN_GSP_VGPU_PLUGIN_TASK: 0x2080_4002,
  /** Upload of vGPU types; its payload comes verbatim from the metadata file (core/metadata builds it). */
  VGPU_MGR_INTERNAL_PGPU_ADD_VGPU_TYPE: 0x2080_4003,
  VGPU_MGR_INTERNAL_VGPU_PLUGIN_CLEANUP: 0x2080_4008,
} as const;
export type RmControl = (typeof RmControl)[keyof typeof RmControl];

export function rmControlName(cmd: number): string {
  for (const [name, id] of Object.entries(RmControl)) if (id === cmd) return name;
  return `0x${(cmd >>> 0).toString(16).padStart(8, '0')}`;
}

/** NV2080_GPU_MAX_ENGINES in 570 (0x3e in 535): length of the per-engine CHID offset array. */
export const NV2080_GPU_MAX_ENGINES = 0x54;
/** NV2080_CTRL_MAX_VMMU_SEGMENTS: guest FB may be given as up to this many segments. */
export const NV2080_CTRL_MAX_VMMU_SEGMENTS = 384;
/** GSP_MAX_BUILD_VERSION_LENGTH. */
export const GSP_MAX_BUILD_VERSION_LENGTH = 0x40;
/** NV2080_CTRL_GPU_ECC_UNIT_COUNT (570). */
export const NV2080_CTRL_GPU_ECC_UNIT_COUNT = 0x24;

const MiB = 1n << 20n;
/** The VMMU segment sizes GSP-RM can report (nvrm/vmmu.h): 32, 64, 128, 256, 512 MiB. */
export const VMMU_SEGMENT_SIZES: readonly bigint[] = [32n * MiB, 64n * MiB, 128n * MiB, 256n * MiB, 512n * MiB];

// ---------------------------------------------------------------------------------------------------------------
// NV2080_CTRL_CMD_GSP_GET_FEATURES (0x20803601)

export interface GspFeaturesParams {
  gspFeatures: number;
  bValid: boolean;
  bDefaultGspRmGpu: boolean;
  /** NUL-padded build version, e.g. "570.144". */
  firmwareVersion: Uint8Array;
}

/** {gspFeatures u32 @0, bValid u8 @4, bDefaultGspRmGpu u8 @5, firmwareVersion[64] @6}; 72 bytes. */
export const GSP_GET_FEATURES_PARAMS = new StructLayout<GspFeaturesParams>('NV2080_CTRL_GSP_GET_FEATURES_PARAMS', [
  { name: 'gspFeatures', type: 'u32' },
  { name: 'bValid', type: 'bool' },
  { name: 'bDefaultGspRmGpu', type: 'bool' },
  { name: 'firmwareVersion', type: 'bytes', count: GSP_MAX_BUILD_VERSION_LENGTH },
]);

export interface GspFeatures {
  gspFeatures: number;
  bValid: boolean;
  bDefaultGspRmGpu: boolean;
  firmwareVersion: string;
}

export function encodeGspFeatures(v: Partial<GspFeatures>): Uint8Array {
  const { firmwareVersion, ...rest } = v;
  return GSP_GET_FEATURES_PARAMS.encode({
    ...rest,
    ...(firmwareVersion === undefined
      ? {}
      : { firmwareVersion: toCString(firmwareVersion, GSP_MAX_BUILD_VERSION_LENGTH, 'firmwareVersion') }),
  });
}

export function decodeGspFeatures(bytes: Uint8Array): GspFeatures {
  const p = GSP_GET_FEATURES_PARAMS.decode(bytes);
  return { gspFeatures: p.gspFeatures, bValid: p.bValid, bDefaultGspRmGpu: p.bDefaultGspRmGpu, firmwareVersion: cString(p.firmwareVersion) };
}

// ---------------------------------------------------------------------------------------------------------------
// NV2080_CTRL_CMD_GPU_GET_VMMU_SEGMENT_SIZE (0x2080017e)

export interface VmmuSegmentSizeParams {
  vmmuSegmentSize: bigint;
}

/** {vmmuSegmentSize u64 @0}; 8 bytes. */
export const GPU_GET_VMMU_SEGMENT_SIZE_PARAMS = new StructLayout<VmmuSegmentSizeParams>(
  'NV2080_CTRL_GPU_GET_VMMU_SEGMENT_SIZE_PARAMS',
  [{ name: 'vmmuSegmentSize', type: 'u64' }],
);

export function encodeVmmuSegmentSize(size: bigint): Uint8Array {
  return GPU_GET_VMMU_SEGMENT_SIZE_PARAMS.encode({ vmmuSegmentSize: size });
}

/** Decode and validate: a size outside the documented set would break every FB-placement computation. */
export function decodeVmmuSegmentSize(bytes: Uint8Array): bigint {
  const size = GPU_GET_VMMU_SEGMENT_SIZE_PARAMS.decode(bytes).vmmuSegmentSize;
  if (!VMMU_SEGMENT_SIZES.includes(size)) {
    throw new VgpuError(ErrorCode.FirmwareRpc, `firmware reported VMMU segment size ${size}, not one of 32..512 MiB`, {
      hint: 'the firmware answer is corrupt or from an unsupported GSP build; check the firmware version',
      details: { vmmuSegmentSize: size.toString() },
    });
  }
  return size;
}

// ---------------------------------------------------------------------------------------------------------------
// NV2080_CTRL_CMD_GPU_QUERY_ECC_STATUS (0x2080012f) — full 570 layout (not a subset).

export interface EccUnitStatus {
  enabled: boolean;
  scrubComplete: boolean;
  supported: boolean;
  /** Error counts (each an NV2080_CTRL_GPU_QUERY_ECC_EXCEPTION_STATUS {count u64}). */
  dbe: bigint;
  dbeNonResettable: bigint;
  sbe: bigint;
  sbeNonResettable: bigint;
}

/** {enabled @0, scrubComplete @1, supported @2, dbe @8, dbeNonResettable @16, sbe @24, sbeNonResettable @32}; 40 B. */
export const ECC_UNIT_STATUS = new StructLayout<EccUnitStatus>('NV2080_CTRL_GPU_QUERY_ECC_UNIT_STATUS', [
  { name: 'enabled', type: 'bool' },
  { name: 'scrubComplete', type: 'bool' },
  { name: 'supported', type: 'bool' },
  { name: 'dbe', type: 'u64' },
  { name: 'dbeNonResettable', type: 'u64' },
  { name: 'sbe', type: 'u64' },
  { name: 'sbeNonResettable', type: 'u64' },
]);

export interface GrRouteInfo {
  flags: number;
  route: bigint;
}

/** NV2080_CTRL_GR_ROUTE_INFO {flags u32 @0, route u64 @8}; 16 bytes. */
export const GR_ROUTE_INFO = new StructLayout<GrRouteInfo>('NV2080_CTRL_GR_ROUTE_INFO', [
  { name: 'flags', type: 'u32' },
  { name: 'route', type: 'u64' },
]);

export interface EccStatusParams {
  units: EccUnitStatus[];
  bFatalPoisonError: boolean;
  uncorrectableError: number;
  flags: number;
  grRouteInfo: GrRouteInfo;
}

/** units[36] @0 (1440 B), bFatalPoisonError @1440, uncorrectableError @1441, flags @1444, grRouteInfo @1448; 1464 B. */
export const GPU_QUERY_ECC_STATUS_PARAMS = new StructLayout<EccStatusParams>('NV2080_CTRL_GPU_QUERY_ECC_STATUS_PARAMS', [
  { name: 'units', type: ECC_UNIT_STATUS as unknown as StructLayout, count: NV2080_CTRL_GPU_ECC_UNIT_COUNT },
  { name: 'bFatalPoisonError', type: 'bool' },
  { name: 'uncorrectableError', type: 'u8' },
  { name: 'flags', type: 'u32' },
  { name: 'grRouteInfo', type: GR_ROUTE_INFO as unknown as StructLayout },
]);

/** `units` may be shorter than 36: the rest are zero (unsupported). */
export function encodeEccStatus(v: EncodeInput<EccStatusParams>): Uint8Array {
  return GPU_QUERY_ECC_STATUS_PARAMS.encode(v);
}

export function decodeEccStatus(bytes: Uint8Array): EccStatusParams {
  return GPU_QUERY_ECC_STATUS_PARAMS.decode(bytes);
}

// ---------------------------------------------------------------------------------------------------------------
// NV2080_CTRL_CMD_VGPU_MGR_INTERNAL_BOOTLOAD_GSP_VGPU_PLUGIN_TASK (0x20804001), 570 layout
// (docs/reference/create-order.md)

export interface BootloadParams {
  dbdf: number;
  gfid: number;
  vgpuType: number;
  vmPid: number;
  swizzId: number;
  numChannels: number;
  numPluginChannels: number;
  chidOffset: number[];
  bDisableDefaultSmcExecPartRestore: boolean;
  numGuestFbSegments: number;
  guestFbPhysAddrList: bigint[];
  guestFbLengthList: bigint[];
  pluginHeapMemoryPhysAddr: bigint;
  pluginHeapMemoryLength: bigint;
  ctrlBuffOffset: bigint;
  initTaskLogBuffOffset: bigint;
  initTaskLogBuffSize: bigint;
  vgpuTaskLogBuffOffset: bigint;
  vgpuTaskLogBuffSize: bigint;
  kernelLogBuffOffset: bigint;
  kernelLogBuffSize: bigint;
  migRmHeapMemoryPhysAddr: bigint;
  migRmHeapMemoryLength: bigint;
  bDeviceProfilingEnabled: boolean;
}

/**
 * Offsets (natural alignment): dbdf 0, gfid 4, vgpuType 8, vmPid 12, swizzId 16, numChannels 20,
 * numPluginChannels 24, chidOffset[84] 28, bDisableDefaultSmcExecPartRestore 364, numGuestFbSegments 368,
 * guestFbPhysAddrList[384] 376, guestFbLengthList[384] 3448, pluginHeapMemoryPhysAddr 6520, …Length 6528,
 * ctrlBuffOffset 6536, initTaskLog 6544/6552, vgpuTaskLog 6560/6568, kernelLog 6576/6584, migRmHeap 6592/6600,
 * bDeviceProfilingEnabled 6608; total 6616 bytes.
 */
export const BOOTLOAD_PARAMS = new StructLayout<BootloadParams>(
  'NV2080_CTRL_VGPU_MGR_INTERNAL_BOOTLOAD_GSP_VGPU_PLUGIN_TASK_PARAMS',
  [
    { name: 'dbdf', type: 'u32' },
    { name: 'gfid', type: 'u32' },
    { name: 'vgpuType', type: 'u32' },
    { name: 'vmPid', type: 'u32' },
    { name: 'swizzId', type: 'u32' },
    { name: 'numChannels', type: 'u32' },
    { name: 'numPluginChannels', type: 'u32' },
    { name: 'chidOffset', type: 'u32', count: NV2080_GPU_MAX_ENGINES },
    { name: 'bDisableDefaultSmcExecPartRestore', type: 'bool' },
    { name: 'numGuestFbSegments', type: 'u32' },
    { name: 'guestFbPhysAddrList', type: 'u64', count: NV2080_CTRL_MAX_VMMU_SEGMENTS },
    { name: 'guestFbLengthList', type: 'u64', count: NV2080_CTRL_MAX_VMMU_SEGMENTS },
    { name: 'pluginHeapMemoryPhysAddr', type: 'u64' },
    { name: 'pluginHeapMemoryLength', type: 'u64' },
    { name: 'ctrlBuffOffset', type: 'u64' },
    { name: 'initTaskLogBuffOffset', type: 'u64' },
    { name: 'initTaskLogBuffSize', type: 'u64' },
    { name: 'vgpuTaskLogBuffOffset', type: 'u64' },
    { name: 'vgpuTaskLogBuffSize', type: 'u64' },
    { name: 'kernelLogBuffOffset', type: 'u64' },
    { name: 'kernelLogBuffSize', type: 'u64' },
    { name: 'migRmHeapMemoryPhysAddr', type: 'u64' },
    { name: 'migRmHeapMemoryLength', type: 'u64' },
    { name: 'bDeviceProfilingEnabled', type: 'bool' },
  ],
);

/** Arrays may be shorter than their C length (rest zero); `numGuestFbSegments` must match the lists given. */
export function encodeBootloadParams(v: EncodeInput<BootloadParams>): Uint8Array {
  const n = v.numGuestFbSegments ?? 0;
  if (n > NV2080_CTRL_MAX_VMMU_SEGMENTS) {
    throw new VgpuError(ErrorCode.InvalidArgument, `numGuestFbSegments ${n} exceeds ${NV2080_CTRL_MAX_VMMU_SEGMENTS}`, {
      hint: 'a guest FB is described by at most 384 VMMU segments',
    });
  }
  return BOOTLOAD_PARAMS.encode(v);
}

export function decodeBootloadParams(bytes: Uint8Array): BootloadParams {
  return BOOTLOAD_PARAMS.decode(bytes);
}

// ---------------------------------------------------------------------------------------------------------------
// SHUTDOWN_GSP_VGPU_PLUGIN_TASK (0x20804002) and VGPU_PLUGIN_CLEANUP (0x20804008): {gfid u32}; 4 bytes each.

export interface GfidParams {
  gfid: number;
}

export const SHUTDOWN_PARAMS = new StructLayout<GfidParams>('NV2080_CTRL_VGPU_MGR_INTERNAL_SHUTDOWN_GSP_VGPU_PLUGIN_TASK_PARAMS', [
  { name: 'gfid', type: 'u32' },
]);
export const PLUGIN_CLEANUP_PARAMS = new StructLayout<GfidParams>('NV2080_CTRL_VGPU_MGR_INTERNAL_VGPU_PLUGIN_CLEANUP_PARAMS', [
  { name: 'gfid', type: 'u32' },
]);

export function encodeShutdownParams(gfid: number): Uint8Array {
  return SHUTDOWN_PARAMS.encode({ gfid });
}
export function decodeShutdownParams(bytes: Uint8Array): GfidParams {
  return SHUTDOWN_PARAMS.decode(bytes);
}
export function encodePluginCleanupParams(gfid: number): Uint8Array {
  return PLUGIN_CLEANUP_PARAMS.encode({ gfid });
}
export function decodePluginCleanupParams(bytes: Uint8Array): GfidParams {
  return PLUGIN_CLEANUP_PARAMS.decode(bytes);
}
