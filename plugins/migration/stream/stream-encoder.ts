/**
 * Incremental writer of the device-state stream onto any Node Writable (socket, PassThrough, file). Each
 * `write*` resolves once the frame is handed to the sink and, when the sink is over its high-water mark, once it
 * has drained: a slow transport therefore slows the pre-copy loop down instead of piling frames up in memory.
 *
 * Frame payloads must be private copies: the frame check is computed here, and a socket may send the bytes later; a
 * Buffer still aliasing live FB would change under the guest and arrive with a frame check that no longer matches. A copy
 * may be reused once the frame's `onSent` callback ran (see frame()).
 */
import { crc32 } from 'node:zlib';
import type { Writable } from 'node:stream';
import { loadNativeOps } from '../../../native/index.js';
import type { NativeOps } from '../../../native/native-ops.js';
import { ErrorCode, VgpuError } from '../../../core/contracts/exceptions.js';
import { compatToJson, type MigrationCompat } from './compat.js';
import {
  FRAME_HEADER_SIZE, FRAME_MAGIC, FW_PREFIX_SIZE, FrameType, MAX_FRAME_PAYLOAD, STREAM_MAGIC, STREAM_VERSION,
  encodeTrailer, runPrefix, scatterPrefix, type TrailerFields,
} from './frame-format.js';

export interface EncoderTotals {
  frames: number;
  pages: bigint;
  pageBytes: bigint;
  fwBytes: bigint;
  /** All bytes written, headers included. */
  streamBytes: bigint;
}

export class StreamEncoder {
  private seq = 0;
  private digest = 0;
  private pages = 0n;
  private pageBytes = 0n;
  private fwBytes = 0n;
  private streamBytes = 0n;
  private fwIndex = 0;
  private state: 'new' | 'open' | 'done' = 'new';
  private sinkError: Error | null = null;
  private readonly onError = (e: Error): void => { this.sinkError = e; };
  /** The frame check (vgpu-buffer-hash-v1): the addon's when it built, else the same function in TS. */
  private readonly ops: NativeOps = loadNativeOps();
  private readonly checkBytes = Buffer.allocUnsafe(8);

  constructor(private readonly sink: Writable, private readonly pageSize: number) {
    sink.on('error', this.onError);
  }

  totals(): EncoderTotals {
    return { frames: this.seq, pages: this.pages, pageBytes: this.pageBytes, fwBytes: this.fwBytes, streamBytes: this.streamBytes };
  }

  async writeHeader(compat: MigrationCompat): Promise<void> {
    if (this.state !== 'new') throw this.misuse('the header was already written');
    if (compat.pageSize !== this.pageSize) throw this.misuse(`compat pageSize ${compat.pageSize} differs from the encoder's ${this.pageSize}`);
    const json = Buffer.from(compatToJson(compat), 'utf8');
    const fixed = Buffer.alloc(16);
    STREAM_MAGIC.copy(fixed, 0);
    fixed.writeUInt16LE(STREAM_VERSION, 8);
    fixed.writeUInt32LE(json.length, 12);
    this.state = 'open';
    await this.frame(FrameType.HEADER, [fixed, json]);
  }

  /** A run of `count` pages starting at `firstPage`; `data` is a private copy of exactly count × pageSize bytes. */
  async writePages(firstPage: number, data: Buffer, pass: number, onSent?: () => void): Promise<void> {
    const count = data.length / this.pageSize;
    if (!Number.isInteger(count) || count < 1) throw this.misuse(`page data of ${data.length} bytes is not whole pages`);
    await this.frame(FrameType.PAGES, [runPrefix(firstPage, count, pass), data], onSent);
    this.pages += BigInt(count);
    this.pageBytes += BigInt(data.length);
  }

  /** Scattered pages: `pages[i]`'s bytes are `data[i*pageSize, (i+1)*pageSize)` (a private copy). */
  async writeScatter(pages: Uint32Array, data: Buffer, pass: number, onSent?: () => void): Promise<void> {
    if (pages.length < 1 || data.length !== pages.length * this.pageSize) throw this.misuse(`scatter of ${pages.length} pages with ${data.length} bytes`);
    await this.frame(FrameType.SCATTER_PAGES, [scatterPrefix(pages, pass), data], onSent);
    this.pages += BigInt(pages.length);
    this.pageBytes += BigInt(data.length);
  }

  async writeZeroPages(firstPage: number, count: number, pass: number, onSent?: () => void): Promise<void> {
    if (!Number.isInteger(count) || count < 1) throw this.misuse(`zero run of ${count} pages`);
    await this.frame(FrameType.ZERO_PAGES, [runPrefix(firstPage, count, pass)], onSent);
    this.pages += BigInt(count);
  }

  /** One chunk of the firmware (GSP plugin) context, opaque to us. */
  async writeFirmwareContext(chunk: Uint8Array): Promise<void> {
    const prefix = Buffer.alloc(FW_PREFIX_SIZE);
    prefix.writeUInt32LE(this.fwIndex++, 0);
    await this.frame(FrameType.FW_CONTEXT, [prefix, Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)]);
    this.fwBytes += BigInt(chunk.byteLength);
  }

  /** Write the trailer and end the sink (permanent end of stream). */
  async finish(): Promise<EncoderTotals> {
    const t: TrailerFields = { pages: this.pages, pageBytes: this.pageBytes, frames: this.seq, digest: this.digest, fwBytes: this.fwBytes };
    await this.frame(FrameType.TRAILER, [encodeTrailer(t)]);
    this.state = 'done';
    await new Promise<void>((resolve, reject) => {
      if (this.sinkError) return reject(this.transportError(this.sinkError));
      this.sink.end(() => (this.sinkError ? reject(this.transportError(this.sinkError)) : resolve()));
    });
    this.sink.off('error', this.onError);
    return this.totals();
  }

  /** Abort: the destination sees a truncated stream and refuses it. */
  abort(reason?: Error): void {
    this.state = 'done';
    this.sink.destroy(reason);
  }

  /**
   * `onSent` runs once the sink's write callback fired for the frame's last part (for a socket: the kernel has the
   * bytes), so a caller may recycle the payload buffer then. Not called if the sink fails.
   */
  private async frame(type: FrameType, parts: Buffer[], onSent?: () => void): Promise<void> {
    if (this.state !== 'open') throw this.misuse(this.state === 'new' ? 'write the header first' : 'the stream is finished');
    if (this.sinkError) throw this.transportError(this.sinkError);
    let len = 0;
    for (const p of parts) len += p.length;
    if (len > MAX_FRAME_PAYLOAD) throw this.misuse(`frame payload ${len} exceeds ${MAX_FRAME_PAYLOAD}`);
    const h = Buffer.allocUnsafe(FRAME_HEADER_SIZE);
    h.writeUInt32LE(FRAME_MAGIC, 0);
    h.writeUInt8(type, 4);
    h.writeUInt8(0, 5);
    h.writeUInt16LE(0, 6);
    h.writeUInt32LE(this.seq, 8);
    h.writeUInt32LE(len, 12);
    const check = this.ops.hashBuffers([h.subarray(0, 16), ...parts]);
    h.writeBigUInt64LE(check, 16);
    if (type !== FrameType.TRAILER) {
      this.checkBytes.writeBigUInt64LE(check, 0);
      this.digest = crc32(this.checkBytes, this.digest);
    }
    this.seq++;
    this.streamBytes += BigInt(FRAME_HEADER_SIZE + len);
    this.sink.cork();
    let ok = this.sink.write(h);
    for (let i = 0; i < parts.length; i++) {
      ok = i === parts.length - 1 && onSent
        ? this.sink.write(parts[i]!, (e?: Error | null) => { if (!e) onSent(); })
        : this.sink.write(parts[i]!);
    }
    this.sink.uncork();
    if (!ok) await this.drain();
    // Under the high-water mark `await` only runs microtasks, so a loop of frames would not let libuv move queued
    // bytes to the socket until the mark was hit. Yield one turn of the event loop while bytes are queued so the
    // socket sends while we prepare the next frame (cheap: one setImmediate per frame).
    else if (this.sink.writableLength > 0) await new Promise<void>((r) => setImmediate(r));
  }

  private drain(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const done = (): void => { cleanup(); resolve(); };
      const fail = (e?: Error): void => { cleanup(); reject(this.transportError(e ?? new Error('transport closed'))); };
      const closed = (): void => fail(this.sinkError ?? new Error('transport closed before the stream ended'));
      const cleanup = (): void => {
        this.sink.off('drain', done);
        this.sink.off('error', fail);
        this.sink.off('close', closed);
      };
      if (this.sink.destroyed) return closed();
      this.sink.on('drain', done);
      this.sink.on('error', fail);
      this.sink.on('close', closed);
    });
  }

  private misuse(message: string): VgpuError {
    return new VgpuError(ErrorCode.IllegalState, `migration stream encoder: ${message}`, {
      hint: 'this is a bug in the caller of StreamEncoder: header first, then data frames, then finish()',
    });
  }

  private transportError(cause: Error): VgpuError {
    return new VgpuError(ErrorCode.Migration, `migration transport failed while sending: ${cause.message}`, {
      hint: 'check the connection to the destination host; the source vGPU keeps running and can migrate again',
      cause,
    });
  }
}
