/**
 * The FB pre-copy engine. Source: a SaveSession streams the whole FB while the guest runs (PRE_COPY), then passes
 * over the pages the DirtySource reports, until the downtime estimator says the rest fits the downtime budget;
 * then it stops the device (STOP_COPY), sends the last dirty pages, the firmware context and the trailer.
 * Destination: `receiveMigration` applies the stream (RESUMING) and resolves only once the trailer validated
 * (RESUMING → STOP).
 *
 * Cancel at any stage: the source only ever READ its FB, so cancelling means ending the stream (the destination
 * sees a truncation and scrubs), resuming the device if it was stopped and cancelling a firmware save in progress:
 * the source is back to RUNNING with its FB as the guest left it.
 */
import type { Readable, Writable } from 'node:stream';
import { Socket } from 'node:net';
import { ErrorCode, VgpuError } from '../../core/contracts/exceptions.js';
import { forEachWrittenExtent, type FbRegion } from './fb-region.js';
import type { DirtySource } from './dirty-tracker.js';
import { DirtyRateMeter } from './dirty-tracker.js';
import { DEFAULT_POLICY, decidePass, estimateStopCost, type EstimatorDecision, type EstimatorPolicy } from './downtime-estimator.js';
import { StreamEncoder, type EncoderTotals } from './stream/stream-encoder.js';
import { DEFAULT_RUN_PAGES } from './stream/frame-format.js';

/** Most data windows the full pass reads without asking the backing's scan (see SaveSession.knownZero). */
const DENSE_STREAK_MAX = 1024;
/** Consecutive dirty pages worth a PAGES frame of their own (with zero-page detection); shorter go to SCATTER. */
const MIN_RUN = 8;
/** Cached FB views for per-page copies (FbRegion windows are at most 1 GiB). */
const VIEW_BYTES = 1 << 30;
/**
 * A full pass sends only the written extents (and a zero record for the rest) when they are at most this share of
 * the FB. Above it the dense pass is as cheap, and the destination is spared making its whole FB zero first.
 */
const WRITTEN_MAX_SHARE = 0.5;
/** Copy buffers kept for reuse: enough for the frames a socket keeps in flight (transport SEND_HIGH_WATER_MARK). */
const POOL_MAX = 16;
import type { MigrationCompat } from './stream/compat.js';
import { applyStream, type ApplyResult } from './stream/stream-applier.js';

/** Quiesce and restart the source device (vCPU stop + MIGRATION_STOP_WORK; RESUME_WORK / CANCEL_STOP). */
export interface DeviceControl {
  stop(): Promise<void>;
  resume(): Promise<void>;
}

/** The GSP plugin's saved state (MIGRATION_SAVE_STATE through the 2 MiB buffer); opaque chunks. */
export interface FirmwareContextSource {
  save(signal?: AbortSignal): AsyncIterable<Uint8Array>;
  /** Abandon a save in progress (MIGRATION_CANCEL_SAVE). */
  cancel?(): Promise<void>;
}

/** VFIO_MIG_GET_PRECOPY_INFO. */
export interface PrecopyInfo {
  initialBytes: bigint;
  dirtyBytes: bigint;
}

export interface PassReport {
  pass: number;
  pages: number;
  bytes: number;
  ms: number;
  /** Bytes found dirty at the end of this pass (what the next pass will send). */
  dirtyAfter: number;
  /** The dirty scan (collect) that ended this pass, ms: what the final scan after the stop will cost again. */
  scanMs?: number;
}

/**
 * Where the time of a stop-copy went on the source, ms (each piece measured, none derived). Downtime is these plus
 * the destination's tail (last frames applied, firmware restore, resume) and the reply.
 */
export interface StopCopyBreakdown {
  /** MIGRATION_STOP_WORK (or whatever DeviceControl.stop does). */
  stopWorkMs: number;
  /** The final dirty collect while stopped (a full FB rescan for a hash tracker). */
  finalScanMs: number;
  finalPages: number;
  /** Sending the final dirty pages (handed to the transport; the tail may still be in flight). */
  finalSendMs: number;
  /** MIGRATION_SAVE_STATE and reading the context out of the 2 MiB migration buffer, including its frames. */
  firmwareSaveMs: number;
  firmwareBytes: number;
  /** The trailer written (waits for the transport to take it). */
  trailerMs: number;
}

export interface SaveSessionOptions {
  region: FbRegion;
  dirty: DirtySource;
  sink: Writable;
  compat: MigrationCompat;
  runPages?: number;
  signal?: AbortSignal;
}

export class SaveSession {
  readonly pageSize: number;
  readonly pageCount: number;
  private readonly enc: StreamEncoder;
  private readonly runPages: number;
  private readonly zero: Buffer;
  private initialLeft: number;
  private pendingDirty: Uint32Array = new Uint32Array(0);
  private pendingSentIdx = 0;
  private pass = 0;
  private lastCollect = 0;
  /** The zero run the full pass is growing (flushed before any frame that is not its continuation). */
  private zeroRun: { first: number; count: number } | null = null;
  /** Full pass: pages below this index were found all zero by the backing's scan (not read, not allocated). */
  private knownZeroUntil = 0;
  /** Full pass, adaptive scan (see knownZero): bytes the next scan covers, and data windows read without a scan. */
  private scanSpan = 0n;
  private denseUntil = 0;
  private denseStreak = 0;
  private readonly views: Buffer[] = [];
  /**
   * Recycled page-copy buffers. A fresh 1 MiB allocation per frame costs page faults on first touch (the copy ran
   * at ~3 GB/s instead of memcpy speed), and GC time: in the vfio-user front a third of its CPU went to collecting
   * them. Only for a sink whose write callback means the bytes are out of the buffer: a socket (the kernel holds
   * them) or a SavingSink (consumedOnCallback: the reader copied them out). A PassThrough calls back while the chunk
   * still sits, by reference, in its readable buffer.
   */
  private readonly pool: Buffer[] | null;
  stopped = false;
  /** The last stopCopy's timing, once it finished. */
  lastStop: StopCopyBreakdown | null = null;

  constructor(private readonly o: SaveSessionOptions) {
    this.pageSize = o.compat.pageSize;
    if (o.dirty.pageSize !== this.pageSize) {
      throw new VgpuError(ErrorCode.InvalidArgument, `dirty source page size ${o.dirty.pageSize} ≠ stream page size ${this.pageSize}`, { hint: 'use one page size' });
    }
    this.pageCount = Number(o.region.size / BigInt(this.pageSize));
    this.initialLeft = this.pageCount;
    this.runPages = o.runPages ?? DEFAULT_RUN_PAGES;
    this.enc = new StreamEncoder(o.sink, this.pageSize);
    this.zero = Buffer.alloc(this.pageSize);
    this.pool = o.sink instanceof Socket || (o.sink as { consumedOnCallback?: boolean }).consumedOnCallback === true ? [] : null;
  }

  /** A buffer of runPages pages, and the callback that gives it back once its last frame was sent. */
  private take(): { buf: Buffer; release: (() => void) | undefined } {
    const size = this.runPages * this.pageSize;
    const pool = this.pool;
    if (pool === null) return { buf: Buffer.allocUnsafe(size), release: undefined };
    const buf = pool.pop() ?? Buffer.allocUnsafe(size);
    return { buf, release: () => { if (pool.length < POOL_MAX) pool.push(buf); } };
  }

  totals(): EncoderTotals {
    return this.enc.totals();
  }

  precopyInfo(): PrecopyInfo {
    const ps = BigInt(this.pageSize);
    const pending = this.pendingDirty.length - this.pendingSentIdx;
    const live = this.o.dirty.peekCount?.() ?? 0;
    return { initialBytes: BigInt(this.initialLeft) * ps, dirtyBytes: BigInt(pending + live) * ps };
  }

  /** Header + start dirty tracking. Tracking starts BEFORE the first page is read, so no write is missed. */
  async begin(): Promise<void> {
    await this.o.dirty.start();
    this.lastCollect = performance.now();
    await this.enc.writeHeader(this.o.compat);
  }

  async fullPass(): Promise<PassReport> {
    const t0 = performance.now();
    this.pass = 1;
    const before = this.enc.totals().streamBytes;
    const written = await this.writtenShare();
    if (written !== null) {
      await this.writtenOnlyPass(written);
      return this.finishPass(t0, this.pageCount, before);
    }
    let sent = 0;
    for (let p = 0; p < this.pageCount; p += this.runPages) {
      this.checkAbort();
      const n = Math.min(this.runPages, this.pageCount - p);
      sent += await this.sendWindow(p, n);
      this.initialLeft -= n;
    }
    await this.flushZeroRun();
    return this.finishPass(t0, sent, before);
  }

  /**
   * Pages the backing says may hold data (FbRegion.writtenExtents), when that is at most WRITTEN_MAX_SHARE of the
   * FB; null when the region cannot tell or most of it was written (then the dense pass is as cheap, and the
   * destination need not make its whole FB zero first). Asked span by span, so the extent list stays small.
   */
  private async writtenShare(): Promise<number | null> {
    const r = this.o.region;
    if (r.writtenExtents === undefined) return null;
    const limit = BigInt(Math.floor(Number(r.size) * WRITTEN_MAX_SHARE));
    let bytes = 0n;
    await forEachWrittenExtent(r, 0n, r.size, (b, e) => {
      bytes += e - b;
      return bytes > limit ? false : undefined; // past the limit: stop listing
    });
    return bytes > limit ? null : Number(bytes / BigInt(this.pageSize));
  }

  /**
   * The full pass of a mostly unwritten FB: one ZERO_PAGES run over the whole FB first (the "rest is zero"
   * record: a header, no bytes; the destination checks it against its own FB — over its written record where it
   * keeps one — and zeroes only what is not zero), then only the pages inside the written extents that hold data. Dirty tracking began before
   * the extents were read (begin()), so a page written after that is in the dirty set whatever the extents said,
   * and one written before is in the extents: nothing is missed. Zero pages inside the extents (a hole read
   * through a mapping is backed too) are covered by the baseline and not sent. Never-written pages are not read
   * either: reading them through the FB mapping would make the simulator's shared memory back them.
   */
  private async writtenOnlyPass(writtenPages: number): Promise<void> {
    const r = this.o.region;
    const ps = this.pageSize;
    const psb = BigInt(ps);
    this.initialLeft = writtenPages;
    await this.enc.writeZeroPages(0, this.pageCount, this.pass);
    // The guest's writes land on random pages: the extents are mostly single pages. Their data pages are gathered
    // into SCATTER frames of runPages pages (a frame per extent cost a header, a check and an event-loop turn per
    // page: 18 s for 20 k pages on a loaded host).
    const skip = this.skipper();
    let cur = this.take();
    const idx = new Uint32Array(this.runPages);
    let k = 0;
    const flush = async (): Promise<void> => {
      if (k === 0) return;
      const { buf, release } = cur;
      const pages = idx.slice(0, k);
      k = 0;
      cur = this.take();
      await this.enc.writeScatter(pages, buf.subarray(0, pages.length * ps), this.pass, release);
    };
    await forEachWrittenExtent(r, 0n, r.size, async (b, e) => {
      this.checkAbort();
      const end = Number((e + psb - 1n) / psb);
      for (let p = Number(b / psb); p < end; p++) {
        this.initialLeft = Math.max(0, this.initialLeft - 1);
        if (skip?.(p)) continue; // written again since tracking began: the next pass sends it
        this.copyPage(p, cur.buf, k * ps);
        if (cur.buf.compare(this.zero, 0, ps, k * ps, (k + 1) * ps) === 0) continue; // the zero record covers it
        idx[k++] = p;
        if (k === this.runPages) await flush();
      }
    });
    await flush();
    cur.release?.();
    this.initialLeft = 0;
  }

  /** Send what the previous pass left dirty, then collect what this pass left. */
  async dirtyPass(): Promise<PassReport> {
    const t0 = performance.now();
    this.pass++;
    const before = this.enc.totals().streamBytes;
    const n = await this.sendPending();
    return this.finishPass(t0, n, before);
  }

  /** Stop the device, send the rest, the firmware context and the trailer. Times each piece (`lastStop`). */
  async stopCopy(device: DeviceControl, firmware?: FirmwareContextSource): Promise<EncoderTotals> {
    this.checkAbort();
    const t0 = performance.now();
    await device.stop();
    this.stopped = true;
    this.pass++;
    const t1 = performance.now();
    // Final collect: the device is quiesced, so this is every page still different from what we sent.
    const more = await this.o.dirty.collect();
    this.pendingDirty = mergeSorted(this.pendingDirty.subarray(this.pendingSentIdx), more);
    this.pendingSentIdx = 0;
    const t2 = performance.now();
    const finalPages = await this.sendPending();
    const t3 = performance.now();
    let firmwareBytes = 0;
    if (firmware) {
      for await (const chunk of firmware.save(this.o.signal)) {
        this.checkAbort();
        firmwareBytes += chunk.byteLength;
        await this.enc.writeFirmwareContext(chunk);
      }
    }
    const t4 = performance.now();
    const t = await this.enc.finish();
    this.o.dirty.stop();
    const t5 = performance.now();
    this.lastStop = {
      stopWorkMs: t1 - t0, finalScanMs: t2 - t1, finalPages, finalSendMs: t3 - t2, firmwareSaveMs: t4 - t3, firmwareBytes, trailerMs: t5 - t4,
    };
    return t;
  }

  abort(reason?: Error): void {
    this.o.dirty.stop();
    this.enc.abort(reason);
  }

  private async finishPass(t0: number, pages: number, before: bigint): Promise<PassReport> {
    const now = performance.now();
    const more = await this.o.dirty.collect();
    this.pendingDirty = mergeSorted(this.pendingDirty.subarray(this.pendingSentIdx), more);
    this.pendingSentIdx = 0;
    this.lastCollect = now;
    const bytes = Number(this.enc.totals().streamBytes - before);
    return { pass: this.pass, pages, bytes, ms: now - t0, dirtyAfter: this.pendingDirty.length * this.pageSize, scanMs: performance.now() - now };
  }

  /** The dirty source's per-page peek, while the guest runs (after the stop every page must go: no skipping). */
  private skipper(): ((page: number) => boolean) | null {
    const d = this.o.dirty;
    return !this.stopped && d.isDirty ? (page: number) => d.isDirty!(page) : null;
  }

  /**
   * Send the pending dirty pages: runs of ≥ MIN_RUN consecutive pages as PAGES frames, the scattered rest batched
   * into SCATTER_PAGES frames (one frame per single page would cost a header, a CRC call and a write each). A page
   * the dirty log shows written AGAIN since it was collected is skipped: its bit is still set, so the collect at the
   * end of this pass hands it to the next pass, and sending it now would only send it twice.
   */
  private async sendPending(): Promise<number> {
    const list = this.pendingDirty;
    const ps = this.pageSize;
    const skip = this.skipper();
    let sent = 0;
    let i = this.pendingSentIdx;
    const batch = new Uint32Array(this.runPages);
    let nb = 0;
    const flush = async (): Promise<void> => {
      if (nb === 0) return;
      const idx = batch.slice(0, nb);
      nb = 0;
      const { buf, release } = this.take();
      const data = buf.subarray(0, idx.length * ps);
      for (let k = 0; k < idx.length; k++) this.copyPage(idx[k]!, data, k * ps);
      await this.enc.writeScatter(idx, data, this.pass, release);
    };
    while (i < list.length) {
      this.checkAbort();
      const first = list[i]!;
      if (skip?.(first)) { i++; this.pendingSentIdx = i; continue; }
      let n = 1;
      while (i + n < list.length && n < this.runPages && list[i + n] === first + n) n++;
      if (n >= MIN_RUN) await this.sendRun(first, n);
      else {
        for (let k = 0; k < n; k++) batch[nb++] = first + k;
        if (nb >= this.runPages - MIN_RUN) await flush();
      }
      i += n;
      sent += n;
      this.pendingSentIdx = i;
    }
    await flush();
    this.pendingDirty = new Uint32Array(0);
    this.pendingSentIdx = 0;
    return sent;
  }

  /** Copy one FB page into `out` at `at` from a cached 1 GiB view (a window per page cost BigInt maths and a view). */
  private copyPage(page: number, out: Buffer, at: number): void {
    const ps = this.pageSize;
    const perView = VIEW_BYTES / ps;
    const k = Math.floor(page / perView);
    let v = this.views[k];
    if (v === undefined) {
      const start = BigInt(k) * BigInt(VIEW_BYTES);
      const left = this.o.region.size - start;
      v = this.o.region.window(start, Number(left < BigInt(VIEW_BYTES) ? left : BigInt(VIEW_BYTES)));
      this.views[k] = v;
    }
    const rel = (page - k * perView) * ps;
    v.copy(out, at, rel, rel + ps);
  }

  /**
   * One window of the full pass. Pages are copied out once, then classified: pages the dirty log shows written
   * since the pass began are skipped (the next pass sends them), all-zero pages become ZERO_PAGES, the rest data.
   * Windows of nothing but zero (and skipped) pages join one long zero run, so a freshly scrubbed FB costs a few
   * frames instead of one per gap between the guest's writes; a mostly-zero window is covered by one zero run and
   * its few data pages follow in a SCATTER frame (later frames override earlier ones at the destination).
   * Returns the pages described.
   */
  private async sendWindow(first: number, n: number): Promise<number> {
    const ps = this.pageSize;
    if (await this.knownZero(first, n)) {
      // Skipped pages ride in the zero run too: the next pass sends them again.
      if (this.zeroRun !== null && this.zeroRun.first + this.zeroRun.count === first) this.zeroRun.count += n;
      else { await this.flushZeroRun(); this.zeroRun = { first, count: n }; }
      return n;
    }
    const { buf, release } = this.take();
    const copy = buf.subarray(0, n * ps);
    this.o.region.window(BigInt(first) * BigInt(ps), n * ps).copy(copy);
    const skip = this.skipper();
    const kind = new Uint8Array(n); // 0 skipped, 1 zero, 2 data
    let zeros = 0, data = 0;
    for (let i = 0; i < n; i++) {
      if (skip?.(first + i)) continue;
      // Compare against the zero page: memcmp stops at the first non-zero byte, so data pages cost almost nothing.
      if (copy.compare(this.zero, 0, ps, i * ps, (i + 1) * ps) === 0) { kind[i] = 1; zeros++; }
      else { kind[i] = 2; data++; }
    }
    if (data === 0) {
      // Skipped pages may ride in the zero run: they are sent again after it anyway.
      if (this.zeroRun !== null && this.zeroRun.first + this.zeroRun.count === first) this.zeroRun.count += n;
      else { await this.flushZeroRun(); this.zeroRun = { first, count: n }; }
      release?.();
      return zeros;
    }
    if (zeros > data) {
      if (this.zeroRun !== null && this.zeroRun.first + this.zeroRun.count === first) this.zeroRun.count += n;
      else { await this.flushZeroRun(); this.zeroRun = { first, count: n }; }
      await this.flushZeroRun();
      await this.sendCompacted(first, copy, kind, 2, data, release);
      return zeros + data;
    }
    await this.flushZeroRun();
    if (zeros + data === n) await this.enc.writePages(first, copy, this.pass, release);
    else await this.sendCompacted(first, copy, kind, 1, zeros + data, release);
    return zeros + data;
  }

  /**
   * Whether pages [first, first+n) are all zero by the backing's own scan, where the region is sparse (hole-aware
   * hash and scan): reading a never-written page of a shared-memory FB through a window would allocate it, so a
   * mostly unwritten FB would be committed whole by the full pass. The scan adapts, because each call is an
   * off-thread job that scans its whole span on every thread: a zero span doubles the next one (up to 1 GiB: a
   * sparse FB costs a few calls), and data found in a window lets the next 1, 2, 4 … DENSE_STREAK_MAX windows be
   * read without a scan (a written FB costs a call per GiB, not one per window). The scans run on the addon's
   * SCHED_IDLE threads, which a busy host starves: at one call per 64 windows the full pass of a written 5.7 GiB FB
   * ran 20 % slower. Cost of the cap: a run of data windows followed by holes reads (and allocates) up to that
   * many windows of holes. Better still would be a synchronous SEEK_DATA lookup on the loop (one syscall). A page the guest writes after the scan is in
   * the dirty set (tracking began before the full pass) and goes in the next pass, as for any page already sent.
   */
  private async knownZero(first: number, n: number): Promise<boolean> {
    const r = this.o.region;
    if (r.sparseHash !== true || r.firstNonZero === undefined) return false;
    if (first + n <= this.knownZeroUntil) return true;
    if (first < this.knownZeroUntil || first < this.denseUntil) return false;
    const ps = BigInt(this.pageSize);
    const windowBytes = BigInt(n) * ps;
    if (this.scanSpan < windowBytes) this.scanSpan = windowBytes;
    const from = BigInt(first) * ps;
    const left = r.size - from;
    const span = left < this.scanSpan ? left : this.scanSpan;
    const nz = await r.firstNonZero(from, span);
    if (nz === null) {
      this.knownZeroUntil = Number((from + span) / ps);
      this.scanSpan = this.scanSpan * 2n > 1n << 30n ? 1n << 30n : this.scanSpan * 2n;
      this.denseStreak = 0;
      return first + n <= this.knownZeroUntil;
    }
    this.knownZeroUntil = Number(nz / ps);
    this.scanSpan = windowBytes;
    if (this.knownZeroUntil < first + n) {
      this.denseStreak = Math.min(DENSE_STREAK_MAX, this.denseStreak === 0 ? 1 : this.denseStreak * 2);
      this.denseUntil = first + n * (1 + this.denseStreak);
    }
    return false;
  }

  /** SCATTER the pages of `copy` whose kind is ≥ `minKind`, compacted in place (memmove) into one frame. */
  private async sendCompacted(first: number, copy: Buffer, kind: Uint8Array, minKind: number, count: number, release?: () => void): Promise<void> {
    const ps = this.pageSize;
    const idx = new Uint32Array(count);
    let k = 0;
    for (let i = 0; i < kind.length; i++) {
      if (kind[i]! < minKind) continue;
      if (k !== i) copy.copy(copy, k * ps, i * ps, (i + 1) * ps);
      idx[k++] = first + i;
    }
    await this.enc.writeScatter(idx, copy.subarray(0, k * ps), this.pass, release);
  }

  private async flushZeroRun(): Promise<void> {
    const z = this.zeroRun;
    if (z === null) return;
    this.zeroRun = null;
    await this.enc.writeZeroPages(z.first, z.count, this.pass);
  }

  /** Copy pages [first, first+n) out of the FB once, then frame zero and non-zero sub-runs from the copy. */
  private async sendRun(first: number, n: number): Promise<void> {
    const ps = this.pageSize;
    const { buf, release } = this.take();
    const copy = buf.subarray(0, n * ps);
    this.o.region.window(BigInt(first) * BigInt(ps), n * ps).copy(copy);
    let i = 0;
    while (i < n) {
      const isZero = copy.compare(this.zero, 0, ps, i * ps, (i + 1) * ps) === 0;
      let j = i + 1;
      while (j < n && (copy.compare(this.zero, 0, ps, j * ps, (j + 1) * ps) === 0) === isZero) j++;
      // The socket sends frames in order: the last frame's callback means the whole copy is out.
      const done = j === n ? release : undefined;
      if (isZero) await this.enc.writeZeroPages(first + i, j - i, this.pass, done);
      else await this.enc.writePages(first + i, copy.subarray(i * ps, j * ps), this.pass, done);
      i = j;
    }
  }

  private checkAbort(): void {
    if (this.o.signal?.aborted) {
      throw new VgpuError(ErrorCode.Cancelled, 'migration cancelled', { hint: 'the source vGPU keeps running; migrate again when ready' });
    }
  }
}

function mergeSorted(a: Uint32Array, b: Uint32Array): Uint32Array {
  if (a.length === 0) return b;
  if (b.length === 0) return a.slice();
  const out = new Uint32Array(a.length + b.length);
  let i = 0, j = 0, k = 0;
  while (i < a.length && j < b.length) {
    const x = a[i]!, y = b[j]!;
    if (x < y) { out[k++] = x; i++; } else if (y < x) { out[k++] = y; j++; } else { out[k++] = x; i++; j++; }
  }
  while (i < a.length) out[k++] = a[i++]!;
  while (j < b.length) out[k++] = b[j++]!;
  return out.slice(0, k);
}

export interface MigrateSourceOptions extends SaveSessionOptions {
  device: DeviceControl;
  firmware?: FirmwareContextSource;
  policy?: Partial<EstimatorPolicy>;
  /** Called after each pass with the estimator's decision (progress, logs, PRECOPY_INFO consumers). */
  onPass?: (report: PassReport, decision: EstimatorDecision, info: PrecopyInfo) => void;
  /** Called right before the device is stopped (the start of downtime). */
  onStopCopy?: () => void;
}

export interface MigrateSourceResult {
  passes: PassReport[];
  decisions: EstimatorDecision[];
  totals: EncoderTotals;
  totalMs: number;
  /** ms from the device stop to the trailer handed to the transport. */
  stopCopyMs: number;
  /** performance.now() when the device was stopped. */
  stoppedAt: number;
}

/** The whole source side: pre-copy until the estimator says stop, then stop-copy. Cleans up on any failure. */
export async function migrateSource(o: MigrateSourceOptions): Promise<MigrateSourceResult> {
  const policy = { ...DEFAULT_POLICY, ...o.policy };
  const t0 = performance.now();
  const s = new SaveSession(o);
  const passes: PassReport[] = [];
  const decisions: EstimatorDecision[] = [];
  const meter = new DirtyRateMeter();
  let firmwareStarted = false;
  try {
    await s.begin();
    let report = await s.fullPass();
    for (;;) {
      passes.push(report);
      meter.record(report.dirtyAfter, report.ms);
      const history = passes.map((p) => p.dirtyAfter);
      const measured = lastBandwidth(passes);
      // A pass of (nearly) all zero pages carries a few frame headers: its rate says nothing about the transport,
      // and fed to the estimator it reads as "0 MB/s, cannot converge". Run a dirty pass to measure instead.
      const d: EstimatorDecision = measured === 0 && report.dirtyAfter >= 1 << 20 && report.pass < policy.maxPasses
        ? { action: 'continue', predictedDowntimeMs: NaN, stopCostMs: NaN, predictedTotalMs: NaN, predictedPasses: 1, reason: 'no pass carried enough page data to measure the transport yet' }
        : decidePass({
          pass: report.pass, dirtyBytes: report.dirtyAfter, dirtyRate: meter.rate(),
          bandwidth: measured || fallbackBandwidth(passes), history, elapsedMs: performance.now() - t0,
          stopCostMs: estimateStopCost({ scanMs: report.scanMs ?? 0 }),
          // As the vGPU-level service prices it: one scan slowed by a busy host is not yet a verdict.
          stopCostHistory: decisions.map((x) => x.stopCostMs).filter((x) => Number.isFinite(x)),
          dirtyRatioHistory: decisions.map((x) => x.dirtyRatio ?? NaN).filter((x) => Number.isFinite(x)),
        }, policy);
      decisions.push(d);
      o.onPass?.(report, d, s.precopyInfo());
      if (d.action === 'stop-copy') break;
      if (d.action === 'give-up') {
        throw new VgpuError(ErrorCode.Migration, `migration not converging: ${d.reason}`, {
          hint: 'raise the downtime budget, give the transport more bandwidth, or migrate when the guest is less busy; the source keeps running',
          details: { passes: passes.length, dirtyBytes: report.dirtyAfter },
        });
      }
      report = await s.dirtyPass();
    }
    o.onStopCopy?.();
    const stoppedAt = performance.now();
    firmwareStarted = true;
    const totals = await s.stopCopy(o.device, o.firmware);
    const end = performance.now();
    return { passes, decisions, totals, totalMs: end - t0, stopCopyMs: end - stoppedAt, stoppedAt };
  } catch (err) {
    s.abort(err instanceof Error ? err : undefined);
    if (firmwareStarted) await o.firmware?.cancel?.().catch(() => undefined);
    if (s.stopped) await o.device.resume();
    throw err;
  }
}

/**
 * Stream rate of the LATEST pass that moved at least 1 MiB (small passes measure latency, not rate); 0 when none
 * did. The latest, not the best of the recent ones: the final send runs under today's conditions, and a fast early
 * pass on a then-idle host predicted stops that overran.
 */
function lastBandwidth(passes: PassReport[]): number {
  for (let i = passes.length - 1; i >= 0; i--) {
    const p = passes[i]!;
    if (p.bytes >= 1 << 20 && p.ms > 0) return (p.bytes * 1000) / p.ms;
  }
  return 0;
}

/** Any rate at all, for a migration whose passes were all tiny (little left to send either). */
function fallbackBandwidth(passes: PassReport[]): number {
  let best = 0;
  for (const p of passes) if (p.ms > 0) best = Math.max(best, (p.bytes * 1000) / p.ms);
  return best;
}

export interface ReceiveOptions {
  source: Readable;
  region: FbRegion;
  expect: MigrationCompat;
  signal?: AbortSignal;
  onProgress?: (bytes: bigint) => void;
  /** The stream carries only the device state (ApplyOptions.deviceStateOnly). */
  deviceStateOnly?: boolean;
  /** Pre-fault the destination FB (ApplyOptions.prefault; unset: VGPUD_MIGRATION_PREFAULT). */
  prefault?: boolean;
}

/** The destination side: apply the stream; on cancel or any failure the FB is scrubbed and nothing is kept. */
export async function receiveMigration(o: ReceiveOptions): Promise<ApplyResult> {
  const onAbort = (): void => { o.source.destroy(); };
  o.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    return await applyStream(o.source, {
      region: o.region, expect: o.expect, ...(o.signal ? { signal: o.signal } : {}), ...(o.onProgress ? { onProgress: o.onProgress } : {}),
      ...(o.deviceStateOnly === true ? { deviceStateOnly: true } : {}),
      ...(o.prefault !== undefined ? { prefault: o.prefault } : {}),
    });
  } catch (err) {
    if (!(err instanceof VgpuError)) {
      throw new VgpuError(ErrorCode.Migration, `migration stream failed: ${(err as Error).message}`, {
        hint: 'the transport broke; the destination FB was scrubbed — migrate again', cause: err,
      });
    }
    throw err;
  } finally {
    o.signal?.removeEventListener('abort', onAbort);
  }
}
