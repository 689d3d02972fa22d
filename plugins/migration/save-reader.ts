/**
 * The reading end of a saving stream as a VFIO client sees it (vfio-user MIG_DATA_READ; the kernel's data_fd
 * read()): in PRE_COPY the first read after a short answer starts the next pass (the first the whole FB, then the
 * pages dirtied since); reads return what the pass produced, `max` bytes at a time, and the last one of the pass is
 * short (possibly empty): "no more for now", as vfio-user.rst MIG_DATA_READ says. In STOP_COPY reads drain the
 * rest; a short answer is the end.
 *
 * Used by the daemon's port (vfio-migration-port.ts) and by the device front's FB stream (front-fb-stream.ts).
 */
import { Writable } from 'node:stream';

/**
 * Bytes the saving side may produce ahead of the reader. One care the protocol imposes: "the state transition must
 * fully complete before the reply is sent", but the stream of PRE_COPY→STOP_COPY is only read after that reply; the
 * arc is therefore taken as complete once the device is stopped and in STOP_COPY (SetStateOptions.onStopped,
 * front-fb-stream.ts's stopCopy); the rest is produced as the reader takes it.
 */
export const SINK_BUFFER = 64 << 20;

/** A write's bytes not yet read out, and the writer's callback, due once they all are. */
interface Queued {
  buf: Buffer;
  at: number;
  consumed: ((error?: Error | null) => void) | undefined;
}

/**
 * The saving stream's buffer between the session (the writer) and SaveReader: says when its writer wrote. Reads copy out (readOut), so a write's buffer is free once its bytes were read — the
 * write's callback says so then, not when the bytes were buffered (a PassThrough's does), and SaveSession recycles
 * its copy buffers on it (precopy-engine.ts, consumedOnCallback) instead of allocating 1 MiB per frame.
 * Backpressure is a Transform's: a write is accepted at once while less than `highWaterMark` waits for the reader.
 */
export class SavingSink extends Writable {
  /** SaveSession: a write's callback means its bytes were read out. */
  readonly consumedOnCallback = true;
  private writeWaiters: Array<() => void> = [];
  private readonly queue: Queued[] = [];
  private head = 0;
  /** Bytes in the queue not yet read out. */
  private queued = 0;
  /** The accept callback of the write that found the queue full: called once the reader took it below the mark. */
  private held: (() => void) | null = null;
  private readonly mark: number;

  constructor(highWaterMark = SINK_BUFFER) {
    // Not destroyed at 'finish' (autoDestroy): the writer is done then, the reader usually not — destroying would
    // drop the bytes it has not read. destroy() is for a session that failed or was cancelled.
    super({ highWaterMark, autoDestroy: false });
    this.mark = highWaterMark;
    // A session that fails or is cancelled destroys its sink with the reason; the reader learns of it through
    // SaveReader.error (or the side being gone), so the event itself must not end the process.
    this.on('error', () => undefined);
    this.once('finish', () => this.wake());
    this.once('close', () => this.wake());
  }

  private wake(): void {
    for (const w of this.writeWaiters.splice(0)) w();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, accepted: (error?: Error | null) => void): void {
    // The bytes are in the queue since write(); this only paces the writer, as a Transform's readable side does.
    if (this.queued < this.mark) accepted();
    else this.held = () => accepted();
  }

  override _destroy(error: Error | null, cb: (error?: Error | null) => void): void {
    this.queue.length = 0;
    this.head = 0;
    this.queued = 0;
    this.held = null;
    cb(error);
  }

  override write(chunk: unknown, encodingOrCb?: unknown, cb?: unknown): boolean {
    const consumed = (typeof encodingOrCb === 'function' ? encodingOrCb : cb) as Queued['consumed'];
    if (!Buffer.isBuffer(chunk)) throw new TypeError('SavingSink takes Buffers');
    if (!this.destroyed && !this.writableEnded) {
      this.queue.push({ buf: chunk, at: 0, consumed });
      this.queued += chunk.length;
    }
    const ok = super.write(chunk);
    this.wake();
    return ok;
  }

  /** Bytes written and not yet read out. */
  get available(): number {
    return this.queued;
  }

  /**
   * Up to `n` bytes, copied out in one buffer — from `alloc` when given (the caller's reply message: no second
   * copy), else a new one. A write's callback runs once all its bytes were copied out.
   */
  readOut(n: number, alloc?: (length: number) => Buffer): Buffer {
    const len = Math.min(n, this.queued);
    const out = alloc !== undefined ? alloc(len) : Buffer.allocUnsafe(len);
    let at = 0;
    while (at < len) {
      const q = this.queue[this.head]!;
      const k = Math.min(len - at, q.buf.length - q.at);
      q.buf.copy(out, at, q.at, q.at + k);
      q.at += k;
      at += k;
      if (q.at === q.buf.length) {
        this.head++;
        q.consumed?.();
      }
    }
    if (this.head > 256 && this.head * 2 > this.queue.length) {
      this.queue.splice(0, this.head);
      this.head = 0;
    }
    this.queued -= len;
    if (this.held !== null && this.queued < this.mark) {
      const h = this.held;
      this.held = null;
      h();
    }
    return out;
  }

  /** Resolves at the next write, or when the writer ended. */
  nextWrite(): Promise<void> {
    return new Promise((r) => this.writeWaiters.push(r));
  }
}

export class SaveReader {
  private pass: Promise<void> | null = null;
  /** A pass finished and no short answer has ended its output yet. */
  private passRan = false;
  ended = false;
  error: unknown = null;
  /** Resolves when the session's output ended (done or failed). */
  private settled: Promise<void> = new Promise<void>(() => undefined);

  /** `runPass` sends the next pre-copy pass into `sink`; `failed` turns the session's error into the reader's. */
  constructor(
    readonly sink: SavingSink,
    private readonly runPass: () => Promise<unknown>,
    private readonly failed: (error: unknown) => Error,
  ) {}

  /** The pre-copy pass a read started and that is still producing, if any (it settles, never rejects). */
  get running(): Promise<void> | null {
    return this.pass;
  }

  /** The session's output ends when `done` settles (the trailer written, or the session failed). */
  track(done: Promise<unknown>): void {
    this.settled = done.then(() => { this.ended = true; this.sink.end(); }, (error: unknown) => {
      this.error = error;
      this.ended = true;
      this.sink.end();
    });
  }

  /**
   * Up to `max` bytes; `stopCopy`: the device is in STOP_COPY (no more passes: drain to the end); `alloc`: where the
   * bytes go (SavingSink.readOut).
   */
  async read(max: number, stopCopy: boolean, alloc?: (length: number) => Buffer): Promise<Buffer> {
    const sink = this.sink;
    for (;;) {
      if (this.error !== null && sink.available === 0) throw this.failed(this.error);
      const buffered = sink.available;
      if (buffered >= max) return sink.readOut(max, alloc);
      if (this.ended) return sink.readOut(buffered, alloc);
      if (!stopCopy && this.pass === null) {
        if (this.passRan) {
          // The pass finished: the rest of its output, short (possibly empty) — "no more for now". The next read
          // starts the next pass.
          this.passRan = false;
          return sink.readOut(buffered, alloc);
        }
        this.pass = this.runPass().then(() => undefined, (error: unknown) => { this.error = error; }).finally(() => {
          this.pass = null;
          this.passRan = true;
        });
      }
      await Promise.race([this.sink.nextWrite(), this.pass ?? new Promise<never>(() => undefined), this.settled]);
    }
  }
}
