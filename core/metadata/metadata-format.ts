/**
 * Byte layout of the upstream vGPU metadata file `nvidia/vgpu-<gsp version>.bin` (docs/reference/metadata-format.md,
 * RFC v2 patch 03 `metadata.h`). Offsets are relative to the start of the structure they belong to; all integers
 * little-endian. docs/metadata-format.md has the same tables for humans.
 */
import { crc32 as zlibCrc32 } from 'node:zlib';

/** ASCII "NVVGPUMT" at offset 0. */
export const METADATA_MAGIC = 'NVVGPUMT';

/** Main header `metadata_hdr` (232 bytes). */
export const HDR = {
  identifier: 0,
  crc32: 8,
  padding: 12,
  vgpuMajor: 16,
  vgpuMinor: 24,
  vgpuFeatures: 32,
  gspBuildVersion: 160,
  numBlobs: 224,
  size: 232,
} as const;
export const HDR_IDENTIFIER_LEN = 8;
export const HDR_PADDING_LEN = 4;
export const HDR_FEATURES_LEN = 128;
/** `GSP_MAX_BUILD_VERSION_LENGTH` (0x40). */
export const HDR_GSP_VERSION_LEN = 64;
/** The CRC covers bytes [CRC_START, file end): everything after identifier, crc and padding. */
export const CRC_START = 16;

/** Blob header `metadata_blob_hdr` (16 bytes); `size` counts this header too. */
export const BLOB_HDR = { type: 0, size: 8, bytes: 16 } as const;
/** Blob types: only 0 exists; the kernel rejects anything else. */
export const BLOB_TYPE_VGPU_TYPE = 0n;

/** vGPU-type blob header `vgpu_type_blob_hdr` (56 bytes), right after the blob header. */
export const TYPE_BLOB_HDR = {
  deviceId: 0,
  rmctrlVgpuInfoOffset: 8,
  rmctrlVgpuInfoSize: 16,
  kernelStructSize: 24,
  numKernelStructs: 32,
  rmctrlCmd: 40,
  rmctrlSize: 48,
  bytes: 56,
} as const;

/**
 * Kernel type record `struct nvidia_vgpu_type` (96 bytes with natural C alignment,
 * docs/reference/metadata-format.md).
 */
export const TYPE_RECORD = {
  vgpuType: 0,
  name: 4,
  /** bytes 36..40: implicit C padding before the first u64. */
  padding: 36,
  vdevId: 40,
  pdevId: 48,
  fbLength: 56,
  gspHeapSize: 64,
  bar1Length: 72,
  maxInstance: 80,
  eccSupported: 84,
  fbReservation: 88,
  bytes: 96,
} as const;
/** `NVIDIA_VGPU_TYPE_NAME_MAX`. */
export const TYPE_NAME_LEN = 32;

/** RM control the blob's payload is sent with: `NV2080_CTRL_CMD_VGPU_MGR_INTERNAL_PGPU_ADD_VGPU_TYPE`. */
export const NV2080_CTRL_CMD_VGPU_MGR_INTERNAL_PGPU_ADD_VGPU_TYPE = 0x20804003;

/** `NVA081_MAX_VGPU_PER_PGPU`: no type may allow more instances than this. */
export const MAX_INSTANCES_PER_PGPU = 32;
/** `NVA081_MAX_VGPU_TYPES_PER_PGPU` (0x40): upper bound of types in one blob. */
export const MAX_TYPES_PER_BLOB = 0x40;

export const MiB = 1n << 20n;

/** (major, minor, GSP build) triples this implementation accepts; RFC v2 accepts exactly the first one. */
export interface SupportedMetadataVersion {
  readonly vgpuMajor: number;
  readonly vgpuMinor: number;
  readonly gspVersion: string;
}
export const SUPPORTED_METADATA_VERSIONS: readonly SupportedMetadataVersion[] = Object.freeze([
  Object.freeze({ vgpuMajor: 18, vgpuMinor: 1, gspVersion: '570.144' }),
]);

export function isSupportedMetadataVersion(major: number, minor: number, gspVersion: string): boolean {
  return SUPPORTED_METADATA_VERSIONS.some(
    (v) => v.vgpuMajor === major && v.vgpuMinor === minor && v.gspVersion === gspVersion,
  );
}

/** File name the kernel asks `request_firmware` for, e.g. "vgpu-570.144.bin". */
export function metadataFileName(gspVersion: string): string {
  return `vgpu-${gspVersion}.bin`;
}

/**
 * The kernel's checksum: Linux `crc32_le(0xFFFFFFFF, data, len)` — reflected CRC-32 (poly 0xEDB88320) seeded
 * with all ones and WITHOUT the final inversion. zlib's crc32 is the standard CRC-32, i.e. it inverts on the way
 * in and out, so `crc32_le(~0, d) == ~zlib.crc32(d)`.
 */
export function metadataCrc32(data: Uint8Array): number {
  return ~zlibCrc32(data) >>> 0;
}

/** The CRC the header of `file` should carry (over bytes [16, end)). */
export function computeFileCrc(file: Uint8Array): number {
  return metadataCrc32(file.subarray(CRC_START));
}

/** Recompute and store the header CRC in place (for writers and for tests that patch a file). */
export function sealMetadataCrc(file: Uint8Array): Uint8Array {
  new DataView(file.buffer, file.byteOffset, file.byteLength).setUint32(HDR.crc32, computeFileCrc(file), true);
  return file;
}
