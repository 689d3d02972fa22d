/**
 * Writer of the vGPU metadata file. Deterministic: the bytes depend only on the spec (blobs and types in the
 * order given, all padding zero, no timestamps). `buildMetadata` re-reads its own output with the strict reader,
 * so it never emits a file the daemon (or the kernel) would refuse.
 */
import { ErrorCode, VgpuError } from '../contracts/exceptions.js';
import { cStringProblem, writeCString } from './c-string.js';
import type { MetadataSpec } from './metadata-file.js';
import {
  BLOB_HDR,
  BLOB_TYPE_VGPU_TYPE,
  HDR,
  HDR_FEATURES_LEN,
  HDR_GSP_VERSION_LEN,
  METADATA_MAGIC,
  sealMetadataCrc,
  TYPE_BLOB_HDR,
  TYPE_NAME_LEN,
  TYPE_RECORD,
} from './metadata-format.js';
import { parseMetadata } from './metadata-reader.js';

function bad(field: string, problem: string): VgpuError {
  return new VgpuError(ErrorCode.InvalidArgument, `metadata spec: ${field} ${problem}`, {
    hint: 'fix the metadata source (YAML) and rebuild',
    details: { field },
  });
}

function checkInt(v: number, max: number, field: string): void {
  if (!Number.isInteger(v) || v < 0 || v > max) throw bad(field, `is ${v}; must be an integer 0..${max}`);
}

function checkU64(v: bigint, field: string): void {
  if (typeof v !== 'bigint' || v < 0n || v > 0xffffffffffffffffn) throw bad(field, `is ${String(v)}; must be a bigint 0..2^64-1`);
}

/**
 * Lay out `spec` as bytes with a correct CRC, checking only that each value fits its field. Tests use it to craft
 * files the reader must refuse; everything else should call `buildMetadata`.
 */
export function encodeMetadataUnchecked(spec: MetadataSpec): Uint8Array {
  checkInt(spec.vgpuMajor, Number.MAX_SAFE_INTEGER, 'vgpuMajor');
  checkInt(spec.vgpuMinor, Number.MAX_SAFE_INTEGER, 'vgpuMinor');
  const vp = cStringProblem(spec.gspVersion, HDR_GSP_VERSION_LEN);
  if (vp) throw bad('gspVersion', vp);
  if (spec.features !== undefined && spec.features.byteLength !== HDR_FEATURES_LEN) {
    throw bad('features', `is ${spec.features.byteLength} bytes; must be exactly ${HDR_FEATURES_LEN}`);
  }

  const blobSizes = spec.blobs.map((b) => BLOB_HDR.bytes + TYPE_BLOB_HDR.bytes + b.types.length * TYPE_RECORD.bytes + b.rmctrlPayload.byteLength);
  const total = HDR.size + blobSizes.reduce((a, b) => a + b, 0);
  const out = new Uint8Array(total);
  const dv = new DataView(out.buffer);

  for (let i = 0; i < METADATA_MAGIC.length; i++) out[HDR.identifier + i] = METADATA_MAGIC.charCodeAt(i);
  dv.setBigUint64(HDR.vgpuMajor, BigInt(spec.vgpuMajor), true);
  dv.setBigUint64(HDR.vgpuMinor, BigInt(spec.vgpuMinor), true);
  if (spec.features) out.set(spec.features, HDR.vgpuFeatures);
  writeCString(out, HDR.gspBuildVersion, HDR_GSP_VERSION_LEN, spec.gspVersion);
  dv.setBigUint64(HDR.numBlobs, BigInt(spec.blobs.length), true);

  let pos: number = HDR.size;
  spec.blobs.forEach((b, i) => {
    const f = `blobs[${i}]`;
    checkInt(b.deviceId, 0xffffffff, `${f}.deviceId`);
    checkInt(b.rmctrlCmd, 0xffffffff, `${f}.rmctrlCmd`);
    const infoOff = b.rmctrlVgpuInfoOffset ?? 0n;
    const infoSize = b.rmctrlVgpuInfoSize ?? 0n;
    checkU64(infoOff, `${f}.rmctrlVgpuInfoOffset`);
    checkU64(infoSize, `${f}.rmctrlVgpuInfoSize`);
    const size = blobSizes[i]!;
    dv.setBigUint64(pos + BLOB_HDR.type, BLOB_TYPE_VGPU_TYPE, true);
    dv.setBigUint64(pos + BLOB_HDR.size, BigInt(size), true);
    const h = pos + BLOB_HDR.bytes;
    const kss = b.types.length * TYPE_RECORD.bytes;
    dv.setBigUint64(h + TYPE_BLOB_HDR.deviceId, BigInt(b.deviceId), true);
    dv.setBigUint64(h + TYPE_BLOB_HDR.rmctrlVgpuInfoOffset, infoOff, true);
    dv.setBigUint64(h + TYPE_BLOB_HDR.rmctrlVgpuInfoSize, infoSize, true);
    dv.setBigUint64(h + TYPE_BLOB_HDR.kernelStructSize, BigInt(kss), true);
    dv.setBigUint64(h + TYPE_BLOB_HDR.numKernelStructs, BigInt(b.types.length), true);
    dv.setBigUint64(h + TYPE_BLOB_HDR.rmctrlCmd, BigInt(b.rmctrlCmd), true);
    dv.setBigUint64(h + TYPE_BLOB_HDR.rmctrlSize, BigInt(b.rmctrlPayload.byteLength), true);
    let r = h + TYPE_BLOB_HDR.bytes;
    b.types.forEach((t, j) => {
      const tf = `${f}.types[${j}]`;
      checkInt(t.id, 0xffffffff, `${tf}.id`);
      const np = cStringProblem(t.name, TYPE_NAME_LEN);
      if (np) throw bad(`${tf}.name`, np);
      checkInt(t.vdevId, Number.MAX_SAFE_INTEGER, `${tf}.vdevId`);
      checkInt(t.pdevId, Number.MAX_SAFE_INTEGER, `${tf}.pdevId`);
      checkU64(t.fbLength, `${tf}.fbLength`);
      checkU64(t.gspHeapSize, `${tf}.gspHeapSize`);
      checkInt(t.bar1LengthMiB, Number.MAX_SAFE_INTEGER, `${tf}.bar1LengthMiB`);
      checkInt(t.maxInstance, 0xffffffff, `${tf}.maxInstance`);
      checkU64(t.fbReservation, `${tf}.fbReservation`);
      dv.setUint32(r + TYPE_RECORD.vgpuType, t.id, true);
      writeCString(out, r + TYPE_RECORD.name, TYPE_NAME_LEN, t.name);
      dv.setBigUint64(r + TYPE_RECORD.vdevId, BigInt(t.vdevId), true);
      dv.setBigUint64(r + TYPE_RECORD.pdevId, BigInt(t.pdevId), true);
      dv.setBigUint64(r + TYPE_RECORD.fbLength, t.fbLength, true);
      dv.setBigUint64(r + TYPE_RECORD.gspHeapSize, t.gspHeapSize, true);
      dv.setBigUint64(r + TYPE_RECORD.bar1Length, BigInt(t.bar1LengthMiB), true);
      dv.setUint32(r + TYPE_RECORD.maxInstance, t.maxInstance, true);
      dv.setUint32(r + TYPE_RECORD.eccSupported, t.eccSupported ? 1 : 0, true);
      dv.setBigUint64(r + TYPE_RECORD.fbReservation, t.fbReservation, true);
      r += TYPE_RECORD.bytes;
    });
    out.set(b.rmctrlPayload, r);
    pos += size;
  });
  return sealMetadataCrc(out);
}

/** Encode `spec` and prove the result loads with the strict reader (throws its offset/field error otherwise). */
export function buildMetadata(spec: MetadataSpec): Uint8Array {
  const bytes = encodeMetadataUnchecked(spec);
  parseMetadata(bytes);
  return bytes;
}
