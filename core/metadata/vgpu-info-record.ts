/**
 * The RM-control payload each metadata blob carries to GSP: the params of
 * `NV2080_CTRL_CMD_VGPU_MGR_INTERNAL_PGPU_ADD_VGPU_TYPE` (0x20804003), i.e. `{discardVgpuTypes, vgpuInfoCount,
 * vgpuInfo[NVA081_MAX_VGPU_TYPES_PER_PGPU]}` of NVIDIA's `NVA081_CTRL_VGPU_INFO` records, laid out exactly as the
 * C headers lay them out for GSP-RM 570.144 (field order and sizes, natural alignment, little-endian). The kernel
 * copies the payload to GSP unchanged (RFC v2 `metadata_vgpu_type.c`), so these bytes are what a real GSP parses.
 *
 * Sources and the one inferred point (which 570.144 fields exist) are in docs/reference/metadata-format.md: the
 * field list is open-gpu-kernel-modules `src/common/sdk/nvidia/inc/ctrl/ctrla081.h`, the params struct
 * `ctrl2080vgpumgrinternal.h`; the offsets below are computed from the field list (core/firmware-abi/struct-layout.ts)
 * and pinned by hand-worked numbers in test/unit/metadata/vgpu-info-record.test.ts.
 */
import { cStringProblem, readCString, writeCString } from './c-string.js';
import { ErrorCode, VgpuError } from '../contracts/exceptions.js';
import { StructLayout, type FieldSpec } from '../firmware-abi/struct-layout.js';
import type { VgpuTypeRecord } from './metadata-file.js';
import { MAX_INSTANCES_PER_PGPU, MAX_TYPES_PER_BLOB } from './metadata-format.js';
import { metadataError } from './metadata-error.js';

/** Display/licensing series, the last letter of the type name (docs/reference/vgpu-types.md). */
export type VgpuSeries = 'Q' | 'B' | 'A' | 'C';
export const VGPU_SERIES: readonly VgpuSeries[] = Object.freeze(['Q', 'B', 'A', 'C']);

/** `NVA081_VGPU_STRING_BUFFER_SIZE`. */
export const VGPU_INFO_NAME_LEN = 32;
export const VGPU_INFO_CLASS_LEN = 32;
/** `NVA081_VGPU_SIGNATURE_SIZE`. */
export const VGPU_SIGNATURE_LEN = 128;
/** `NV_GRID_LICENSE_INFO_MAX_LENGTH`. */
export const VGPU_LICENSE_LEN = 128;
/** `NV2080_GPU_MAX_NAME_STRING_LENGTH`. */
export const GPU_NAME_LEN = 64;
/** `NVA081_EXTRA_PARAMETERS_SIZE` (u32 words). */
export const VGPU_EXTRA_PARAMS = 1024;
/** `VMIOPD_MAX_HEADS` (RFC v2 `include/nvrm/vgpu.h`). */
export const VGPU_MAX_HEADS = 4;

const u32 = (name: string): FieldSpec => ({ name, type: 'u32' });
const u64 = (name: string): FieldSpec => ({ name, type: 'u64' });

/** `NVA081_CTRL_VGPU_INFO` as GSP-RM 570.144 declares it (5224 bytes, 8-byte aligned). */
export const NVA081_CTRL_VGPU_INFO = new StructLayout('NVA081_CTRL_VGPU_INFO', [
  u32('vgpuType'),
  { name: 'vgpuName', type: 'bytes', count: VGPU_INFO_NAME_LEN },
  { name: 'vgpuClass', type: 'bytes', count: VGPU_INFO_CLASS_LEN },
  { name: 'vgpuSignature', type: 'bytes', count: VGPU_SIGNATURE_LEN },
  { name: 'license', type: 'bytes', count: VGPU_LICENSE_LEN },
  u32('maxInstance'), u32('numHeads'), u32('maxResolutionX'), u32('maxResolutionY'), u32('maxPixels'),
  u32('frlConfig'), u32('cudaEnabled'), u32('eccSupported'), u32('gpuInstanceSize'), u32('multiVgpuSupported'),
  u64('vdevId'), u64('pdevId'), u64('profileSize'), u64('fbLength'), u64('gspHeapSize'), u64('fbReservation'),
  u64('mappableVideoSize'),
  u32('encoderCapacity'),
  u64('bar1Length'),
  u32('frlEnable'),
  { name: 'adapterName', type: 'bytes', count: GPU_NAME_LEN },
  { name: 'adapterName_Unicode', type: 'u16', count: GPU_NAME_LEN },
  { name: 'shortGpuNameString', type: 'bytes', count: GPU_NAME_LEN },
  { name: 'licensedProductName', type: 'bytes', count: VGPU_LICENSE_LEN },
  { name: 'vgpuExtraParams', type: 'u32', count: VGPU_EXTRA_PARAMS },
  u32('ftraceEnable'), u32('gpuDirectSupported'), u32('nvlinkP2PSupported'), u32('multiVgpuExclusive'),
  u32('exclusiveType'), u32('exclusiveSize'), u32('gpuInstanceProfileId'),
  u32('placementSize'), u32('homogeneousPlacementCount'),
  { name: 'homogeneousPlacementIds', type: 'u32', count: MAX_INSTANCES_PER_PGPU },
  u32('heterogeneousPlacementCount'),
  { name: 'heterogeneousPlacementIds', type: 'u32', count: MAX_INSTANCES_PER_PGPU },
]);

/** `NV2080_CTRL_VGPU_MGR_INTERNAL_PGPU_ADD_VGPU_TYPE_PARAMS`: a fixed array, whatever `vgpuInfoCount` says. */
export const ADD_VGPU_TYPE_PARAMS_LAYOUT = new StructLayout('NV2080_CTRL_VGPU_MGR_INTERNAL_PGPU_ADD_VGPU_TYPE_PARAMS', [
  { name: 'discardVgpuTypes', type: 'bool' },
  u32('vgpuInfoCount'),
  { name: 'vgpuInfo', type: NVA081_CTRL_VGPU_INFO, count: MAX_TYPES_PER_BLOB },
]);

const I = (name: string): number => NVA081_CTRL_VGPU_INFO.field(name).offset;

/** Offsets inside one record, by field name (computed, see the header). */
export const VGPU_INFO = {
  vgpuType: I('vgpuType'),
  vgpuName: I('vgpuName'),
  vgpuClass: I('vgpuClass'),
  vgpuSignature: I('vgpuSignature'),
  license: I('license'),
  maxInstance: I('maxInstance'),
  numHeads: I('numHeads'),
  maxResolutionX: I('maxResolutionX'),
  maxResolutionY: I('maxResolutionY'),
  maxPixels: I('maxPixels'),
  frlConfig: I('frlConfig'),
  cudaEnabled: I('cudaEnabled'),
  eccSupported: I('eccSupported'),
  gpuInstanceSize: I('gpuInstanceSize'),
  multiVgpuSupported: I('multiVgpuSupported'),
  vdevId: I('vdevId'),
  pdevId: I('pdevId'),
  profileSize: I('profileSize'),
  fbLength: I('fbLength'),
  gspHeapSize: I('gspHeapSize'),
  fbReservation: I('fbReservation'),
  mappableVideoSize: I('mappableVideoSize'),
  encoderCapacity: I('encoderCapacity'),
  bar1Length: I('bar1Length'),
  frlEnable: I('frlEnable'),
  adapterName: I('adapterName'),
  licensedProductName: I('licensedProductName'),
  bytes: NVA081_CTRL_VGPU_INFO.size,
} as const;

/** Params offsets: discardVgpuTypes (NvBool), 3 pad bytes, vgpuInfoCount, the 8-aligned record array. */
export const ADD_VGPU_TYPE_PARAMS = {
  discardVgpuTypes: ADD_VGPU_TYPE_PARAMS_LAYOUT.offsetOf('discardVgpuTypes'),
  padding: 1,
  vgpuInfoCount: ADD_VGPU_TYPE_PARAMS_LAYOUT.offsetOf('vgpuInfoCount'),
  vgpuInfo: ADD_VGPU_TYPE_PARAMS_LAYOUT.offsetOf('vgpuInfo'),
  bytes: ADD_VGPU_TYPE_PARAMS_LAYOUT.size,
} as const;

/** One type as GSP sees it: the fields of NVA081_CTRL_VGPU_INFO this project fills; the rest are zero. */
export interface VgpuInfoRecord {
  readonly id: number;
  readonly name: string;
  /** e.g. "Quadro", "NVS", "Compute" (NVIDIA's vgpuClass). */
  readonly vgpuClass: string;
  /** License feature string, e.g. "GRID-Virtual-PC,2.0;…" ('' = none given). */
  readonly license: string;
  readonly maxInstance: number;
  readonly numHeads: number;
  readonly maxResolutionX: number;
  readonly maxResolutionY: number;
  /** Total pixels over all heads. */
  readonly maxPixels: number;
  /** Frame-rate limiter setting (frames per second; 0 = off). */
  readonly frlConfig: number;
  readonly cudaEnabled: boolean;
  readonly eccSupported: boolean;
  readonly multiVgpuSupported: boolean;
  readonly vdevId: number;
  readonly pdevId: number;
  /** The profile's size: the nominal FB of the type's name (N GiB for an -N<series> type). */
  readonly profileSize: bigint;
  /** FB the guest sees (≤ profileSize: the management heap and reservation live inside the profile). */
  readonly fbLength: bigint;
  readonly gspHeapSize: bigint;
  readonly fbReservation: bigint;
  /** BAR1 window size in MiB. */
  readonly bar1LengthMiB: number;
  /** 1 when the frame-rate limiter is on for this type. */
  readonly frlEnable: boolean;
  /** Derived from the name's last letter (the record has no series field). */
  readonly series: VgpuSeries;
}

export interface AddVgpuTypeParams {
  /** Drop previously uploaded types first (the RFC sends true). */
  readonly discardVgpuTypes: boolean;
  readonly infos: readonly VgpuInfoRecord[];
}

function bad(field: string, problem: string): VgpuError {
  return new VgpuError(ErrorCode.InvalidArgument, `vgpu info: ${field} ${problem}`, { hint: 'fix the type definition', details: { field } });
}

function u32Field(v: number, field: string): number {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw bad(field, `is ${v}; must be a 32-bit unsigned integer`);
  return v;
}

function u64Field(v: bigint, field: string): bigint {
  if (typeof v !== 'bigint' || v < 0n || v > 0xffffffffffffffffn) throw bad(field, `is ${String(v)}; must be a 64-bit unsigned bigint`);
  return v;
}

/** The series letter of a type name ("NVIDIA L40-24Q" → 'Q'), or undefined when the name has none. */
export function seriesOf(name: string): VgpuSeries | undefined {
  const s = name.slice(-1) as VgpuSeries;
  return VGPU_SERIES.includes(s) ? s : undefined;
}

/** The nominal FB of a type name: N GiB for "…-N<series>", or undefined when the name does not end that way. */
export function nominalProfileBytes(name: string): bigint | undefined {
  const m = /-(\d+)[QBAC]$/.exec(name);
  return m === null ? undefined : BigInt(m[1]!) << 30n;
}

/** Write one record into `out` at `pos` (5224 bytes; the fields not modelled are zero). */
export function encodeVgpuInfoRecord(rec: VgpuInfoRecord, out: Uint8Array = new Uint8Array(VGPU_INFO.bytes), pos = 0): Uint8Array {
  for (const [s, len, field, empty] of [
    [rec.name, VGPU_INFO_NAME_LEN, 'name', false], [rec.vgpuClass, VGPU_INFO_CLASS_LEN, 'vgpuClass', false],
    [rec.license, VGPU_LICENSE_LEN, 'license', true],
  ] as const) {
    const p = cStringProblem(s, len, empty);
    if (p) throw bad(field, p);
  }
  if (seriesOf(rec.name) !== rec.series) throw bad('series', `"${rec.series}" does not match the last letter of "${rec.name}"`);
  if (rec.fbLength > rec.profileSize) throw bad('fbLength', `${rec.fbLength} exceeds profileSize ${rec.profileSize}: the guest FB lives inside the profile`);
  const dv = new DataView(out.buffer, out.byteOffset + pos, VGPU_INFO.bytes);
  out.fill(0, pos, pos + VGPU_INFO.bytes);
  const set32 = (o: number, v: number, f: string): void => dv.setUint32(o, u32Field(v, f), true);
  const set64 = (o: number, v: bigint, f: string): void => dv.setBigUint64(o, u64Field(v, f), true);
  set32(VGPU_INFO.vgpuType, rec.id, 'id');
  writeCString(out, pos + VGPU_INFO.vgpuName, VGPU_INFO_NAME_LEN, rec.name);
  writeCString(out, pos + VGPU_INFO.vgpuClass, VGPU_INFO_CLASS_LEN, rec.vgpuClass);
  writeCString(out, pos + VGPU_INFO.license, VGPU_LICENSE_LEN, rec.license);
  set32(VGPU_INFO.maxInstance, rec.maxInstance, 'maxInstance');
  set32(VGPU_INFO.numHeads, rec.numHeads, 'numHeads');
  set32(VGPU_INFO.maxResolutionX, rec.maxResolutionX, 'maxResolutionX');
  set32(VGPU_INFO.maxResolutionY, rec.maxResolutionY, 'maxResolutionY');
  set32(VGPU_INFO.maxPixels, rec.maxPixels, 'maxPixels');
  set32(VGPU_INFO.frlConfig, rec.frlConfig, 'frlConfig');
  set32(VGPU_INFO.cudaEnabled, rec.cudaEnabled ? 1 : 0, 'cudaEnabled');
  set32(VGPU_INFO.eccSupported, rec.eccSupported ? 1 : 0, 'eccSupported');
  set32(VGPU_INFO.multiVgpuSupported, rec.multiVgpuSupported ? 1 : 0, 'multiVgpuSupported');
  set64(VGPU_INFO.vdevId, BigInt(u32Field(rec.vdevId, 'vdevId')), 'vdevId');
  set64(VGPU_INFO.pdevId, BigInt(u32Field(rec.pdevId, 'pdevId')), 'pdevId');
  set64(VGPU_INFO.profileSize, rec.profileSize, 'profileSize');
  set64(VGPU_INFO.fbLength, rec.fbLength, 'fbLength');
  set64(VGPU_INFO.gspHeapSize, rec.gspHeapSize, 'gspHeapSize');
  set64(VGPU_INFO.fbReservation, rec.fbReservation, 'fbReservation');
  set64(VGPU_INFO.bar1Length, BigInt(u32Field(rec.bar1LengthMiB, 'bar1LengthMiB')), 'bar1LengthMiB');
  set32(VGPU_INFO.frlEnable, rec.frlEnable ? 1 : 0, 'frlEnable');
  return out;
}

/**
 * Read one record at `bytes[pos]`. Checks what the simulated firmware relies on — NUL-terminated ASCII strings,
 * 0/1 flags, a name ending in a series letter, maxInstance 1..32, heads ≤ 4, ids that fit 32 bits, a guest FB inside
 * the profile — and ignores the fields it does not model (a real GSP fills or ignores those itself). Errors are
 * VgpuError(Metadata) naming `baseOffset + pos + field offset`.
 */
export function decodeVgpuInfoRecord(bytes: Uint8Array, pos = 0, opts: { baseOffset?: number; label?: string } = {}): VgpuInfoRecord {
  const base = (opts.baseOffset ?? 0) + pos;
  const label = opts.label ?? 'vgpu_info';
  if (pos < 0 || pos + VGPU_INFO.bytes > bytes.byteLength) {
    throw metadataError(base, label, `record truncated: needs ${VGPU_INFO.bytes} bytes, ${Math.max(0, bytes.byteLength - pos)} left`);
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset + pos, VGPU_INFO.bytes);
  const u32 = (o: number): number => dv.getUint32(o, true);
  const u64 = (o: number): bigint => dv.getBigUint64(o, true);
  const err = (o: number, field: string, problem: string): VgpuError => metadataError(base + o, `${label}.${field}`, problem);
  const flag = (o: number, field: string): boolean => {
    const v = u32(o);
    if (v > 1) throw err(o, field, `${v} must be 0 or 1`);
    return v === 1;
  };
  const u64AsU32 = (o: number, field: string): number => {
    const v = u64(o);
    if (v > 0xffffffffn) throw err(o, field, `${v} does not fit 32 bits`);
    return Number(v);
  };
  const str = (o: number, len: number, field: string, allowEmpty = false): string =>
    readCString(bytes, pos + o, len, `${label}.${field}`, base + o, allowEmpty);

  const id = u32(VGPU_INFO.vgpuType);
  if (id === 0) throw err(VGPU_INFO.vgpuType, 'vgpuType', 'type id 0 is NVA081_CTRL_VGPU_CONFIG_INVALID_TYPE');
  const name = str(VGPU_INFO.vgpuName, VGPU_INFO_NAME_LEN, 'vgpuName');
  const series = seriesOf(name);
  if (series === undefined) throw err(VGPU_INFO.vgpuName, 'vgpuName', `"${name}" does not end in a series letter (${VGPU_SERIES.join(', ')})`);
  const vgpuClass = str(VGPU_INFO.vgpuClass, VGPU_INFO_CLASS_LEN, 'vgpuClass');
  const license = str(VGPU_INFO.license, VGPU_LICENSE_LEN, 'license', true);
  const maxInstance = u32(VGPU_INFO.maxInstance);
  if (maxInstance < 1 || maxInstance > MAX_INSTANCES_PER_PGPU) throw err(VGPU_INFO.maxInstance, 'maxInstance', `${maxInstance} must be 1..${MAX_INSTANCES_PER_PGPU}`);
  const numHeads = u32(VGPU_INFO.numHeads);
  if (numHeads > VGPU_MAX_HEADS) throw err(VGPU_INFO.numHeads, 'numHeads', `${numHeads} must be 0..${VGPU_MAX_HEADS}`);
  const profileSize = u64(VGPU_INFO.profileSize);
  const fbLength = u64(VGPU_INFO.fbLength);
  if (fbLength === 0n) throw err(VGPU_INFO.fbLength, 'fbLength', 'a type needs guest FB');
  if (fbLength > profileSize) throw err(VGPU_INFO.fbLength, 'fbLength', `${fbLength} exceeds profileSize ${profileSize}`);
  return Object.freeze({
    id,
    name,
    vgpuClass,
    license,
    maxInstance,
    numHeads,
    maxResolutionX: u32(VGPU_INFO.maxResolutionX),
    maxResolutionY: u32(VGPU_INFO.maxResolutionY),
    maxPixels: u32(VGPU_INFO.maxPixels),
    frlConfig: u32(VGPU_INFO.frlConfig),
    cudaEnabled: flag(VGPU_INFO.cudaEnabled, 'cudaEnabled'),
    eccSupported: flag(VGPU_INFO.eccSupported, 'eccSupported'),
    multiVgpuSupported: flag(VGPU_INFO.multiVgpuSupported, 'multiVgpuSupported'),
    vdevId: u64AsU32(VGPU_INFO.vdevId, 'vdevId'),
    pdevId: u64AsU32(VGPU_INFO.pdevId, 'pdevId'),
    profileSize,
    fbLength,
    gspHeapSize: u64(VGPU_INFO.gspHeapSize),
    fbReservation: u64(VGPU_INFO.fbReservation),
    bar1LengthMiB: u64AsU32(VGPU_INFO.bar1Length, 'bar1Length'),
    frlEnable: flag(VGPU_INFO.frlEnable, 'frlEnable'),
    series,
  });
}

/** The ADD_VGPU_TYPE params for `infos`: always the full fixed-size struct (334,344 bytes), unused slots zero. */
export function encodeAddVgpuTypeParams(params: AddVgpuTypeParams): Uint8Array {
  const n = params.infos.length;
  if (n < 1 || n > MAX_TYPES_PER_BLOB) throw bad('infos', `has ${n} records; must be 1..${MAX_TYPES_PER_BLOB}`);
  const out = new Uint8Array(ADD_VGPU_TYPE_PARAMS.bytes);
  out[ADD_VGPU_TYPE_PARAMS.discardVgpuTypes] = params.discardVgpuTypes ? 1 : 0;
  new DataView(out.buffer).setUint32(ADD_VGPU_TYPE_PARAMS.vgpuInfoCount, n, true);
  params.infos.forEach((rec, i) => encodeVgpuInfoRecord(rec, out, ADD_VGPU_TYPE_PARAMS.vgpuInfo + i * VGPU_INFO.bytes));
  return out;
}

/**
 * Decode an uploaded payload (what the simulated GSP does on 0x20804003). Like RM's control dispatch, the params
 * must be exactly `sizeof` the struct; records past `vgpuInfoCount` are not looked at (GSP-RM reads `count`
 * entries). `baseOffset` shifts error offsets, e.g. to the payload's position in the metadata file.
 */
export function decodeAddVgpuTypeParams(payload: Uint8Array, opts: { baseOffset?: number } = {}): AddVgpuTypeParams {
  const base = opts.baseOffset ?? 0;
  const P = ADD_VGPU_TYPE_PARAMS;
  if (payload.byteLength !== P.bytes) {
    throw metadataError(base + Math.min(payload.byteLength, P.bytes), 'add_vgpu_type_params',
      `payload is ${payload.byteLength} bytes; sizeof(NV2080_CTRL_VGPU_MGR_INTERNAL_PGPU_ADD_VGPU_TYPE_PARAMS) is ${P.bytes}`);
  }
  const discard = payload[P.discardVgpuTypes]!;
  if (discard > 1) throw metadataError(base + P.discardVgpuTypes, 'discardVgpuTypes', `${discard} must be 0 or 1`);
  for (let o = P.padding; o < P.vgpuInfoCount; o++) {
    if (payload[o] !== 0) throw metadataError(base + o, 'padding', 'padding must be zero');
  }
  const count = new DataView(payload.buffer, payload.byteOffset, payload.byteLength).getUint32(P.vgpuInfoCount, true);
  if (count < 1 || count > MAX_TYPES_PER_BLOB) throw metadataError(base + P.vgpuInfoCount, 'vgpuInfoCount', `${count} must be 1..${MAX_TYPES_PER_BLOB}`);
  const infos: VgpuInfoRecord[] = [];
  for (let i = 0; i < count; i++) {
    infos.push(decodeVgpuInfoRecord(payload, P.vgpuInfo + i * VGPU_INFO.bytes, { baseOffset: base, label: `vgpuInfo[${i}]` }));
  }
  return Object.freeze({ discardVgpuTypes: discard === 1, infos: Object.freeze(infos) });
}

/** The kernel's view of a type (what goes in the blob's record array) derived from the GSP record. */
export function kernelTypeFromInfo(info: VgpuInfoRecord): VgpuTypeRecord {
  return Object.freeze({
    id: info.id,
    name: info.name,
    vdevId: info.vdevId,
    pdevId: info.pdevId,
    fbLength: info.fbLength,
    gspHeapSize: info.gspHeapSize,
    bar1LengthMiB: info.bar1LengthMiB,
    maxInstance: info.maxInstance,
    eccSupported: info.eccSupported,
    fbReservation: info.fbReservation,
  });
}
