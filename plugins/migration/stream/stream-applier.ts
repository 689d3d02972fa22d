/**
 * The destination side of a migration stream: check compatibility, write pages into the destination FB, collect
 * the firmware context, and accept the result only when the trailer validates.
 *
 * CHOICE (brief: stage, or write in place and scrub): we write IN PLACE. The destination vGPU is in RESUMING: no
 * guest runs on it and nothing else maps its FB, so writing there is invisible; staging a second copy would double
 * the memory of a 48 GB FB. Every frame is checked (its 64-bit frame check) before a byte of it is written, the compatibility header
 * before anything at all, and on ANY failure (corrupt frame, truncation, cancel, transport error) the whole
 * destination FB is zeroed (pages handed back) before the error propagates — the same scrub a destroy does — so a
 * refused stream leaves nothing behind. Firmware context is staged in memory (it is small) and handed to the GSP
 * only after the trailer validated.
 */
import { ErrorCode, VgpuError } from '../../../core/contracts/exceptions.js';
import { forEachWrittenExtent, type FbRegion } from '../fb-region.js';
import { checkCompat, type MigrationCompat } from './compat.js';
import { decodeFrames } from './stream-decoder.js';
import { DestinationPrefault, type PrefaultOutcome } from './destination-prefault.js';
import type { TrailerFields } from './frame-format.js';

/** FbRegion windows are at most 1 GiB. */
const VIEW_BYTES = 1 << 30;

export interface ApplyOptions {
  region: FbRegion;
  /** What this destination is; the stream's header must match it field by field. */
  expect: MigrationCompat;
  signal?: AbortSignal;
  /** Called after each applied page frame (bytes of FB written so far), for progress. */
  onProgress?: (appliedBytes: bigint) => void;
  /**
   * The stream carries only the device state — header, firmware context, trailer — and `region` is empty: the FB
   * pages travel separately (MigrationStateOptions.fbByCaller). Any page frame is then refused as past the FB end.
   */
  deviceStateOnly?: boolean;
  /**
   * Back and map the destination FB ahead of the stream (DestinationPrefault). Default: off, unless
   * VGPUD_MIGRATION_PREFAULT=1. Off because on the 2-core reference host it lost: the pre-fault's page zeroing took
   * the CPU the transport needed, and `npm run bench:migrate-fresh` gave up in 3 of 3 runs with it and converged in
   * 3 of 3 without it (downtime 61–84 ms; docs/benchmarks.md). For a host with cores to spare.
   */
  prefault?: boolean;
}

export interface ApplyResult {
  compat: MigrationCompat;
  trailer: TrailerFields;
  /** Firmware (GSP plugin) context chunks, in order. */
  firmwareContext: Buffer[];
  frames: number;
  appliedPages: bigint;
  /** Highest pre-copy pass seen. */
  passes: number;
  /** How the FB pre-fault ended (DestinationPrefault), and the bytes it reserved; absent for a device-state-only stream. */
  prefault?: { outcome: PrefaultOutcome; reservedBytes: bigint };
}

export async function applyStream(source: AsyncIterable<unknown>, opts: ApplyOptions): Promise<ApplyResult> {
  const { region, expect, signal } = opts;
  const ps = expect.pageSize;
  const totalPages = region.size / BigInt(ps);
  let touched = false;
  const fw: Buffer[] = [];
  let applied = 0n;
  let frames = 0;
  let passes = 0;
  let compat: MigrationCompat | null = null;
  const views: Buffer[] = [];
  const pagesPerView = VIEW_BYTES / ps;
  // Started once the first page frame was applied (destination-prefault.ts).
  let prefault: DestinationPrefault | null = null;
  const abortErr = (): VgpuError => new VgpuError(ErrorCode.Cancelled, 'migration restore cancelled', {
    hint: 'the destination FB was scrubbed; start the migration again when ready',
  });
  try {
    if (region.size !== expect.fbBytes && opts.deviceStateOnly !== true) {
      throw new VgpuError(ErrorCode.InvalidArgument, `destination FB region is ${region.size} bytes but the vGPU type has ${expect.fbBytes}`, {
        hint: 'pass the vGPU\'s whole guest FB as the region',
      });
    }
    // reuseBuffers: each frame is applied (page data copied into the FB, firmware chunks copied) before the next.
    for await (const f of decodeFrames(source, { reuseBuffers: true })) {
      if (signal?.aborted) throw abortErr();
      frames++;
      switch (f.type) {
        case 'header':
          checkCompat(f.compat, expect); // before anything is written
          compat = f.compat;
          break;
        case 'pages':
        case 'zero-pages': {
          if (BigInt(f.firstPage + f.count) > totalPages) {
            throw new VgpuError(ErrorCode.Migration, `migration stream names pages ${f.firstPage}..${f.firstPage + f.count - 1} past the FB end (${totalPages} pages)`, {
              hint: 'the stream does not belong to an FB of this size; migrate again from a compatible source',
              details: { firstPage: f.firstPage, count: f.count },
            });
          }
          touched = true;
          const off = BigInt(f.firstPage) * BigInt(ps);
          if (f.type === 'pages') f.data.copy(region.window(off, f.data.length));
          else if (f.count >= 256) await zeroWhereNeeded(region, off, BigInt(f.count * ps)); // large runs: give pages back
          else region.window(off, f.count * ps).fill(0); // small runs: an addon round trip would cost more
          applied += BigInt(f.count);
          if (f.pass > passes) passes = f.pass;
          opts.onProgress?.(applied * BigInt(ps));
          // After the first page frame (a fresh FB's whole-FB zero record, checked against the written record that
          // the pre-fault's mapping would fill): back and map the rest ahead of the stream.
          if (prefault === null && (opts.prefault ?? prefaultByDefault())) prefault = new DestinationPrefault(region);
          break;
        }
        case 'scatter': {
          let max = 0;
          for (const pg of f.pages) if (pg > max) max = pg;
          if (BigInt(max) >= totalPages) {
            throw new VgpuError(ErrorCode.Migration, `migration stream names page ${max} past the FB end (${totalPages} pages)`, {
              hint: 'the stream does not belong to an FB of this size; migrate again from a compatible source', details: { page: max },
            });
          }
          touched = true;
          for (let i = 0; i < f.pages.length; i++) {
            // A cached 1 GiB view per page instead of a window each: BigInt maths and a view per page cost more
            // than the 4 KiB copy.
            const pg = f.pages[i]!;
            const k = Math.floor(pg / pagesPerView);
            let v = views[k];
            if (v === undefined) {
              const start = BigInt(k) * BigInt(VIEW_BYTES);
              const left = region.size - start;
              v = region.window(start, Number(left < BigInt(VIEW_BYTES) ? left : BigInt(VIEW_BYTES)));
              views[k] = v;
            }
            f.data.copy(v, (pg - k * pagesPerView) * ps, i * ps, (i + 1) * ps);
          }
          applied += BigInt(f.pages.length);
          if (f.pass > passes) passes = f.pass;
          opts.onProgress?.(applied * BigInt(ps));
          if (prefault === null && (opts.prefault ?? prefaultByDefault())) prefault = new DestinationPrefault(region);
          break;
        }
        case 'fw-context':
          fw.push(Buffer.from(f.data)); // own copy: the frame Buffer may alias a socket chunk
          break;
        case 'trailer':
          if (compat === null) throw new VgpuError(ErrorCode.Internal, 'trailer before header', {});
          // Stop reserving; the piece in flight (≤ PIECE) is NOT waited for: the trailer is on the guest's downtime
          // path, and a piece on the idle-priority job threads of a busy host can take long. It only backs pages
          // without writing them, so the FB's contents and written record do not depend on it (DestinationPrefault).
          const pf = prefault === null ? undefined : { outcome: prefault.stopNow(), reservedBytes: prefault.reservedBytes };
          return { compat, trailer: f.trailer, firmwareContext: fw, frames, appliedPages: applied, passes, ...(pf ? { prefault: pf } : {}) };
      }
    }
    throw new VgpuError(ErrorCode.Migration, 'migration stream ended without a trailer', { hint: 'migrate again from the source' });
  } catch (err) {
    // Stop the pre-fault first, so the scrub below gives back everything it reserved.
    if (prefault !== null) await prefault.stop();
    if (touched || prefault !== null) await region.zero(0n, region.size);
    if (signal?.aborted && !(err instanceof VgpuError && err.code === ErrorCode.Cancelled)) throw abortErr();
    throw err;
  }
}

/** After a non-zero word, how much is zeroed before the scan resumes: big enough that the scans are few. */
const ZERO_PIECE = 64n << 20n;

/**
 * Zero a large run, skipping the parts that already are zero. A destination vGPU is created scrubbed, so the full
 * pass's zero runs over it — and the whole-FB "the rest is zero" run a mostly unwritten source sends first — change
 * nothing; zeroing them anyway cost 29 s and made a sparse 11 GiB worker-mode FB fully resident (measured on 12Q),
 * and held up every later frame. So the run is checked, not assumed. Where the backing keeps a written record
 * (writtenExtents: the simulator's sparse file), only its written extents are looked at — holes read zero — so a
 * scrubbed destination answers with a few syscalls on the loop; an off-thread scan job instead waited behind a busy
 * host (its threads run at idle priority) while the source's stream backed up. The rest: one scan (memory speed,
 * allocates nothing), and only from a non-zero word on is a piece zeroed before scanning again. Backings without a
 * scan (no firstNonZero) are zeroed as before.
 */
async function zeroWhereNeeded(region: FbRegion, off: bigint, len: bigint): Promise<void> {
  if (!region.firstNonZero) return region.zero(off, len);
  if (region.writtenExtents !== undefined) return forEachWrittenExtent(region, off, len, (b, e) => zeroScanned(region, b, e - b));
  return zeroScanned(region, off, len);
}

async function zeroScanned(region: FbRegion, off: bigint, len: bigint): Promise<void> {
  const end = off + len;
  for (let pos = off; pos < end;) {
    const nz = await region.firstNonZero!(pos, end - pos);
    if (nz === null) return;
    const from = nz - (nz % 4096n); // the FB region's pages are 4 KiB aligned multiples of the stream page size
    const to = end - from < ZERO_PIECE ? end : from + ZERO_PIECE;
    await region.zero(from, to - from);
    pos = to;
  }
}

/** VGPUD_MIGRATION_PREFAULT=1 turns the destination's FB pre-fault on where a caller does not say (ApplyOptions.prefault). */
function prefaultByDefault(): boolean {
  return process.env['VGPUD_MIGRATION_PREFAULT'] === '1';
}
