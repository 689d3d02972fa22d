/**
 * Exact-length reads over an async iterable of Buffers (a socket, a PassThrough). Frames straddle socket chunks;
 * this keeps a queue and copies only when a read spans chunks.
 */
export class ChunkReader {
  private readonly it: AsyncIterator<unknown>;
  private queue: Buffer[] = [];
  private head = 0; // offset into queue[0]
  private buffered = 0;
  private ended = false;

  constructor(source: AsyncIterable<unknown>) {
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
      out = Buffer.allocUnsafe(take);
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
