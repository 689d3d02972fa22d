/**
 * The destination's FB pre-fault: a migration's destination backs and maps its whole FB ahead of the stream, so the
 * pages the stream writes take no page fault. Real VRAM is always there and the host's mapping of it takes no
 * faults; the simulator's FB is a sparse file, where every page the stream wrote into a hole (a scrubbed
 * destination is all hole) was a fault that allocated, zeroed and mapped the page on the destination's apply path —
 * measured on bench:migrate-fresh, the destination's loop thread spent 2.3 ms of CPU per MiB of stream against
 * 1.0 ms in the filled case, whose destination pages were already mapped (docs/benchmarks.md). Each piece is first
 * reserved (fallocate: no write, reads stay zero), then mapped for writing (MADV_POPULATE_WRITE) in this process
 * (FbRegion.prefault with `map`; docs/reference/precopy-convergence.md).
 *
 * OFF by default (ApplyOptions.prefault, VGPUD_MIGRATION_PREFAULT=1): on the 2-core reference host the pre-fault's
 * page zeroing competed with the transport for the two cores, and the fresh-FB bench gave up with it in 3 runs of 3
 * and converged without it in 3 of 3 (docs/benchmarks.md). It pays where cores are spare.
 *
 * It starts once the stream's first page frame was applied: for a fresh FB that is the whole-FB "the rest is zero"
 * record, whose check reads the written record — which mapping the pages would fill (a mapped page counts as
 * written). The price of mapping: the FB's pages count as written from then on (a vGPU migrated in migrates out
 * with the dense full pass, as a filled FB does) and as this process's RSS.
 *
 * Bounded: in 16 MiB pieces, one at a time off the event loop, stopped as soon as the stream ends; skipped when the
 * host's available memory or the backing filesystem has less than the FB plus KEEP_FREE left; pieces the record
 * shows written throughout (a warm FB) are skipped. Cost: the FB's size in backing memory for as long as the vGPU
 * lives (its scrub gives it back), as with real VRAM.
 */
import { freemem } from 'node:os';
import type { FbRegion } from '../fb-region.js';

/** Memory (and filesystem room) a pre-fault leaves free beyond the FB itself. */
const KEEP_FREE = 1n << 30n;
/** One reservation call: short, so that stopping (which a failed stream waits for) waits little. */
const PIECE = 16n << 20n;

export type PrefaultOutcome = 'mapped' | 'reserved' | 'stopped' | 'no-room' | 'unsupported' | 'failed';

export class DestinationPrefault {
  private stopping = false;
  private finished: PrefaultOutcome | null = null;
  /** Resolves with how it ended, once the last piece returned. */
  readonly done: Promise<PrefaultOutcome>;
  /** Bytes backed so far (the pieces that returned 'mapped' or 'reserved'). */
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
   * before it does (a destroy right after the migration), up to one piece of backed, zero-reading pages can land
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
    let last: 'mapped' | 'reserved' = 'mapped';
    for (let at = 0n; at < r.size; at += PIECE) {
      if (this.stopping) return 'stopped';
      const n = r.size - at < PIECE ? r.size - at : PIECE;
      if (allData(r, at, n)) continue; // already backed and written (a warm FB): nothing to reserve
      let res: Awaited<ReturnType<NonNullable<FbRegion['prefault']>>>;
      try {
        res = await r.prefault(at, n, { keepFreeBytes: KEEP_FREE, map: true });
      } catch {
        return 'failed'; // what was backed stays with the FB (reads zero; its scrub gives it back)
      }
      if (res !== 'mapped' && res !== 'reserved') return res;
      this.reservedBytes += n;
      last = res;
    }
    return last;
  }
}

/** Whether the region's written record says `[at, at+n)` is written throughout (two lseek calls). */
function allData(r: FbRegion, at: bigint, n: bigint): boolean {
  if (r.writtenExtents === undefined) return false;
  const e = r.writtenExtents(at, n);
  return e.length === 2 && e[0]! <= at && e[1]! >= at + n;
}
