/**
 * Our layout of the RM-control payload each metadata blob carries to GSP: the params of
 * `NV2080_CTRL_CMD_VGPU_MGR_INTERNAL_PGPU_ADD_VGPU_TYPE` (0x20804003) holding `NVA081_CTRL_VGPU_INFO`-like records.
 *
 * The real record is opaque to the kernel and release-specific (seed spec §3.2, §11.2), so this is our own compact
 * version with only the fields something here uses; the simulated GSP decodes it with `decodeAddVgpuTypeParams`.
 * Unlike the real params (a fixed 0x40-entry array) the array holds exactly `vgpuInfoCount` records, so the payload
 * size says the count twice and a mismatch is caught. Layout tables: docs/metadata-format.md.
 */
import { cStringProblem, readCString, writeCString } from './c-string.js';
import { ErrorCode, VgpuError } from '../contracts/exceptions.js';
import type { VgpuTypeRecord } from './metadata-file.js';
import { MAX_INSTANCES_PER_PGPU, MAX_TYPES_PER_BLOB } from './metadata-format.js';
import { metadataError } from './metadata-error.js';

/** Display/licensing series, the last letter of the type name (seed spec §3.1). */
export type VgpuSeries = 'Q' | 'B' | 'A' | 'C';
export const VGPU_SERIES: readonly VgpuSeries[] = Object.freeze(['Q', 'B', 'A', 'C']);

/** Offsets inside one 160-byte record (natural alignment, little-endian). */
export const VGPU_INFO = {
  vgpuType: 0,
  vgpuName: 4,
  vgpuClass: 36,
  maxInstance: 68,
  numHeads: 72,
  maxResolutionX: 76,
  maxResolutionY: 80,
  maxPixels: 84,
  frlConfig: 88,
  cudaEnabled: 92,
  eccSupported: 96,
  multiVgpuSupported: 100,
  vdevId: 104,
  pdevId: 112,
  fbLength: 120,
  gspHeapSize: 128,
  fbReservation: 136,
  bar1Length: 144,
  series: 152,
  /** 153..160 reserved, zero. */
  reserved: 153,
  bytes: 160,
} as const;
export const VGPU_INFO_NAME_LEN = 32;
export const VGPU_INFO_CLASS_LEN = 32;
/** `VMIOPD_MAX_HEADS` (seed spec §2.8). */
export const VGPU_MAX_HEADS = 4;

/** Params header: discardVgpuTypes u8, 3 pad bytes, vgpuInfoCount u32, then the records. */
export const ADD_VGPU_TYPE_PARAMS = { discardVgpuTypes: 0, padding: 1, vgpuInfoCount: 4, vgpuInfo: 8 } as const;

/** One type as GSP sees it: the kernel record's fields plus display and licensing facts. */
export interface VgpuInfoRecord {
  readonly id: number;
  readonly name: string;
  /** e.g. "Quadro", "NVS", "Compute" (NVIDIA's vgpuClass). */
  readonly vgpuClass: string;
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
  readonly fbLength: bigint;
  readonly gspHeapSize: bigint;
  readonly fbReservation: bigint;
  readonly bar1LengthMiB: number;
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

/** Write one record into `out` at `pos` (160 bytes, reserved bytes zeroed). */
export function encodeVgpuInfoRecord(rec: VgpuInfoRecord, out: Uint8Array = new Uint8Array(VGPU_INFO.bytes), pos = 0): Uint8Array {
  for (const [s, len, field] of [[rec.name, VGPU_INFO_NAME_LEN, 'name'], [rec.vgpuClass, VGPU_INFO_CLASS_LEN, 'vgpuClass']] as const) {
    const p = cStringProblem(s, len);
    if (p) throw bad(field, p);
  }
  if (!VGPU_SERIES.includes(rec.series)) throw bad('series', `is "${rec.series}"; must be one of ${VGPU_SERIES.join(', ')}`);
  const dv = new DataView(out.buffer, out.byteOffset + pos, VGPU_INFO.bytes);
  out.fill(0, pos, pos + VGPU_INFO.bytes);
  dv.setUint32(VGPU_INFO.vgpuType, u32Field(rec.id, 'id'), true);
  writeCString(out, pos + VGPU_INFO.vgpuName, VGPU_INFO_NAME_LEN, rec.name);
  writeCString(out, pos + VGPU_INFO.vgpuClass, VGPU_INFO_CLASS_LEN, rec.vgpuClass);
  dv.setUint32(VGPU_INFO.maxInstance, u32Field(rec.maxInstance, 'maxInstance'), true);
  dv.setUint32(VGPU_INFO.numHeads, u32Field(rec.numHeads, 'numHeads'), true);
  dv.setUint32(VGPU_INFO.maxResolutionX, u32Field(rec.maxResolutionX, 'maxResolutionX'), true);
  dv.setUint32(VGPU_INFO.maxResolutionY, u32Field(rec.maxResolutionY, 'maxResolutionY'), true);
  dv.setUint32(VGPU_INFO.maxPixels, u32Field(rec.maxPixels, 'maxPixels'), true);
  dv.setUint32(VGPU_INFO.frlConfig, u32Field(rec.frlConfig, 'frlConfig'), true);
  dv.setUint32(VGPU_INFO.cudaEnabled, rec.cudaEnabled ? 1 : 0, true);
  dv.setUint32(VGPU_INFO.eccSupported, rec.eccSupported ? 1 : 0, true);
  dv.setUint32(VGPU_INFO.multiVgpuSupported, rec.multiVgpuSupported ? 1 : 0, true);
  dv.setBigUint64(VGPU_INFO.vdevId, BigInt(u32Field(rec.vdevId, 'vdevId')), true);
  dv.setBigUint64(VGPU_INFO.pdevId, BigInt(u32Field(rec.pdevId, 'pdevId')), true);
  dv.setBigUint64(VGPU_INFO.fbLength, u64Field(rec.fbLength, 'fbLength'), true);
  dv.setBigUint64(VGPU_INFO.gspHeapSize, u64Field(rec.gspHeapSize, 'gspHeapSize'), true);
  dv.setBigUint64(VGPU_INFO.fbReservation, u64Field(rec.fbReservation, 'fbReservation'), true);
  dv.setBigUint64(VGPU_INFO.bar1Length, BigInt(u32Field(rec.bar1LengthMiB, 'bar1LengthMiB')), true);
  out[pos + VGPU_INFO.series] = rec.series.charCodeAt(0);
  return out;
}

/**
 * Read one record at `bytes[pos]`. Strict like the metadata reader: booleans 0/1, a known series, NUL-terminated
 * ASCII strings, zero reserved bytes. Errors are VgpuError(Metadata) naming `baseOffset + pos + field offset`.
 */
export function decodeVgpuInfoRecord(bytes: Uint8Array, pos = 0, opts: { baseOffset?: number; label?: string } = {}): VgpuInfoRecord {
  const base = (opts.baseOffset ?? 0) + pos;
  const label = opts.label ?? 'vgpu_info';
  if (pos < 0 || pos + VGPU_INFO.bytes > bytes.byteLength) {
    throw metadataError(base, label, `record truncated: needs ${VGPU_INFO.bytes} bytes, ${Math.max(0, bytes.byteLength - pos)} left`);
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset + pos, VGPU_INFO.bytes);
  const u32 = (o: number): number => dv.getUint32(o, true);
  const err = (o: number, field: string, problem: string): VgpuError => metadataError(base + o, `${label}.${field}`, problem);
  const bool = (o: number, field: string): boolean => {
    const v = u32(o);
    if (v > 1) throw err(o, field, `${v} must be 0 or 1`);
    return v === 1;
  };
  const u64AsU32 = (o: number, field: string): number => {
    const v = dv.getBigUint64(o, true);
    if (v > 0xffffffffn) throw err(o, field, `${v} does not fit 32 bits`);
    return Number(v);
  };

  const id = u32(VGPU_INFO.vgpuType);
  if (id === 0) throw err(VGPU_INFO.vgpuType, 'vgpuType', 'type id 0 is reserved for "no type"');
  const name = readCString(bytes, pos + VGPU_INFO.vgpuName, VGPU_INFO_NAME_LEN, `${label}.vgpuName`, base + VGPU_INFO.vgpuName);
  const vgpuClass = readCString(bytes, pos + VGPU_INFO.vgpuClass, VGPU_INFO_CLASS_LEN, `${label}.vgpuClass`, base + VGPU_INFO.vgpuClass);
  const maxInstance = u32(VGPU_INFO.maxInstance);
  if (maxInstance < 1 || maxInstance > MAX_INSTANCES_PER_PGPU) throw err(VGPU_INFO.maxInstance, 'maxInstance', `${maxInstance} must be 1..${MAX_INSTANCES_PER_PGPU}`);
  const numHeads = u32(VGPU_INFO.numHeads);
  if (numHeads > VGPU_MAX_HEADS) throw err(VGPU_INFO.numHeads, 'numHeads', `${numHeads} must be 0..${VGPU_MAX_HEADS}`);
  const seriesByte = bytes[pos + VGPU_INFO.series]!;
  const series = String.fromCharCode(seriesByte) as VgpuSeries;
  if (!VGPU_SERIES.includes(series)) throw err(VGPU_INFO.series, 'series', `byte ${seriesByte} is not one of ${VGPU_SERIES.join(', ')}`);
  for (let o = VGPU_INFO.reserved; o < VGPU_INFO.bytes; o++) {
    if (bytes[pos + o] !== 0) throw err(o, 'reserved', 'reserved bytes must be zero');
  }
  return Object.freeze({
    id,
    name,
    vgpuClass,
    maxInstance,
    numHeads,
    maxResolutionX: u32(VGPU_INFO.maxResolutionX),
    maxResolutionY: u32(VGPU_INFO.maxResolutionY),
    maxPixels: u32(VGPU_INFO.maxPixels),
    frlConfig: u32(VGPU_INFO.frlConfig),
    cudaEnabled: bool(VGPU_INFO.cudaEnabled, 'cudaEnabled'),
    eccSupported: bool(VGPU_INFO.eccSupported, 'eccSupported'),
    multiVgpuSupported: bool(VGPU_INFO.multiVgpuSupported, 'multiVgpuSupported'),
    vdevId: u64AsU32(VGPU_INFO.vdevId, 'vdevId'),
    pdevId: u64AsU32(VGPU_INFO.pdevId, 'pdevId'),
    fbLength: dv.getBigUint64(VGPU_INFO.fbLength, true),
    gspHeapSize: dv.getBigUint64(VGPU_INFO.gspHeapSize, true),
    fbReservation: dv.getBigUint64(VGPU_INFO.fbReservation, true),
    bar1LengthMiB: u64AsU32(VGPU_INFO.bar1Length, 'bar1Length'),
    series,
  });
}

/** The ADD_VGPU_TYPE params for `infos` (exactly 8 + 160 * count bytes). */
export function encodeAddVgpuTypeParams(params: AddVgpuTypeParams): Uint8Array {
  const n = params.infos.length;
  if (n < 1 || n > MAX_TYPES_PER_BLOB) throw bad('infos', `has ${n} records; must be 1..${MAX_TYPES_PER_BLOB}`);
  const out = new Uint8Array(ADD_VGPU_TYPE_PARAMS.vgpuInfo + n * VGPU_INFO.bytes);
  out[ADD_VGPU_TYPE_PARAMS.discardVgpuTypes] = params.discardVgpuTypes ? 1 : 0;
  new DataView(out.buffer).setUint32(ADD_VGPU_TYPE_PARAMS.vgpuInfoCount, n, true);
  params.infos.forEach((rec, i) => encodeVgpuInfoRecord(rec, out, ADD_VGPU_TYPE_PARAMS.vgpuInfo + i * VGPU_INFO.bytes));
  return out;
}

/**
 * Decode an uploaded payload (what the simulated GSP does on 0x20804003). `baseOffset` shifts error offsets, e.g.
 * to the payload's position in the metadata file.
 */
export function decodeAddVgpuTypeParams(payload: Uint8Array, opts: { baseOffset?: number } = {}): AddVgpuTypeParams {
  const base = opts.baseOffset ?? 0;
  const P = ADD_VGPU_TYPE_PARAMS;
  if (payload.byteLength < P.vgpuInfo) throw metadataError(base + payload.byteLength, 'add_vgpu_type_params', `payload truncated: ${payload.byteLength} bytes, the header alone is ${P.vgpuInfo}`);
  const discard = payload[P.discardVgpuTypes]!;
  if (discard > 1) throw metadataError(base + P.discardVgpuTypes, 'discardVgpuTypes', `${discard} must be 0 or 1`);
  for (let o = P.padding; o < P.vgpuInfoCount; o++) {
    if (payload[o] !== 0) throw metadataError(base + o, 'padding', 'padding must be zero');
  }
  const count = new DataView(payload.buffer, payload.byteOffset, payload.byteLength).getUint32(P.vgpuInfoCount, true);
  if (count < 1 || count > MAX_TYPES_PER_BLOB) throw metadataError(base + P.vgpuInfoCount, 'vgpuInfoCount', `${count} must be 1..${MAX_TYPES_PER_BLOB}`);
  const expected = P.vgpuInfo + count * VGPU_INFO.bytes;
  if (payload.byteLength !== expected) {
    throw metadataError(base + P.vgpuInfoCount, 'vgpuInfoCount', `${count} records need a ${expected}-byte payload, got ${payload.byteLength}`);
  }
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
