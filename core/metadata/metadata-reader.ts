/**
 * Parser of the vGPU metadata file. It runs the checks in the kernel's order (docs/reference/metadata-format.md:
 * size, CRC, identifier, num_blobs, GSP version, supported version, blob headers, blob contents, device selection) so
 * a file that loads in the upstream driver loads here, and adds the strict checks the kernel lacks
 * (docs/metadata-format.md, "Strictness"). The strict rules also make the accepted form canonical: every byte of an
 * accepted file is captured in the result, so `buildMetadata(parseMetadata(b))` gives back `b`.
 *
 * Pure: the result is a new deep-frozen object (byte arrays are private copies); a failure throws before anything
 * is returned, so nothing is ever half-visible.
 */
import { ErrorCode, VgpuError } from '../contracts/exceptions.js';
import { readCString } from './c-string.js';
import { hex, metadataError } from './metadata-error.js';
import type { MetadataBlob, MetadataFile, VgpuTypeRecord } from './metadata-file.js';
import {
  BLOB_HDR,
  BLOB_TYPE_VGPU_TYPE,
  computeFileCrc,
  CRC_START,
  HDR,
  HDR_FEATURES_LEN,
  HDR_GSP_VERSION_LEN,
  HDR_IDENTIFIER_LEN,
  HDR_PADDING_LEN,
  MAX_INSTANCES_PER_PGPU,
  MAX_TYPES_PER_BLOB,
  METADATA_MAGIC,
  MiB,
  SUPPORTED_METADATA_VERSIONS,
  TYPE_BLOB_HDR,
  TYPE_NAME_LEN,
  TYPE_RECORD,
} from './metadata-format.js';

export interface ParseMetadataOptions {
  /** The running GSP build version (from GSP_GET_FEATURES); the header must carry exactly this string. */
  expectedGspVersion?: string;
  /** The PF's PCI device id; when given, the file must hold a blob for it (the kernel fails with zero types). */
  pfDeviceId?: number;
}

/** The management heap must at least hold the CPU<->GSP comm buffer (docs/reference/create-order.md, 0x274000 bytes). */
const MIN_GSP_HEAP = 0x274000n;
const PAGE = 4096n;
/** Sanity ceiling for byte sizes (256 TiB): far above any GPU, low enough that arithmetic stays exact. */
const MAX_BYTES = 1n << 48n;
const MAX_BAR1_MIB = 1n << 20n;
const U32_MAX = 0xffffffffn;
const U16_MAX = 0xffffn;

/** Walked but not yet validated blob: where it is and how big the header says it is. */
interface BlobExtent {
  index: number;
  offset: number;
  size: number;
}

export function parseMetadata(bytes: Uint8Array, opts: ParseMetadataOptions = {}): MetadataFile {
  if (!(bytes instanceof Uint8Array)) {
    throw new VgpuError(ErrorCode.InvalidArgument, 'parseMetadata expects a Uint8Array', { hint: 'pass the file contents (fs.readFileSync)' });
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const size = bytes.byteLength;
  const u64 = (off: number): bigint => dv.getBigUint64(off, true);

  // 1. The file must be larger than the header (kernel: size <= sizeof(hdr) -> -EINVAL).
  if (size <= HDR.size) {
    throw metadataError(size, 'metadata_hdr', `file is truncated: ${size} bytes, but the header alone is ${HDR.size} and at least one blob must follow`);
  }

  // 2. CRC over [16, end).
  const storedCrc = dv.getUint32(HDR.crc32, true);
  const crc = computeFileCrc(bytes);
  if (storedCrc !== crc) {
    throw metadataError(HDR.crc32, 'crc32', `checksum mismatch: header says ${hex(storedCrc)}, bytes [${CRC_START}, ${size}) give ${hex(crc)}`,
      'the file is damaged (truncated copy, bad download) or was edited without resealing; rebuild or re-fetch it');
  }

  // 3. Identifier.
  for (let i = 0; i < HDR_IDENTIFIER_LEN; i++) {
    if (bytes[HDR.identifier + i] !== METADATA_MAGIC.charCodeAt(i)) {
      throw metadataError(HDR.identifier + i, 'identifier', `not a vGPU metadata file: identifier is not "${METADATA_MAGIC}"`,
        'the file is not a vGPU metadata file; check the path');
    }
  }
  // Strict: the padding is outside the CRC, so the only way to keep it trustworthy is to require zeros.
  for (let i = 0; i < HDR_PADDING_LEN; i++) {
    if (bytes[HDR.padding + i] !== 0) throw metadataError(HDR.padding + i, 'padding', 'header padding must be zero');
  }

  // 4. num_blobs: at least one, and no more than 16-byte blob headers could fit in what follows the header.
  const numBlobs = u64(HDR.numBlobs);
  const maxBlobs = BigInt(Math.floor((size - HDR.size) / BLOB_HDR.bytes));
  if (numBlobs < 1n || numBlobs > maxBlobs) {
    throw metadataError(HDR.numBlobs, 'num_blobs', `${numBlobs} is out of range: must be 1..${maxBlobs} for a ${size}-byte file`);
  }

  // 5. GSP build version must equal the running one.
  const gspVersion = readCString(bytes, HDR.gspBuildVersion, HDR_GSP_VERSION_LEN, 'gsp_build_version', HDR.gspBuildVersion);
  checkGspVersion(gspVersion, opts.expectedGspVersion);

  // 6. (major, minor, gsp version) must be a supported triple. Point at the first field no supported entry has.
  const major = u64(HDR.vgpuMajor);
  const minor = u64(HDR.vgpuMinor);
  const supported = SUPPORTED_METADATA_VERSIONS.map((v) => `${v.vgpuMajor}.${v.vgpuMinor}/${v.gspVersion}`).join(', ');
  const byMajor = SUPPORTED_METADATA_VERSIONS.filter((v) => BigInt(v.vgpuMajor) === major);
  const byMinor = byMajor.filter((v) => BigInt(v.vgpuMinor) === minor);
  const unsupported = (off: number, field: string): VgpuError =>
    metadataError(off, field, `version ${major}.${minor}/"${gspVersion}" is not supported (supported: ${supported})`,
      'use a metadata file and GSP firmware of a supported vGPU release');
  if (byMajor.length === 0) throw unsupported(HDR.vgpuMajor, 'vgpu_major');
  if (byMinor.length === 0) throw unsupported(HDR.vgpuMinor, 'vgpu_minor');
  if (!byMinor.some((v) => v.gspVersion === gspVersion)) throw unsupported(HDR.gspBuildVersion, 'gsp_build_version');

  // 7. Blob headers: walk by `size`, each must be a vGPU-type blob that fits in the file.
  const extents: BlobExtent[] = [];
  let pos: number = HDR.size;
  for (let i = 0; i < Number(numBlobs); i++) {
    const f = (name: string): string => `blob[${i}].${name}`;
    if (pos + BLOB_HDR.bytes > size) {
      throw metadataError(pos, f('header'), `file is truncated: blob header needs ${BLOB_HDR.bytes} bytes, ${size - pos} left`);
    }
    const type = u64(pos + BLOB_HDR.type);
    if (type !== BLOB_TYPE_VGPU_TYPE) throw metadataError(pos + BLOB_HDR.type, f('type'), `unknown blob type ${type} (only 0 = vGPU type exists)`);
    const blobSize = u64(pos + BLOB_HDR.size);
    const left = BigInt(size - pos);
    if (blobSize <= BigInt(BLOB_HDR.bytes) || blobSize > left) {
      throw metadataError(pos + BLOB_HDR.size, f('size'), `${blobSize} is out of range: must be more than ${BLOB_HDR.bytes} and at most the ${left} bytes left in the file`);
    }
    extents.push({ index: i, offset: pos, size: Number(blobSize) });
    pos += Number(blobSize);
  }
  // Strict: the kernel ignores bytes after the last blob; we refuse them (a wrong num_blobs would hide a blob).
  if (pos !== size) throw metadataError(pos, 'file_end', `${size - pos} trailing bytes after the last of ${numBlobs} blobs`);

  // 8. Blob contents.
  const blobs: MetadataBlob[] = [];
  const seenDevices = new Map<number, number>();
  for (const ext of extents) {
    const blob = parseTypeBlob(bytes, dv, ext);
    const prev = seenDevices.get(blob.deviceId);
    if (prev !== undefined) {
      // Strict: the kernel lets the last matching blob win; two answers for one device is an authoring error.
      throw metadataError(ext.offset + BLOB_HDR.bytes + TYPE_BLOB_HDR.deviceId, `blob[${ext.index}].device_id`,
        `device ${hex(blob.deviceId)} already has blob[${prev}]; one blob per device id`);
    }
    seenDevices.set(blob.deviceId, ext.index);
    blobs.push(blob);
  }

  // 9. Setup selects the PF's blob; zero installed types fails the manager (post-setup).
  checkPfDevice([...seenDevices.keys()], opts.pfDeviceId);

  return Object.freeze({
    vgpuMajor: Number(major),
    vgpuMinor: Number(minor),
    gspVersion,
    features: copyOf(bytes, HDR.vgpuFeatures, HDR.vgpuFeatures + HDR_FEATURES_LEN),
    blobs: Object.freeze(blobs),
  });
}

/**
 * The checks `parseMetadata` makes for the running GPU (its GSP build, its PF device id), on an already parsed file:
 * the same errors a fresh parse of the same bytes with these options would throw (a parsed file passed every
 * structural check, so these are the only ones left that can fail). Lets one parse serve several GPUs.
 */
export function checkMetadataFor(file: MetadataFile, opts: ParseMetadataOptions): void {
  checkGspVersion(file.gspVersion, opts.expectedGspVersion);
  checkPfDevice(file.blobs.map((b) => b.deviceId), opts.pfDeviceId);
}

/** Step 5: the header's GSP build version must equal the running one. */
function checkGspVersion(gspVersion: string, expected: string | undefined): void {
  if (expected !== undefined && gspVersion !== expected) {
    throw metadataError(HDR.gspBuildVersion, 'gsp_build_version', `file is for GSP "${gspVersion}" but the running GSP firmware is "${expected}"`,
      `install the metadata file vgpu-${expected}.bin (it must match the GSP firmware exactly)`);
  }
}

/** Step 9: setup selects the PF's blob; zero installed types fails the manager (post-setup). */
function checkPfDevice(devices: readonly number[], pfDeviceId: number | undefined): void {
  if (pfDeviceId !== undefined && !devices.includes(pfDeviceId)) {
    throw metadataError(HDR.size, 'blob.device_id', `no blob for PF device ${hex(pfDeviceId)} (file has ${devices.map(hex).join(', ')})`,
      'this metadata file does not cover the installed GPU; use a file built for it');
  }
}

/**
 * A private copy of bytes [start, end), always a plain Uint8Array. Not `bytes.slice`: on a Node Buffer (what readFile
 * returns) that is a view of the same memory, so the "frozen" result would change with the caller's buffer and keep
 * all of it alive.
 */
function copyOf(bytes: Uint8Array, start: number, end: number): Uint8Array {
  return new Uint8Array(bytes.subarray(start, end));
}

/** The types the file installs for a PF device id, as the kernel's setup would; throws if there are none. */
export function typesFor(file: MetadataFile, pfDeviceId: number): readonly VgpuTypeRecord[] {
  const blob = file.blobs.find((b) => b.deviceId === pfDeviceId);
  if (!blob) {
    throw new VgpuError(ErrorCode.Metadata, `metadata: no vGPU types for PF device ${hex(pfDeviceId)} (file covers ${file.blobs.map((b) => hex(b.deviceId)).join(', ')})`, {
      hint: 'this metadata file does not cover the installed GPU; use a file built for it',
      details: { deviceId: pfDeviceId, devices: file.blobs.map((b) => b.deviceId) },
    });
  }
  return blob.types;
}

function parseTypeBlob(bytes: Uint8Array, dv: DataView, ext: BlobExtent): MetadataBlob {
  const f = (name: string): string => `blob[${ext.index}].${name}`;
  const base = ext.offset + BLOB_HDR.bytes;
  const u64 = (off: number): bigint => dv.getBigUint64(off, true);
  const sizeOff = ext.offset + BLOB_HDR.size;
  if (ext.size < BLOB_HDR.bytes + TYPE_BLOB_HDR.bytes) {
    throw metadataError(sizeOff, f('size'), `${ext.size} is too small for the ${BLOB_HDR.bytes}-byte blob header plus the ${TYPE_BLOB_HDR.bytes}-byte vgpu_type_blob_hdr`);
  }
  const at = (field: keyof typeof TYPE_BLOB_HDR): number => base + TYPE_BLOB_HDR[field];
  const deviceId = u64(at('deviceId'));
  const infoOffset = u64(at('rmctrlVgpuInfoOffset'));
  const infoSize = u64(at('rmctrlVgpuInfoSize'));
  const kss = u64(at('kernelStructSize'));
  const num = u64(at('numKernelStructs'));
  const cmd = u64(at('rmctrlCmd'));
  const rmSize = u64(at('rmctrlSize'));

  // Kernel checks: these five must be nonzero, and the parts must add up to the blob size.
  const nonzero: Array<[bigint, number, string]> = [
    [deviceId, at('deviceId'), 'device_id'],
    [num, at('numKernelStructs'), 'num_kernel_structs'],
    [kss, at('kernelStructSize'), 'kernel_struct_size'],
    [cmd, at('rmctrlCmd'), 'gsp_rmctrl_cmd'],
    [rmSize, at('rmctrlSize'), 'gsp_rmctrl_size'],
  ];
  for (const [v, off, name] of nonzero) if (v === 0n) throw metadataError(off, f(name), 'must be nonzero');
  const hdrBytes = BigInt(BLOB_HDR.bytes + TYPE_BLOB_HDR.bytes);
  if (hdrBytes + kss + rmSize !== BigInt(ext.size)) {
    throw metadataError(sizeOff, f('size'), `${ext.size} does not equal ${hdrBytes} + kernel_struct_size ${kss} + gsp_rmctrl_size ${rmSize}`);
  }

  // Strict checks the kernel lacks.
  if (deviceId > U16_MAX) throw metadataError(at('deviceId'), f('device_id'), `${hex(deviceId)} is not a 16-bit PCI device id`);
  if (cmd > U32_MAX) throw metadataError(at('rmctrlCmd'), f('gsp_rmctrl_cmd'), `${hex(cmd)} is not a 32-bit RM control command`);
  if (num > BigInt(MAX_TYPES_PER_BLOB)) throw metadataError(at('numKernelStructs'), f('num_kernel_structs'), `${num} types; at most ${MAX_TYPES_PER_BLOB} per GPU`);
  // The kernel copies min(stride, sizeof) bytes per record, silently truncating or zero-extending a record of
  // another layout. We know exactly one layout, so the stride must be exactly its size.
  if (kss !== num * BigInt(TYPE_RECORD.bytes)) {
    throw metadataError(at('kernelStructSize'), f('kernel_struct_size'), `${kss} is not num_kernel_structs ${num} x ${TYPE_RECORD.bytes}-byte records (record stride must be ${TYPE_RECORD.bytes})`);
  }
  if (infoOffset > rmSize || infoSize > rmSize - infoOffset) {
    throw metadataError(at('rmctrlVgpuInfoOffset'), f('gsp_rmctrl_vgpu_info_offset'), `info range ${infoOffset}+${infoSize} lies outside the ${rmSize}-byte RM control payload`);
  }

  const dev = Number(deviceId);
  const recBase = base + TYPE_BLOB_HDR.bytes;
  const types: VgpuTypeRecord[] = [];
  const ids = new Set<number>();
  const names = new Set<string>();
  for (let r = 0; r < Number(num); r++) {
    const rec = parseTypeRecord(bytes, dv, recBase + r * TYPE_RECORD.bytes, `${f('type')}[${r}]`, dev);
    if (ids.has(rec.id)) throw metadataError(recBase + r * TYPE_RECORD.bytes + TYPE_RECORD.vgpuType, `${f('type')}[${r}].vgpu_type`, `duplicate type id ${rec.id} in this blob`);
    if (names.has(rec.name)) throw metadataError(recBase + r * TYPE_RECORD.bytes + TYPE_RECORD.name, `${f('type')}[${r}].vgpu_type_name`, `duplicate type name "${rec.name}" in this blob`);
    ids.add(rec.id);
    names.add(rec.name);
    types.push(rec);
  }
  const payloadStart = recBase + Number(kss);
  return Object.freeze({
    deviceId: dev,
    rmctrlCmd: Number(cmd),
    rmctrlPayload: copyOf(bytes, payloadStart, payloadStart + Number(rmSize)),
    rmctrlVgpuInfoOffset: infoOffset,
    rmctrlVgpuInfoSize: infoSize,
    types: Object.freeze(types),
  });
}

function parseTypeRecord(bytes: Uint8Array, dv: DataView, off: number, prefix: string, deviceId: number): VgpuTypeRecord {
  const u64 = (o: number): bigint => dv.getBigUint64(off + o, true);
  const u32 = (o: number): number => dv.getUint32(off + o, true);
  const err = (o: number, name: string, problem: string): VgpuError => metadataError(off + o, `${prefix}.${name}`, problem);

  const id = u32(TYPE_RECORD.vgpuType);
  // 0 means "no type" in sysfs `current_vgpu_type`, so it cannot name one.
  if (id === 0) throw err(TYPE_RECORD.vgpuType, 'vgpu_type', 'type id 0 is reserved for "no type"');
  const name = readCString(bytes, off + TYPE_RECORD.name, TYPE_NAME_LEN, `${prefix}.vgpu_type_name`, off + TYPE_RECORD.name);
  for (let i = 0; i < TYPE_RECORD.vdevId - TYPE_RECORD.padding; i++) {
    if (bytes[off + TYPE_RECORD.padding + i] !== 0) throw err(TYPE_RECORD.padding + i, 'padding', 'struct padding must be zero');
  }
  const vdev = u64(TYPE_RECORD.vdevId);
  if (vdev > U32_MAX || vdev >> 16n === 0n) throw err(TYPE_RECORD.vdevId, 'vdev_id', `${hex(vdev)} is not (device << 16 | subsystem) with a nonzero device id`);
  const pdev = u64(TYPE_RECORD.pdevId);
  if (pdev !== BigInt(deviceId)) throw err(TYPE_RECORD.pdevId, 'pdev_id', `${hex(pdev)} differs from the blob's device id ${hex(deviceId)}`);
  const fb = u64(TYPE_RECORD.fbLength);
  if (fb === 0n || fb % MiB !== 0n || fb > MAX_BYTES) throw err(TYPE_RECORD.fbLength, 'fb_length', `${fb} must be a nonzero multiple of 1 MiB below 2^48`);
  const heap = u64(TYPE_RECORD.gspHeapSize);
  if (heap < MIN_GSP_HEAP || heap % PAGE !== 0n || heap > MAX_BYTES) {
    throw err(TYPE_RECORD.gspHeapSize, 'gsp_heap_size', `${heap} must be a multiple of 4 KiB, at least ${MIN_GSP_HEAP} (the comm buffer) and below 2^48`);
  }
  const bar1 = u64(TYPE_RECORD.bar1Length);
  // It becomes a PCI BAR of the VF, and BAR sizes are powers of two.
  if (bar1 === 0n || (bar1 & (bar1 - 1n)) !== 0n || bar1 > MAX_BAR1_MIB) throw err(TYPE_RECORD.bar1Length, 'bar1_length', `${bar1} MiB must be a power of two, 1..${MAX_BAR1_MIB}`);
  const maxInstance = u32(TYPE_RECORD.maxInstance);
  if (maxInstance < 1 || maxInstance > MAX_INSTANCES_PER_PGPU) throw err(TYPE_RECORD.maxInstance, 'max_instance', `${maxInstance} must be 1..${MAX_INSTANCES_PER_PGPU}`);
  const ecc = u32(TYPE_RECORD.eccSupported);
  if (ecc > 1) throw err(TYPE_RECORD.eccSupported, 'ecc_supported', `${ecc} must be 0 or 1`);
  const fbRes = u64(TYPE_RECORD.fbReservation);
  if (fbRes % PAGE !== 0n || fbRes > MAX_BYTES) throw err(TYPE_RECORD.fbReservation, 'fb_reservation', `${fbRes} must be a multiple of 4 KiB below 2^48`);

  return Object.freeze({
    id,
    name,
    vdevId: Number(vdev),
    pdevId: deviceId,
    fbLength: fb,
    gspHeapSize: heap,
    bar1LengthMiB: Number(bar1),
    maxInstance,
    eccSupported: ecc === 1,
    fbReservation: fbRes,
  });
}
