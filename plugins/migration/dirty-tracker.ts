/**
 * Dirty-page tracking for FB pre-copy. Two sources stand behind one interface:
 *
 * - HashDirtyTracker: software tracking by page hashes (gMig's "software dirty page", VEE'18): snapshot one 64-bit
 *   hash per page (native `hashPages`), and on each pass re-hash and report the pages whose hash changed. Needs no
 *   help from the device, but every pass reads the whole FB, including the last one, which runs while the guest is
 *   stopped (a 604 ms pause was seen). Hashing runs at ~2.5 GB/s here, a zero scan at ~70 GB/s, and a vGPU FB is
 *   mostly never-written zero pages: so 1 MiB chunks are first checked for all-zero and only the others are hashed
 *   (a zero chunk's pages get the zero page's hash, the same value hashing would give). A 12 GiB sparse FB: ~5 s →
 *   ~0.2 s per scan. A 64-bit hash collision would miss a change (odds ~2^-64 per changed page); the trailer/CRC
 *   cannot catch that, a device log can.
 * - DirtyLogSource (dirty-log.ts): the device keeps a bitmap of written pages, read-and-cleared per pass like VFIO
 *   DMA_LOGGING_REPORT. Costs a bitmap scan per pass; what a real device (and our simulated guest) provides.
 *
 * Contract for both: after `start()` resolves, every page written later is reported by some later `collect()`.
 * A page may be reported although its bytes did not change (harmless: it is re-sent), never the reverse.
 */
import type { FbRegion } from './fb-region.js';
import { hashPagesInto } from '../../native/page-hash.js';

export interface DirtySource {
  readonly pageSize: number;
  readonly pageCount: number;
  readonly kind: 'hash' | 'log';
  /** Begin tracking (clear the log / take the hash snapshot). */
  start(): Promise<void>;
  /** Pages written since start() or the previous collect(), ascending; resets them to clean. */
  collect(): Promise<Uint32Array>;
  /** Pages currently known dirty without clearing, if the source can tell cheaply (for PRECOPY_INFO). */
  peekCount?(): number;
  /**
   * Whether `page` was written since the last collect(), without clearing it (so the next collect() still reports
   * it). Only sources that can answer per page in O(1) (a device log) implement it; pre-copy uses it to skip a page
   * it is about to send when that page will be sent again anyway.
   */
  isDirty?(page: number): boolean;
  stop(): void;
}

/** Scan and hash in slices so other work (the transport) runs between them. */
const HASH_SLICE = 256n << 20n;
/** Granule of the zero check: a chunk with any non-zero word is hashed whole. */
const ZERO_CHUNK = 1 << 20;

/** The page hash of an all-zero page (the TS page hash gives the addon's values). */
function zeroPageHash(pageSize: number): bigint {
  const out = new Uint32Array(2);
  hashPagesInto(new Int32Array(pageSize / 4), 0, pageSize / 4, 1, out, 0);
  return new BigUint64Array(out.buffer)[0]!;
}

export class HashDirtyTracker implements DirtySource {
  readonly kind = 'hash' as const;
  readonly pageCount: number;
  private snapshot: BigUint64Array | null = null;
  private readonly zeroHash: bigint;
  private zeroChunk: Buffer | null = null;

  constructor(private readonly region: FbRegion, readonly pageSize = 4096) {
    this.pageCount = Number(region.size / BigInt(pageSize));
    this.zeroHash = zeroPageHash(pageSize);
  }

  async start(): Promise<void> {
    this.snapshot = await this.hashAll();
  }

  async collect(): Promise<Uint32Array> {
    const prev = this.snapshot ?? (await this.hashAll());
    const now = await this.hashAll();
    this.snapshot = now;
    return diffHashes(prev, now);
  }

  stop(): void {
    this.snapshot = null;
  }

  private async hashAll(): Promise<BigUint64Array> {
    const out = new BigUint64Array(this.pageCount);
    // Two slices at a time: their zero scans and hashes run on the addon's threads, one per core here; the slices
    // write disjoint parts of `out`.
    let next = 0n;
    const lane = async (): Promise<void> => {
      while (next < this.region.size) {
        const off = next;
        const len = this.region.size - off < HASH_SLICE ? this.region.size - off : HASH_SLICE;
        next += len;
        await this.hashSlice(off, len, out);
      }
    };
    await Promise.all([lane(), lane()]);
    return out;
  }

  /**
   * One slice: classify its 1 MiB chunks as zero or not (memcmp against a zero chunk on this thread: ~70 GB/s, and
   * it stops at the first non-zero byte of a data chunk), give zero chunks the zero-page hash, and hash the runs of
   * non-zero chunks in the addon, all at once. Few awaits per slice on purpose: a scan of many small off-thread
   * calls waited for an event-loop turn per call and took 450 ms instead of 5 on a 1 GiB FB while a destination
   * in the same process was busy with the stream.
   */
  private async hashSlice(off: bigint, len: bigint, out: BigUint64Array): Promise<void> {
    const ps = BigInt(this.pageSize);
    if (this.region.sparseHash === true) {
      // The backing skips holes itself; reading chunks here would allocate every never-written page of the FB.
      out.set(await this.region.hashPages(off, len, this.pageSize), Number(off / ps));
      return;
    }
    const chunk = BigInt(ZERO_CHUNK);
    const end = off + len;
    const runs: Promise<void>[] = [];
    let runStart: bigint | null = null;
    const flush = (to: bigint): void => {
      if (runStart === null) return;
      const from = runStart;
      runStart = null;
      runs.push(this.region.hashPages(from, to - from, this.pageSize).then((h) => { out.set(h, Number(from / ps)); }));
    };
    for (let pos = off; pos < end; pos += chunk) {
      const n = end - pos < chunk ? end - pos : chunk;
      if (this.chunkIsZero(pos, Number(n))) {
        flush(pos);
        out.fill(this.zeroHash, Number(pos / ps), Number((pos + n) / ps));
      } else if (runStart === null) runStart = pos;
    }
    flush(end);
    await Promise.all(runs);
  }

  private chunkIsZero(off: bigint, n: number): boolean {
    const z = (this.zeroChunk ??= Buffer.alloc(ZERO_CHUNK));
    return this.region.window(off, n).compare(z, 0, n) === 0;
  }
}

/** Indices where two hash snapshots differ, ascending. */
export function diffHashes(a: BigUint64Array, b: BigUint64Array): Uint32Array {
  const n = Math.min(a.length, b.length);
  // Compare as 32-bit halves: BigInt element reads allocate, Uint32 reads do not.
  const a32 = new Uint32Array(a.buffer, a.byteOffset, n * 2);
  const b32 = new Uint32Array(b.buffer, b.byteOffset, n * 2);
  let out = new Uint32Array(64);
  let k = 0;
  for (let i = 0; i < n; i++) {
    if (a32[2 * i] !== b32[2 * i] || a32[2 * i + 1] !== b32[2 * i + 1]) {
      if (k === out.length) { const g = new Uint32Array(out.length * 2); g.set(out); out = g; }
      out[k++] = i;
    }
  }
  return out.slice(0, k);
}

/** Measures a dirty rate over a window of passes: bytes made dirty per second of guest run time. */
export class DirtyRateMeter {
  private samples: { bytes: number; ms: number }[] = [];
  constructor(private readonly keep = 3) {}
  record(dirtyBytes: number, elapsedMs: number): void {
    if (elapsedMs <= 0) return;
    this.samples.push({ bytes: dirtyBytes, ms: elapsedMs });
    if (this.samples.length > this.keep) this.samples.shift();
  }
  /** Bytes/s over the kept samples, 0 before the first. */
  rate(): number {
    let b = 0, ms = 0;
    for (const s of this.samples) { b += s.bytes; ms += s.ms; }
    return ms > 0 ? (b * 1000) / ms : 0;
  }
}
