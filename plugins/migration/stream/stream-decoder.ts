/**
 * Validating reader of the device-state stream: yields one checked frame at a time and throws a typed error at
 * the first byte that is wrong — a bad magic, a frame-check mismatch (VGPU_ECHECKSUM), a sequence gap, an unknown frame
 * type, a frame out of place, an over-long length, or an end before the trailer (VGPU_EMIGRATION). It never
 * yields a frame whose check it has not verified, so a consumer that applies frames as they come only ever applies
 * bytes that arrived intact (and scrubs them if a later frame fails: see stream-applier.ts).
 */
import { crc32 } from 'node:zlib';
import { ErrorCode, VgpuError } from '../../../core/contracts/exceptions.js';
import { loadNativeOps } from '../../../native/index.js';
import { ChunkReader } from './chunk-reader.js';
import { compatFromJson, type MigrationCompat } from './compat.js';
import {
  FRAME_HEADER_SIZE, FRAME_MAGIC, FW_PREFIX_SIZE, FrameType, MAX_FRAME_PAYLOAD, RUN_PREFIX_SIZE, STREAM_MAGIC,
  SCATTER_PREFIX_SIZE, STREAM_VERSION, TRAILER_SIZE, decodeTrailer, frameTypeName, type TrailerFields,
} from './frame-format.js';

export type DecodedFrame =
  | { type: 'header'; compat: MigrationCompat; version: number }
  | { type: 'pages'; firstPage: number; count: number; pass: number; data: Buffer }
  | { type: 'scatter'; pages: Uint32Array; pass: number; data: Buffer }
  | { type: 'zero-pages'; firstPage: number; count: number; pass: number }
  | { type: 'fw-context'; index: number; data: Buffer }
  | { type: 'trailer'; trailer: TrailerFields };

const HINT = 'the stream was cut or damaged in transit; the destination kept nothing of it — migrate again from the source';

function streamError(code: ErrorCode, message: string, details: Record<string, unknown>): VgpuError {
  return new VgpuError(code, message, { hint: HINT, details });
}

/**
 * `reuseBuffers`: a frame's `data` may live in a buffer the NEXT frame reuses (see ChunkReader): for a consumer that
 * is done with each frame before it asks for the next one (the applier). Default: every frame's data stays valid.
 */
export async function* decodeFrames(source: AsyncIterable<unknown>, opts: { reuseBuffers?: boolean } = {}): AsyncGenerator<DecodedFrame> {
  const r = new ChunkReader(source, opts.reuseBuffers === true);
  let seq = 0;
  let digest = 0;
  let pageSize = 0;
  let pages = 0n;
  let pageBytes = 0n;
  let fwBytes = 0n;
  let fwIndex = 0;
  const ops = loadNativeOps();
  const checkBytes = Buffer.allocUnsafe(8);
  try {
    for (;;) {
      const at = r.position;
      const h = await r.read(FRAME_HEADER_SIZE);
      if (h === null || h.length < FRAME_HEADER_SIZE) {
        throw streamError(ErrorCode.Migration, seq === 0
          ? 'migration stream is empty: no header frame'
          : `migration stream truncated after ${seq} frames (${at + (h?.length ?? 0)} bytes): no trailer`, { frames: seq, offset: at });
      }
      const magic = h.readUInt32LE(0);
      if (magic !== FRAME_MAGIC) {
        throw streamError(ErrorCode.Migration, seq === 0
          ? 'not a vgpud migration stream (bad frame magic at offset 0)'
          : `migration stream corrupted: bad frame magic 0x${magic.toString(16)} at offset ${at} (frame ${seq})`, { frame: seq, offset: at });
      }
      const type = h.readUInt8(4);
      const fseq = h.readUInt32LE(8);
      const len = h.readUInt32LE(12);
      const want = h.readBigUInt64LE(16);
      if (len > MAX_FRAME_PAYLOAD) {
        throw streamError(ErrorCode.Migration, `migration stream corrupted: frame ${seq} claims ${len} payload bytes (limit ${MAX_FRAME_PAYLOAD})`, { frame: seq, offset: at, length: len });
      }
      const p = len === 0 ? Buffer.alloc(0) : await r.read(len);
      if (p === null || p.length < len) {
        throw streamError(ErrorCode.Migration, `migration stream truncated inside frame ${seq} (${frameTypeName(type)}): ${p?.length ?? 0} of ${len} payload bytes`, { frame: seq, offset: at });
      }
      const got = ops.hashBuffers([h.subarray(0, 16), p]);
      if (got !== want) {
        throw streamError(ErrorCode.Checksum, `migration stream corrupted: frame check mismatch in frame ${seq} (${frameTypeName(type)}) at offset ${at}`, { frame: seq, offset: at, expected: `0x${want.toString(16)}`, actual: `0x${got.toString(16)}` });
      }
      // Only now are the header fields trustworthy.
      if (fseq !== seq) {
        throw streamError(ErrorCode.Migration, `migration stream out of order: frame ${seq} carries sequence ${fseq}`, { frame: seq, carried: fseq });
      }
      if ((seq === 0) !== (type === FrameType.HEADER)) {
        throw streamError(ErrorCode.Migration, seq === 0 ? `migration stream starts with ${frameTypeName(type)} instead of HEADER` : `second HEADER frame at frame ${seq}`, { frame: seq });
      }
      const badPayload = (what: string): never => {
        throw streamError(ErrorCode.Migration, `migration stream malformed: ${frameTypeName(type)} frame ${seq}: ${what}`, { frame: seq });
      };
      seq++;
      if (type !== FrameType.TRAILER) {
        checkBytes.writeBigUInt64LE(got, 0);
        digest = crc32(checkBytes, digest);
      }
      switch (type) {
        case FrameType.HEADER: {
          if (p.length < 16 || !p.subarray(0, 8).equals(STREAM_MAGIC)) badPayload('bad stream magic');
          const version = p.readUInt16LE(8);
          if (version !== STREAM_VERSION) {
            throw new VgpuError(ErrorCode.Migration, `migration stream version ${version} is not supported (this vgpud reads version ${STREAM_VERSION})`, {
              hint: 'run the same vgpud release on both hosts', details: { field: 'version', version },
            });
          }
          const jl = p.readUInt32LE(12);
          if (16 + jl !== p.length) badPayload('JSON length does not match the frame');
          const compat = compatFromJson(p.subarray(16).toString('utf8'));
          pageSize = compat.pageSize;
          if (pageSize < 512 || (pageSize & (pageSize - 1)) !== 0) badPayload(`page size ${pageSize} is not a power of two ≥ 512`);
          yield { type: 'header', compat, version };
          break;
        }
        case FrameType.PAGES:
        case FrameType.ZERO_PAGES: {
          if (p.length < RUN_PREFIX_SIZE) badPayload('short run prefix');
          const first = p.readBigUInt64LE(0);
          const count = p.readUInt32LE(8);
          const pass = p.readUInt16LE(12);
          if (count === 0 || first > BigInt(Number.MAX_SAFE_INTEGER)) badPayload('empty run or impossible page index');
          if (type === FrameType.PAGES) {
            if (p.length !== RUN_PREFIX_SIZE + count * pageSize) badPayload(`${count} pages need ${count * pageSize} bytes, frame has ${p.length - RUN_PREFIX_SIZE}`);
            pageBytes += BigInt(count * pageSize);
            pages += BigInt(count);
            yield { type: 'pages', firstPage: Number(first), count, pass, data: p.subarray(RUN_PREFIX_SIZE) };
          } else {
            if (p.length !== RUN_PREFIX_SIZE) badPayload('zero run carries bytes');
            pages += BigInt(count);
            yield { type: 'zero-pages', firstPage: Number(first), count, pass };
          }
          break;
        }
        case FrameType.SCATTER_PAGES: {
          if (p.length < SCATTER_PREFIX_SIZE) badPayload('short scatter prefix');
          const count = p.readUInt32LE(0);
          const pass = p.readUInt16LE(4);
          const dataAt = SCATTER_PREFIX_SIZE + 4 * count;
          if (count === 0 || p.length !== dataAt + count * pageSize) badPayload(`${count} scattered pages do not match ${p.length} payload bytes`);
          const idx = new Uint32Array(count);
          for (let i = 0; i < count; i++) idx[i] = p.readUInt32LE(SCATTER_PREFIX_SIZE + 4 * i);
          pageBytes += BigInt(count * pageSize);
          pages += BigInt(count);
          yield { type: 'scatter', pages: idx, pass, data: p.subarray(dataAt) };
          break;
        }
        case FrameType.FW_CONTEXT: {
          if (p.length < FW_PREFIX_SIZE) badPayload('short prefix');
          const index = p.readUInt32LE(0);
          if (index !== fwIndex) badPayload(`firmware chunk ${index} where ${fwIndex} was expected`);
          fwIndex++;
          fwBytes += BigInt(p.length - FW_PREFIX_SIZE);
          yield { type: 'fw-context', index, data: p.subarray(FW_PREFIX_SIZE) };
          break;
        }
        case FrameType.TRAILER: {
          if (p.length !== TRAILER_SIZE) badPayload('wrong size');
          const t = decodeTrailer(p);
          const frames = seq - 1;
          const mismatch = t.frames !== frames ? `frames ${t.frames} ≠ ${frames} received`
            : t.pages !== pages ? `pages ${t.pages} ≠ ${pages} received`
              : t.pageBytes !== pageBytes ? `page bytes ${t.pageBytes} ≠ ${pageBytes} received`
                : t.fwBytes !== fwBytes ? `firmware bytes ${t.fwBytes} ≠ ${fwBytes} received`
                  : (t.digest >>> 0) !== (digest >>> 0) ? 'whole-stream digest differs' : null;
          if (mismatch !== null) {
            throw streamError(ErrorCode.Checksum, `migration stream trailer does not match what arrived: ${mismatch}`, { frames });
          }
          // Nothing may follow the trailer.
          const extra = await r.read(1);
          if (extra !== null) throw streamError(ErrorCode.Migration, 'migration stream has bytes after the trailer', { frames });
          yield { type: 'trailer', trailer: t };
          return;
        }
        default:
          throw streamError(ErrorCode.Migration, `migration stream corrupted: unknown frame type ${type} (frame ${seq - 1})`, { frame: seq - 1, type });
      }
    }
  } finally {
    await r.close();
  }
}
