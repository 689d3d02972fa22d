/**
 * The destination's FB pre-fault: a migration's destination backs its whole FB with memory as the stream starts, so
 * the pages the stream writes cost no allocation in the page fault. Real VRAM is always there; the simulator's FB
 * is a sparse file, where every page written into a hole was a page allocation on the destination's apply path
 * (docs/reference/precopy-convergence.md). The backing is reserved without writing (FbRegion.prefault: fallocate),
 * so the FB still reads zero where the stream writes nothing, and the sparse file's record of written pages — which
 * the stream's "the rest is zero" check reads — stays exact.
 *
 * Bounded: in 16 MiB pieces, one at a time off the event loop, stopped as soon as the stream ends; skipped when the
 * host's available memory or the backing filesystem has less than the FB plus KEEP_FREE left. Cost: the FB's size
 * in backing memory for as long as the vGPU lives (its scrub gives it back), as with real VRAM.
 */
import { freemem } from 'node:os';
import type { FbRegion } from '../fb-region.js';

/** Memory (and filesystem room) a pre-fault leaves free beyond the FB itself. */
const KEEP_FREE = 1n << 30n;
/** One reservation call: short, so that stopping (which a failed stream waits for) waits little. */
const PIECE = 16n << 20n;

export type PrefaultOutcome = 'reserved' | 'stopped' | 'no-room' | 'unsupported' | 'failed';

export class DestinationPrefault {
  private stopping = false;
  private finished: PrefaultOutcome | null = null;
  /** Resolves with how it ended, once the last piece returned. */
  readonly done: Promise<PrefaultOutcome>;
  /** Bytes reserved so far (the pieces that returned 'reserved'). */
  reservedBytes = 0n;

  constructor(private readonly region: FbRegion, available: () => number = freemem) {
    this.done = this.run(available).then((o) => (this.finished = o));
  }

  /** Stop after the piece in flight; resolves when no piece runs any more. */
  stop(): Promise<PrefaultOutcome> {
    this.stopping = true;
    return this.done;
  }

  /**
   * Stop starting pieces, without waiting for the one in flight: how it ended so far ('stopped' while pieces were
   * left, else the final outcome once known). The piece in flight finishes in the background; if the FB is scrubbed
   * before it does (a destroy right after the migration), up to one piece of reserved, zero-reading pages can land
   * after the scrub — never data, and the range's next scrub gives it back.
   */
  stopNow(): PrefaultOutcome {
    this.stopping = true;
    return this.finished ?? 'stopped';
  }

  private async run(available: () => number): Promise<PrefaultOutcome> {
    const r = this.region;
    if (r.prefault === undefined) return 'unsupported';
    if (BigInt(Math.floor(available())) < r.size + KEEP_FREE) return 'no-room';
    for (let at = 0n; at < r.size; at += PIECE) {
      if (this.stopping) return 'stopped';
      const n = r.size - at < PIECE ? r.size - at : PIECE;
      if (allData(r, at, n)) continue; // already backed and written (a warm FB): nothing to reserve
      let res: Awaited<ReturnType<NonNullable<FbRegion['prefault']>>>;
      try {
        res = await r.prefault(at, n, KEEP_FREE);
      } catch {
        return 'failed'; // what was reserved stays with the FB (reads zero; its scrub gives it back)
      }
      if (res !== 'reserved') return res;
      this.reservedBytes += n;
    }
    return 'reserved';
  }
}

/** Whether the region's written record says `[at, at+n)` is written throughout (two lseek calls). */
function allData(r: FbRegion, at: bigint, n: bigint): boolean {
  if (r.writtenExtents === undefined) return false;
  const e = r.writtenExtents(at, n);
  return e.length === 2 && e[0]! <= at && e[1]! >= at + n;
}
