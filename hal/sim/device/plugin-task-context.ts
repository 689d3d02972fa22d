/**
 * The "firmware context" a simulated GSP plugin task keeps per vGPU, and its migration image.
 *
 * Real GSP plugin state is opaque (docs/reference/vfio-migration.md, docs/reference/host-rpc-mailbox.md); the
 * simulator keeps a few KiB that behave like it: what the host configured (SETUP_CONFIG payload), BME, counters,
 * guest-reported info, and a deterministic pseudo-random blob seeded by gfid + vGPU type standing in for "everything
 * else the plugin knows". SAVE_STATE streams the image out, RESTORE_STATE takes it in and verifies it, so a migration
 * test can tell a faithful round trip from a corrupted or mismatched one.
 *
 * Image (simulator layout, little-endian):
 *   header 32 B: magic 'VCTX' u32 @0, version u32 @4 (=2), source gfid u32 @8, vgpu_type u32 @12,
 *                body length u32 @16, CRC-32 of the body u32 @20, reserved @24..32
 *   body:        config params (112 B, zero if never configured) @0, bme.enable u8 @112, bme.allowed u8 @113,
 *                configured u8 @114, pad @115, counters u32 ×4 @116 (messages, resets, bmeChanges, migrations),
 *                guest u32 ×3 @132 (osType, licenseState, frlConfig), blob seed u32 @144, blob 4096 B @148,
 *                VF section present u32 @4244, VF section @4248 (vf/vf-guest-state.ts: the guest-visible registers,
 *                the guest's RPC channel, unanswered doorbells, exception records)
 *
 * Version 2 added the VF section. A version-1 image is refused with a message saying so: restoring it would leave
 * the migrated guest with no interrupt enables and no RPC channel (it would hang on its next call), which is worse
 * than a refused migration the operator can see.
 */
import { crc32 } from 'node:zlib';
import { CONFIG_PARAMS_PAYLOAD } from '../../../core/firmware-abi/vgpu-mailbox.js';
import { decodeVfGuestState, encodeVfGuestState, VF_STATE_BYTES, type VfGuestState } from './vf/vf-guest-state.js';

export const CONTEXT_MAGIC = 0x58544356; // 'VCTX'
export const CONTEXT_VERSION = 2;
export const CONTEXT_HEADER_BYTES = 32;
export const CONTEXT_BLOB_BYTES = 4096;
const CONFIG_BYTES = CONFIG_PARAMS_PAYLOAD.size; // 112
const B = {
  CONFIG: 0,
  BME_ENABLE: 112,
  BME_ALLOWED: 113,
  CONFIGURED: 114,
  COUNTERS: 116,
  GUEST: 132,
  SEED: 144,
  BLOB: 148,
  VF_PRESENT: 148 + CONTEXT_BLOB_BYTES,
  VF: 152 + CONTEXT_BLOB_BYTES,
} as const;
export const CONTEXT_BODY_BYTES = B.VF + VF_STATE_BYTES;
/** Body offset of the VF section (tests corrupt it on purpose). */
export const CONTEXT_VF_SECTION = B.VF;
export const CONTEXT_IMAGE_BYTES = CONTEXT_HEADER_BYTES + CONTEXT_BODY_BYTES;

export interface FirmwareContext {
  /** Raw SETUP_CONFIG_PARAMS_AND_INIT payload (112 bytes) once configured, else null. */
  config: Uint8Array | null;
  bme: { enable: boolean; allowed: boolean };
  counters: { messages: number; resets: number; bmeChanges: number; migrations: number };
  guest: { osType: number; licenseState: number; frlConfig: number };
  blobSeed: number;
  blob: Uint8Array;
}

/** Seed of the blob of a vGPU: gfid and type mixed (golden-ratio multiply keeps neighbours apart). */
export function blobSeed(gfid: number, vgpuType: number): number {
  return (Math.imul(gfid, 0x9e3779b1) ^ vgpuType ^ 0x5a17c0de) >>> 0 || 1;
}

/** xorshift32 bytes: deterministic, cheap, and any flipped byte shows. */
export function generateBlob(seed: number, len = CONTEXT_BLOB_BYTES): Uint8Array {
  const out = new Uint8Array(len);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < len; i += 4) {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    out[i] = x & 0xff;
    if (i + 1 < len) out[i + 1] = (x >>> 8) & 0xff;
    if (i + 2 < len) out[i + 2] = (x >>> 16) & 0xff;
    if (i + 3 < len) out[i + 3] = (x >>> 24) & 0xff;
  }
  return out;
}

/** Blobs by seed, most recent last: one per (gfid, type) in use, so a create does not spin 4 KiB of xorshift. */
const blobs = new Map<number, Uint8Array>();
/** gfids × types a board runs at once stay well inside this (64 × 4 KiB). */
const BLOB_CACHE = 64;

/**
 * The blob of a seed, shared: nothing writes into a context's blob (a restore replaces the whole context), so one
 * copy per seed serves every task of that gfid and type.
 */
export function blobFor(seed: number): Uint8Array {
  let blob = blobs.get(seed);
  if (blob === undefined) {
    blob = generateBlob(seed);
    if (blobs.size >= BLOB_CACHE) blobs.delete(blobs.keys().next().value!);
  } else {
    blobs.delete(seed);
  }
  blobs.set(seed, blob);
  return blob;
}

export function newContext(gfid: number, vgpuType: number): FirmwareContext {
  const seed = blobSeed(gfid, vgpuType);
  return {
    config: null,
    bme: { enable: false, allowed: false },
    counters: { messages: 0, resets: 0, bmeChanges: 0, migrations: 0 },
    // A guest that has not reported anything yet: OS type 0 (unknown), unlicensed, no frame-rate limiter.
    guest: { osType: 0, licenseState: 0, frlConfig: 0 },
    blobSeed: seed,
    blob: blobFor(seed),
  };
}

/** `vf`: the VF's guest-visible state (null for a task with no guest side, e.g. the firmware alone in a unit test). */
export function encodeContextImage(ctx: FirmwareContext, srcGfid: number, vgpuType: number, vf: VfGuestState | null = null): Uint8Array {
  const img = Buffer.alloc(CONTEXT_IMAGE_BYTES);
  const body = img.subarray(CONTEXT_HEADER_BYTES);
  if (ctx.config !== null) body.set(ctx.config.subarray(0, CONFIG_BYTES), B.CONFIG);
  body.writeUInt8(ctx.bme.enable ? 1 : 0, B.BME_ENABLE);
  body.writeUInt8(ctx.bme.allowed ? 1 : 0, B.BME_ALLOWED);
  body.writeUInt8(ctx.config !== null ? 1 : 0, B.CONFIGURED);
  const c = ctx.counters;
  [c.messages, c.resets, c.bmeChanges, c.migrations].forEach((v, i) => body.writeUInt32LE(v >>> 0, B.COUNTERS + 4 * i));
  const g = ctx.guest;
  [g.osType, g.licenseState, g.frlConfig].forEach((v, i) => body.writeUInt32LE(v >>> 0, B.GUEST + 4 * i));
  body.writeUInt32LE(ctx.blobSeed >>> 0, B.SEED);
  body.set(ctx.blob.subarray(0, CONTEXT_BLOB_BYTES), B.BLOB);
  if (vf !== null) {
    body.writeUInt32LE(1, B.VF_PRESENT);
    encodeVfGuestState(vf, body.subarray(B.VF, B.VF + VF_STATE_BYTES));
  }
  img.writeUInt32LE(CONTEXT_MAGIC, 0);
  img.writeUInt32LE(CONTEXT_VERSION, 4);
  img.writeUInt32LE(srcGfid >>> 0, 8);
  img.writeUInt32LE(vgpuType >>> 0, 12);
  img.writeUInt32LE(CONTEXT_BODY_BYTES, 16);
  img.writeUInt32LE(crc32(body) >>> 0, 20);
  return img;
}

export interface DecodedImage {
  srcGfid: number;
  vgpuType: number;
  ctx: FirmwareContext;
  /** The VF's guest-visible state, or null when the source had no guest side. */
  vf: VfGuestState | null;
}

/** Decode and verify an image; throws an Error whose message says what is wrong (the task logs it). */
export function decodeContextImage(bytes: Uint8Array): DecodedImage {
  const img = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (img.byteLength < CONTEXT_HEADER_BYTES) throw new Error(`image of ${img.byteLength} bytes is shorter than its header`);
  const magic = img.readUInt32LE(0);
  if (magic !== CONTEXT_MAGIC) throw new Error(`bad image magic 0x${magic.toString(16)}`);
  const version = img.readUInt32LE(4);
  if (version === 1) {
    throw new Error('image version 1 comes from an older simulator and lacks the VF\'s guest-visible state (interrupt enables, ' +
      'mailbox, the guest\'s RPC channel); restoring it would hang the guest on its next call — upgrade the source host ' +
      `to context version ${CONTEXT_VERSION} and migrate again`);
  }
  if (version !== CONTEXT_VERSION) throw new Error(`image version ${version} is not ${CONTEXT_VERSION} (this simulator reads version ${CONTEXT_VERSION} only)`);
  const len = img.readUInt32LE(16);
  if (len !== CONTEXT_BODY_BYTES || img.byteLength < CONTEXT_HEADER_BYTES + len) {
    throw new Error(`image body of ${len} bytes (have ${img.byteLength - CONTEXT_HEADER_BYTES}, expect ${CONTEXT_BODY_BYTES})`);
  }
  const body = img.subarray(CONTEXT_HEADER_BYTES, CONTEXT_HEADER_BYTES + len);
  const crc = crc32(body) >>> 0;
  if (crc !== img.readUInt32LE(20)) throw new Error(`image CRC 0x${crc.toString(16)} does not match 0x${img.readUInt32LE(20).toString(16)}`);
  const seed = body.readUInt32LE(B.SEED);
  const blob = Uint8Array.from(body.subarray(B.BLOB, B.BLOB + CONTEXT_BLOB_BYTES));
  // The blob is a function of its seed: a mismatch is state corruption a CRC over a rewritten body would miss.
  if (!Buffer.from(blobFor(seed)).equals(blob)) throw new Error('image blob does not match its seed');
  const u32 = (o: number): number => body.readUInt32LE(o);
  const vfPresent = u32(B.VF_PRESENT);
  if (vfPresent > 1) throw new Error(`image VF-section flag ${vfPresent} is neither 0 nor 1`);
  return {
    vf: vfPresent === 1 ? decodeVfGuestState(body.subarray(B.VF, B.VF + VF_STATE_BYTES)) : null,
    srcGfid: img.readUInt32LE(8),
    vgpuType: img.readUInt32LE(12),
    ctx: {
      config: body.readUInt8(B.CONFIGURED) === 1 ? Uint8Array.from(body.subarray(B.CONFIG, B.CONFIG + CONFIG_BYTES)) : null,
      bme: { enable: body.readUInt8(B.BME_ENABLE) === 1, allowed: body.readUInt8(B.BME_ALLOWED) === 1 },
      counters: { messages: u32(B.COUNTERS), resets: u32(B.COUNTERS + 4), bmeChanges: u32(B.COUNTERS + 8), migrations: u32(B.COUNTERS + 12) },
      guest: { osType: u32(B.GUEST), licenseState: u32(B.GUEST + 4), frlConfig: u32(B.GUEST + 8) },
      blobSeed: seed,
      blob,
    },
  };
}
