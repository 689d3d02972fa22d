/**
 * Exact-length reads over an async iterable of Buffers (a socket, a PassThrough). Frames straddle socket chunks;
 * this keeps a queue and copies only when a read spans chunks.
 */
/** Reads this large or larger may be assembled in the reused buffer (headers and prefixes never are). */
const REUSE_MIN = 4096;

export class ChunkReader {
  private readonly it: AsyncIterator<unknown>;
  private queue: Buffer[] = [];
  private head = 0; // offset into queue[0]
  private buffered = 0;
  private ended = false;
  /** Reused for reads that span chunks (see `reuse`). */
  private scratch: Buffer | null = null;

  /**
   * `reuse`: a read of at least REUSE_MIN bytes that spans chunks is assembled in one buffer kept for the next such
   * read, instead of a fresh allocation. A 1 MiB page frame always spans socket chunks (64 KiB), and a fresh 1 MiB
   * Buffer per frame kept V8's collector busy on the destination. Only for a caller that is done with such a result
   * before its next read (the stream applier copies page data into the FB at once and firmware chunks into a copy).
   */
  constructor(source: AsyncIterable<unknown>, private readonly reuse = false) {
    this.it = source[Symbol.asyncIterator]();
  }

  /** Bytes consumed so far (for error details). */
  position = 0;

  /**
   * Read exactly `n` bytes. Returns null when the source ended before the first byte (`atBoundary` only tells the
   * caller where it stood); a source that ends after some but not all `n` bytes returns the short Buffer — the
   * caller decides that this is a truncation.
   */
  async read(n: number): Promise<Buffer | null> {
    while (this.buffered < n && !this.ended) {
      const r = await this.it.next();
      if (r.done) { this.ended = true; break; }
      const v = r.value;
      const b = Buffer.isBuffer(v) ? v : typeof v === 'string' ? Buffer.from(v) : Buffer.from(v as Uint8Array);
      if (b.length === 0) continue;
      this.queue.push(b);
      this.buffered += b.length;
    }
    if (this.buffered === 0) return null;
    const take = Math.min(n, this.buffered);
    const first = this.queue[0]!;
    let out: Buffer;
    if (first.length - this.head >= take) {
      out = first.subarray(this.head, this.head + take);
      this.head += take;
      if (this.head === first.length) { this.queue.shift(); this.head = 0; }
    } else {
      if (this.reuse && take >= REUSE_MIN) {
        if (this.scratch === null || this.scratch.length < take) this.scratch = Buffer.allocUnsafe(take);
        out = this.scratch.subarray(0, take);
      } else out = Buffer.allocUnsafe(take);
      let filled = 0;
      while (filled < take) {
        const c = this.queue[0]!;
        const k = Math.min(c.length - this.head, take - filled);
        c.copy(out, filled, this.head, this.head + k);
        filled += k;
        this.head += k;
        if (this.head === c.length) { this.queue.shift(); this.head = 0; }
      }
    }
    this.buffered -= take;
    this.position += take;
    return out;
  }

  /** Stop reading (releases the source's iterator: a socket is destroyed). */
  async close(): Promise<void> {
    await this.it.return?.();
  }
}
