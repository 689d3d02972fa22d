/**
 * The vGPU device-state stream, version 2: a sequence of frames, each
 *
 *   frame header (24 bytes, little-endian)
 *     0  u32  FRAME_MAGIC 0x464d4756 ("VGMF" in memory)
 *     4  u8   type (FrameType)
 *     5  u8   flags (0)
 *     6  u16  reserved (0)
 *     8  u32  seq: 0 for the header frame, +1 per frame (catches a dropped, repeated or reordered frame)
 *    12  u32  payload length (≤ MAX_FRAME_PAYLOAD)
 *    16  u64  check: vgpu-buffer-hash-v1 (native/buffer-hash.ts) over header bytes [0,16) followed by the payload
 *   payload
 *
 * Version 1 had a u32 CRC-32 (zlib) there (20-byte header). zlib's CRC ran at ~3 GB/s on both ends of every page
 * frame and was the largest CPU cost of a migration after the socket; the buffer hash runs at memory speed in the
 * addon, catches any single damaged word for sure, as the CRC caught any burst ≤ 32 bits, and is 64 bits wide.
 *
 * Frames, in order: HEADER (exactly one, first), then any of PAGES / ZERO_PAGES / FW_CONTEXT, then TRAILER (exactly
 * one, last). A later PAGES frame for a page overrides an earlier one (pre-copy re-sends dirty pages), so the
 * destination applies in stream order. Payloads:
 *
 *   HEADER      8 B magic "VGPUDMIG", u16 version, u16 flags, u32 json length, UTF-8 JSON of MigrationCompat
 *   PAGES       u64 first page, u32 count, u16 pass, u16 reserved, then count × pageSize bytes
 *   ZERO_PAGES  u64 first page, u32 count, u16 pass, u16 reserved            (a run of all-zero pages: no bytes)
 *   SCATTER_PAGES u32 count, u16 pass, u16 reserved, count × u32 page index, then count × pageSize bytes
 *               (the scattered dirty pages of a later pass: one frame instead of one per page)
 *   FW_CONTEXT  u32 chunk index, u32 reserved, opaque bytes of the GSP plugin's saved state
 *   TRAILER     u64 pages described, u64 page bytes carried, u32 frames before the trailer, u32 digest,
 *               u64 firmware-context bytes
 *
 * The whole-stream digest is CRC-32 (zlib) over the little-endian 64-bit checks of every frame before the trailer, in
 * order: each frame check already covers that frame's bytes, so the chain covers the whole stream without hashing it
 * twice (8 bytes a frame: the CRC costs nothing here).
 */
export const FRAME_MAGIC = 0x464d4756;
export const FRAME_HEADER_SIZE = 24;
export const STREAM_MAGIC = Buffer.from('VGPUDMIG', 'latin1');
export const STREAM_VERSION = 2;
/** Refuse larger frames before allocating anything: a corrupt length must not make us allocate gigabytes. */
export const MAX_FRAME_PAYLOAD = 64 << 20;
/** Page runs per frame: 256 pages = 1 MiB at 4 KiB, big enough to amortise the header, small enough to pipeline. */
export const DEFAULT_RUN_PAGES = 256;
export const RUN_PREFIX_SIZE = 16;
export const FW_PREFIX_SIZE = 8;
export const TRAILER_SIZE = 32;

export const FrameType = {
  HEADER: 1,
  PAGES: 2,
  ZERO_PAGES: 3,
  FW_CONTEXT: 4,
  TRAILER: 5,
  SCATTER_PAGES: 6,
} as const;
export type FrameType = (typeof FrameType)[keyof typeof FrameType];

export function frameTypeName(t: number): string {
  for (const [k, v] of Object.entries(FrameType)) if (v === t) return k;
  return `UNKNOWN(${t})`;
}

export interface TrailerFields {
  pages: bigint;
  pageBytes: bigint;
  frames: number;
  digest: number;
  fwBytes: bigint;
}

export function encodeTrailer(t: TrailerFields): Buffer {
  const b = Buffer.alloc(TRAILER_SIZE);
  b.writeBigUInt64LE(t.pages, 0);
  b.writeBigUInt64LE(t.pageBytes, 8);
  b.writeUInt32LE(t.frames, 16);
  b.writeUInt32LE(t.digest >>> 0, 20);
  b.writeBigUInt64LE(t.fwBytes, 24);
  return b;
}

export function decodeTrailer(b: Buffer): TrailerFields {
  return {
    pages: b.readBigUInt64LE(0),
    pageBytes: b.readBigUInt64LE(8),
    frames: b.readUInt32LE(16),
    digest: b.readUInt32LE(20),
    fwBytes: b.readBigUInt64LE(24),
  };
}

export function runPrefix(firstPage: number, count: number, pass: number): Buffer {
  const b = Buffer.alloc(RUN_PREFIX_SIZE);
  b.writeBigUInt64LE(BigInt(firstPage), 0);
  b.writeUInt32LE(count, 8);
  b.writeUInt16LE(pass & 0xffff, 12);
  return b;
}

export const SCATTER_PREFIX_SIZE = 8;
export function scatterPrefix(pages: Uint32Array, pass: number): Buffer {
  const b = Buffer.alloc(SCATTER_PREFIX_SIZE + pages.length * 4);
  b.writeUInt32LE(pages.length, 0);
  b.writeUInt16LE(pass & 0xffff, 4);
  for (let i = 0; i < pages.length; i++) b.writeUInt32LE(pages[i]!, SCATTER_PREFIX_SIZE + 4 * i);
  return b;
}
