/**
 * The reading end of a saving stream as a VFIO client sees it (vfio-user MIG_DATA_READ; the kernel's data_fd
 * read()): in PRE_COPY the first read after a short answer starts the next pass (the first the whole FB, then the
 * pages dirtied since); reads return what the pass produced, `max` bytes at a time, and the last one of the pass is
 * short (possibly empty): "no more for now", as vfio-user.rst MIG_DATA_READ says. In STOP_COPY reads drain the
 * rest; a short answer is the end.
 *
 * Used by the daemon's port (vfio-migration-port.ts) and by the device front's FB stream (front-fb-stream.ts).
 */
import { PassThrough, type Readable } from 'node:stream';

/**
 * Bytes the saving side may produce ahead of the reader. One care the protocol imposes: "the state transition must
 * fully complete before the reply is sent", but the stream of PRE_COPY→STOP_COPY is only read after that reply; the
 * arc is therefore taken as complete once the device is stopped and either the arc finished or its output waits
 * for the reader (whenBlocked).
 */
export const SINK_BUFFER = 64 << 20;

/** A PassThrough that says when its writer wrote, and when it had to wait for a reader. */
export class SavingSink extends PassThrough {
  private waiters: Array<() => void> = [];
  private writeWaiters: Array<() => void> = [];
  blocked = false;

  constructor(highWaterMark = SINK_BUFFER) {
    super({ highWaterMark });
    // A session that fails or is cancelled destroys its sink with the reason; the reader learns of it through
    // SaveReader.error (or the side being gone), so the event itself must not end the process.
    this.on('error', () => undefined);
    this.once('finish', () => this.wake());
    this.once('close', () => this.wake());
  }

  private wake(): void {
    for (const w of this.writeWaiters.splice(0)) w();
  }

  override write(chunk: unknown, encodingOrCb?: unknown, cb?: unknown): boolean {
    const ok = (super.write as (...a: unknown[]) => boolean)(chunk, encodingOrCb, cb);
    if (!ok) {
      this.blocked = true;
      for (const w of this.waiters.splice(0)) w();
    }
    this.wake();
    return ok;
  }

  /** Resolves when a write had to wait for the reader. */
  whenBlocked(): Promise<void> {
    if (this.blocked) return Promise.resolve();
    return new Promise((r) => this.waiters.push(r));
  }

  /** Resolves at the next write, or when the writer ended. (Not 'readable': it fires again and again while data sits unread.) */
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

  /** Up to `max` bytes; `stopCopy`: the device is in STOP_COPY (no more passes: drain to the end). */
  async read(max: number, stopCopy: boolean): Promise<Buffer> {
    const stream = this.sink as Readable;
    for (;;) {
      if (this.error !== null && stream.readableLength === 0) throw this.failed(this.error);
      const buffered = stream.readableLength;
      if (buffered >= max) return (stream.read(max) as Buffer | null) ?? Buffer.alloc(0);
      if (this.ended) return buffered > 0 ? ((stream.read(buffered) as Buffer | null) ?? Buffer.alloc(0)) : Buffer.alloc(0);
      if (!stopCopy && this.pass === null) {
        if (this.passRan) {
          // The pass finished: the rest of its output, short (possibly empty) — "no more for now". The next read
          // starts the next pass.
          this.passRan = false;
          return buffered > 0 ? ((stream.read(buffered) as Buffer | null) ?? Buffer.alloc(0)) : Buffer.alloc(0);
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
