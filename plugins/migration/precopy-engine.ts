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
import { ErrorCode, VgpuError } from '../../core/contracts/exceptions.js';
import type { FbRegion } from './fb-region.js';
import type { DirtySource } from './dirty-tracker.js';
import { DirtyRateMeter } from './dirty-tracker.js';
import { DEFAULT_POLICY, decidePass, type EstimatorDecision, type EstimatorPolicy } from './downtime-estimator.js';
import { StreamEncoder, type EncoderTotals } from './stream/stream-encoder.js';
import { DEFAULT_RUN_PAGES } from './stream/frame-format.js';

/** Consecutive dirty pages worth a PAGES frame of their own (with zero-page detection); shorter go to SCATTER. */
const MIN_RUN = 8;
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
  stopped = false;

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
    for (let p = 0; p < this.pageCount; p += this.runPages) {
      this.checkAbort();
      const n = Math.min(this.runPages, this.pageCount - p);
      await this.sendRun(p, n);
      this.initialLeft -= n;
    }
    return this.finishPass(t0, this.pageCount, before);
  }

  /** Send what the previous pass left dirty, then collect what this pass left. */
  async dirtyPass(): Promise<PassReport> {
    const t0 = performance.now();
    this.pass++;
    const before = this.enc.totals().streamBytes;
    const n = await this.sendPending();
    return this.finishPass(t0, n, before);
  }

  /** Stop the device, send the rest, the firmware context and the trailer. */
  async stopCopy(device: DeviceControl, firmware?: FirmwareContextSource): Promise<EncoderTotals> {
    this.checkAbort();
    await device.stop();
    this.stopped = true;
    this.pass++;
    // Final collect: the device is quiesced, so this is every page still different from what we sent.
    const more = await this.o.dirty.collect();
    this.pendingDirty = mergeSorted(this.pendingDirty.subarray(this.pendingSentIdx), more);
    this.pendingSentIdx = 0;
    await this.sendPending();
    if (firmware) {
      for await (const chunk of firmware.save(this.o.signal)) {
        this.checkAbort();
        await this.enc.writeFirmwareContext(chunk);
      }
    }
    const t = await this.enc.finish();
    this.o.dirty.stop();
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
    return { pass: this.pass, pages, bytes, ms: now - t0, dirtyAfter: this.pendingDirty.length * this.pageSize };
  }

  /**
   * Send the pending dirty pages: runs of ≥ MIN_RUN consecutive pages as PAGES frames, the scattered rest batched
   * into SCATTER_PAGES frames (one frame per single page would cost a header, a CRC call and a write each).
   */
  private async sendPending(): Promise<number> {
    const list = this.pendingDirty;
    const ps = this.pageSize;
    let sent = 0;
    let i = this.pendingSentIdx;
    let batch: number[] = [];
    const flush = async (): Promise<void> => {
      if (batch.length === 0) return;
      const idx = Uint32Array.from(batch);
      batch = [];
      const data = Buffer.allocUnsafe(idx.length * ps);
      for (let k = 0; k < idx.length; k++) this.o.region.window(BigInt(idx[k]!) * BigInt(ps), ps).copy(data, k * ps);
      await this.enc.writeScatter(idx, data, this.pass);
    };
    while (i < list.length) {
      this.checkAbort();
      const first = list[i]!;
      let n = 1;
      while (i + n < list.length && n < this.runPages && list[i + n] === first + n) n++;
      if (n >= MIN_RUN) await this.sendRun(first, n);
      else {
        for (let k = 0; k < n; k++) batch.push(first + k);
        if (batch.length >= this.runPages) await flush();
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

  /** Copy pages [first, first+n) out of the FB once, then frame zero and non-zero sub-runs from the copy. */
  private async sendRun(first: number, n: number): Promise<void> {
    const ps = this.pageSize;
    const copy = Buffer.allocUnsafe(n * ps);
    this.o.region.window(BigInt(first) * BigInt(ps), n * ps).copy(copy);
    let i = 0;
    while (i < n) {
      const isZero = copy.subarray(i * ps, (i + 1) * ps).equals(this.zero);
      let j = i + 1;
      while (j < n && copy.subarray(j * ps, (j + 1) * ps).equals(this.zero) === isZero) j++;
      if (isZero) await this.enc.writeZeroPages(first + i, j - i, this.pass);
      else await this.enc.writePages(first + i, copy.subarray(i * ps, j * ps), this.pass);
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
      const d = decidePass({
        pass: report.pass, dirtyBytes: report.dirtyAfter, dirtyRate: meter.rate(),
        bandwidth: maxBandwidth(passes), history, elapsedMs: performance.now() - t0,
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

/** Bandwidth of the fastest of the recent passes that moved at least 1 MiB (small passes measure latency, not rate). */
function maxBandwidth(passes: PassReport[]): number {
  let best = 0;
  for (const p of passes.slice(-3)) if (p.bytes >= 1 << 20 && p.ms > 0) best = Math.max(best, (p.bytes * 1000) / p.ms);
  if (best === 0) for (const p of passes) if (p.ms > 0) best = Math.max(best, (p.bytes * 1000) / p.ms);
  return best;
}

export interface ReceiveOptions {
  source: Readable;
  region: FbRegion;
  expect: MigrationCompat;
  signal?: AbortSignal;
  onProgress?: (bytes: bigint) => void;
}

/** The destination side: apply the stream; on cancel or any failure the FB is scrubbed and nothing is kept. */
export async function receiveMigration(o: ReceiveOptions): Promise<ApplyResult> {
  const onAbort = (): void => { o.source.destroy(); };
  o.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    return await applyStream(o.source, { region: o.region, expect: o.expect, ...(o.signal ? { signal: o.signal } : {}), ...(o.onProgress ? { onProgress: o.onProgress } : {}) });
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
