/**
 * MigrationService (TOKENS.Migration): one VFIO device-state machine per vGPU (DeviceMigration) and the
 * orchestrator that moves a vGPU to another GPU of this daemon or to another daemon.
 *
 * Orchestration (source side), whatever the transport:
 *   estimate (dirty rate from the guest's dirty log over a short window, bandwidth from the last migration on
 *   this kind of transport) → destination vGPU of the same type in RESUMING → source RUNNING→PRE_COPY → passes,
 *   each followed by decidePass() (continue / stop-copy / give-up) and a progress report with the running
 *   downtime and total estimates → guest vCPUs paused → PRE_COPY→STOP_COPY → destination RESUMING→STOP→RUNNING
 *   → source STOP_COPY→STOP, source vGPU destroyed (unless keepSource).
 * Any failure or cancel: the source goes back to RUNNING (its FB was only ever read, its firmware work resumed,
 * the guest un-paused) and the destination vGPU is destroyed: nothing half-made stays behind.
 *
 * Between daemons the destination listens on a Unix or TCP socket (`listen()`); one connection carries a JSON
 * hello line (type), a JSON "ready" line back, the device-state stream, and a JSON "done"/"error" line back.
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { PassThrough, type Writable } from 'node:stream';
import { rmSync } from 'node:fs';
import { inject, injectable, optional } from 'inversify';
import { ErrorCode, VgpuError, isVgpuError } from '../../core/contracts/exceptions.js';
import type { Logger } from '../../core/contracts/logger.js';
import type { VgpuDeviceAccess, VgpuDeviceHandle } from '../../core/contracts/vgpu-device-access.js';
import type { VgpuService } from '../../core/contracts/vgpu-service.js';
import { TOKENS } from '../../core/tokens.js';
import type { NativeOps } from '../../native/native-ops.js';
import { DeviceMigration, type ResumeHandle, type SaveHandle } from './device-migration.js';
import type { IncomingLedger } from './incoming-ledger.js';
import type { DirtySource } from './dirty-tracker.js';
import { DirtyRateMeter } from './dirty-tracker.js';
import { DEFAULT_POLICY, decidePass, estimateStopCost, estimateUpfront, type EstimatorDecision, type EstimatorPolicy, type UpfrontEstimate } from './downtime-estimator.js';
import { MigState, migStateName } from './fsm.js';
import { inProcessPair } from './transport.js';
import type { PassReport, StopCopyBreakdown } from './precopy-engine.js';
import { MIGRATION_PAGE_SIZE, VgpuMigrationDevice } from './vgpu-device.js';

/** The VMM's part: stop/start the guest's vCPUs, and the dirty log of the pages it writes (if it keeps one). */
export interface GuestHooks {
  pause(): Promise<void>;
  resume(): Promise<void>;
  dirty?: () => DirtySource;
}

export type MigrationPhase = 'estimate' | 'precopy' | 'stop-copy' | 'restore' | 'done' | 'cancelled' | 'failed';

export interface MigrationProgress {
  phase: MigrationPhase;
  vgpu: string;
  destination?: string;
  pass?: number;
  sentBytes?: number;
  dirtyBytes?: number;
  fbBytes?: number;
  /** Current estimates (ms). */
  predictedDowntimeMs?: number;
  predictedTotalMs?: number;
  elapsedMs?: number;
  message?: string;
}

export interface MigrateOptions {
  /** A GPU BDF of this daemon, a Unix socket path of another daemon's migration listener, or host:port. */
  to: string;
  downtimeMs?: number;
  signal?: AbortSignal;
  onProgress?: (p: MigrationProgress) => void;
  /** Keep the (stopped) source vGPU instead of destroying it after success (tests compare FBs). */
  keepSource?: boolean;
  policy?: Partial<EstimatorPolicy>;
  /** VF on the destination GPU (same daemon only). */
  vf?: number;
}

/**
 * Where one migration's downtime went, ms, each piece measured (pieces overlap nothing; what they do not cover is
 * scheduling between them). Source: guest pause, STOP_WORK, final dirty scan, final dirty send, firmware save
 * (SAVE_STATE + the 2 MiB buffer), trailer. Destination: firmware restore (RESTORE_STATE + RESTORE_DEFERRED_STATE)
 * and RESUME_WORK. `tailMs` = the wait for the destination's answer minus its restore and resume: the last frames
 * in flight, their apply, the reply.
 */
export interface StopReport extends StopCopyBreakdown {
  pauseMs: number;
  tailMs: number;
  restoreMs: number;
  resumeMs: number;
  /** What the estimator predicted when it chose to stop, and the stop cost it assumed (beyond the dirty bytes). */
  predictedMs: number;
  predictedStopCostMs: number;
  /** Measured: the downtime minus the final scan and send (what the next estimate learns as the stop overhead). */
  overheadMs: number;
  limitMs: number;
  /** How far the downtime went past the limit (0 when it was kept). Never silent: also logged and in progress. */
  overrunMs: number;
}

export interface MigrateResult {
  source: string;
  destination: string;
  /** Destination vGPU id (on the other daemon for a socket migration). */
  vgpu: string;
  passes: PassReport[];
  totalMs: number;
  downtimeMs: number;
  streamBytes: bigint;
  estimate: UpfrontEstimate;
  /** Where the downtime went (always set by migrateVgpu; optional so hand-made results elsewhere stay valid). */
  stop?: StopReport;
  /** How the destination's FB pre-fault ended, when the destination reported it. */
  destinationPrefault?: DestinationPrefaultReport;
}

const BDF = /^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/i;
/** Bandwidth assumed before any migration measured one (bytes/s): a Unix socket on this class of machine. */
const DEFAULT_BANDWIDTH = 1e9;
/** Mailbox calls on the downtime path: STOP_WORK, SAVE_STATE (source); RESTORE, RESTORE_DEFERRED, RESUME_WORK. */
const STOP_PATH_RPCS = 5;
/** Stop overheads remembered per transport kind (the estimator takes the worst). */
const KEEP_OVERHEADS = 3;

@injectable()
export class MigrationService {
  private readonly devices = new Map<string, DeviceMigration>();
  private readonly guests = new Map<string, GuestHooks>();
  private readonly bandwidth = new Map<string, number>();
  /** Measured stop overheads (downtime minus final scan and send) of recent migrations, per transport kind. */
  private readonly stopOverheads = new Map<string, number[]>();
  private readonly log: Logger;
  private server: Server | null = null;
  private listenPath: string | null = null;
  /** Incoming migrations in flight, on disk (set by recoverIncoming; absent in hand-wired tests). */
  private incoming: IncomingLedger | undefined;

  constructor(
    // Management (create/destroy/types) through VgpuService; the device of a vGPU (FB, mailbox, reset) through
    // VgpuDeviceAccess. Both are core contracts: this plugin imports nothing of the plugin that binds them.
    @inject(TOKENS.VgpuManager) private readonly svc: VgpuService,
    @inject(TOKENS.VgpuDeviceAccess) private readonly access: VgpuDeviceAccess,
    @inject(TOKENS.Logger) logger: Logger,
    @inject(TOKENS.NativeOps) @optional() private readonly ops: NativeOps | undefined,
  ) {
    this.log = logger.child({ component: 'migration' });
  }

  // ---- per-vGPU device state ----

  /** The device-state machine of a vGPU (created in RUNNING on first use). */
  device(id: string): DeviceMigration {
    let d = this.devices.get(id);
    if (d === undefined) {
      const dev = new VgpuMigrationDevice(this.find(id), this.ops);
      // Looked up at session start: a guest attached later still provides its dirty log.
      dev.dirtyProvider = () => this.guests.get(id)?.dirty?.() ?? null;
      d = new DeviceMigration(dev);
      this.devices.set(id, d);
    }
    return d;
  }

  getState(id: string): MigState {
    return this.devices.get(id)?.state ?? (this.find(id), MigState.RUNNING);
  }

  setState(id: string, target: MigState, opts?: Parameters<DeviceMigration['setState']>[1]): ReturnType<DeviceMigration['setState']> {
    return this.device(id).setState(target, opts);
  }

  precopyInfo(id: string): ReturnType<DeviceMigration['precopyInfo']> {
    return this.device(id).precopyInfo();
  }

  reset(id: string): Promise<void> {
    return this.device(id).reset();
  }

  /** Attach the guest of a vGPU (the VMM's vCPU control and dirty log). Returns detach. */
  attachGuest(id: string, hooks: GuestHooks): () => void {
    this.find(id);
    this.guests.set(id, hooks);
    return () => { if (this.guests.get(id) === hooks) this.guests.delete(id); };
  }

  /** Forget a vGPU's migration state (it was destroyed). */
  forget(id: string): void {
    const d = this.devices.get(id);
    if (d !== undefined) (d.device as VgpuMigrationDevice).close();
    this.devices.delete(id);
    this.guests.delete(id);
  }

  // ---- estimates ----

  /** Up-front estimate: dirty rate measured over `sampleMs` on the guest's dirty log, bandwidth from history. */
  async estimate(id: string, transportKind: string, downtimeMs = DEFAULT_POLICY.downtimeBudgetMs, sampleMs = 200): Promise<UpfrontEstimate> {
    const fb = Number(this.find(id).guestFb?.size ?? 0n);
    let rate = 0;
    const g = this.guests.get(id);
    if (g?.dirty) {
      const src = g.dirty();
      if (src.peekCount) {
        await src.start();
        const t0 = performance.now();
        await new Promise((r) => setTimeout(r, sampleMs));
        rate = (src.peekCount() * src.pageSize * 1000) / (performance.now() - t0);
        src.stop();
      }
    }
    return estimateUpfront(fb, rate, this.bandwidth.get(transportKind) ?? DEFAULT_BANDWIDTH, { ...DEFAULT_POLICY, downtimeBudgetMs: downtimeMs });
  }

  // ---- orchestrator ----

  async migrateVgpu(id: string, o: MigrateOptions): Promise<MigrateResult> {
    const t0 = performance.now();
    const srcVgpu = this.find(id);
    const src = this.device(id);
    if (src.state !== MigState.RUNNING) {
      throw new VgpuError(ErrorCode.Busy, `vGPU ${id} is in migration state ${migStateName(src.state)}`, {
        hint: src.state === MigState.ERROR ? 'reset it first' : 'wait for the running migration to end or cancel it',
      });
    }
    const local = BDF.test(o.to);
    const kind = local ? 'in-process' : o.to.includes('/') ? 'unix' : 'tcp';
    const policy: EstimatorPolicy = { ...DEFAULT_POLICY, ...o.policy, ...(o.downtimeMs !== undefined ? { downtimeBudgetMs: o.downtimeMs } : {}) };
    const progress = (p: Omit<MigrationProgress, 'vgpu'>): void => {
      try { o.onProgress?.({ vgpu: id, destination: o.to, ...p }); } catch { /* a progress listener never breaks the migration */ }
    };
    const estimate = await this.estimate(id, kind, policy.downtimeBudgetMs, 100);
    progress({
      phase: 'estimate', fbBytes: Number(srcVgpu.guestFb!.size), predictedDowntimeMs: estimate.downtimeMs, predictedTotalMs: estimate.totalMs,
      message: `dirty rate ${(estimate.dirtyRate / 2 ** 20).toFixed(0)} MiB/s, bandwidth ${(estimate.bandwidth / 1e9).toFixed(2)} GB/s${estimate.converges ? '' : ' (pre-copy predicted NOT to converge)'}`,
    });
    const dest = local ? await this.localDestination(srcVgpu, o) : await this.remoteDestination(srcVgpu, o.to);
    const guest = this.guests.get(id);
    let paused = false;
    let save: SaveHandle | null = null;
    const passes: PassReport[] = [];
    try {
      const h = await src.setState(MigState.PRE_COPY, { sink: dest.sink, ...(o.signal ? { signal: o.signal } : {}) });
      save = h as SaveHandle;
      const meter = new DirtyRateMeter();
      const fw = src.device.firmware;
      const rtts: number[] = [];
      /** The stop cost priced after each earlier pass (decidePass: one price over the budget is not a verdict). */
      const stopCosts: number[] = [];
      /** The dirty-to-transport ratio each earlier decision measured (decidePass: one ratio ≥ 1 is not a verdict). */
      const ratios: number[] = [];
      let decision: EstimatorDecision | null = null;
      for (;;) {
        this.checkAbort(o.signal);
        const report = await save.pass();
        passes.push(report);
        meter.record(report.dirtyAfter, report.ms);
        const bw = lastBandwidth(passes);
        // Price the stop with what this host does right now: a mailbox round trip (the worst of the recent ones,
        // a loaded host answers slower), the last dirty scan (the stop repeats it), and what earlier stops over
        // this transport really cost beyond their scan and send.
        if (fw.probe) {
          rtts.push(await fw.probe());
          if (rtts.length > 3) rtts.shift();
        }
        const stopCostMs = estimateStopCost({
          scanMs: report.scanMs ?? 0, rpcCalls: STOP_PATH_RPCS, learnedOverheadMs: this.stopOverheads.get(kind) ?? [],
          ...(rtts.length > 0 ? { rpcRttMs: Math.max(...rtts) } : {}),
        });
        // A full pass over a mostly-zero FB covers pages at scan speed (a zero run is a header), far faster than
        // the dirty pages of the stop will travel (MIGRATE_FILL=0: 2 GB/s of coverage, then 0.44 GB/s of data).
        // Stopping on that rate would under-predict the downtime several times over: one dirty pass measures first.
        const zeroHeavy = passes.length === 1 && report.bytes < (report.pages * MIGRATION_PAGE_SIZE) / 2 && report.dirtyAfter > 0 && policy.maxPasses > 1;
        const d: EstimatorDecision = zeroHeavy
          ? { action: 'continue', predictedDowntimeMs: NaN, stopCostMs, predictedTotalMs: NaN, predictedPasses: 1, reason: 'the full pass was mostly zero pages: its rate says nothing about the transport; a dirty pass measures it' }
          : decidePass({
            pass: report.pass, dirtyBytes: report.dirtyAfter, dirtyRate: meter.rate(), bandwidth: bw,
            history: passes.map((p) => p.dirtyAfter), elapsedMs: performance.now() - t0, stopCostMs, stopCostHistory: [...stopCosts],
            // One pass whose guest outran the transport is not yet the verdict (first-touch costs of a fresh FB).
            dirtyRatioHistory: [...ratios],
          }, policy);
        if (d.dirtyRatio !== undefined && Number.isFinite(d.dirtyRatio)) ratios.push(d.dirtyRatio);
        stopCosts.push(stopCostMs);
        decision = d;
        progress({
          phase: 'precopy', pass: report.pass, sentBytes: Number(save.totals().streamBytes), dirtyBytes: report.dirtyAfter,
          predictedDowntimeMs: d.predictedDowntimeMs, predictedTotalMs: d.predictedTotalMs, elapsedMs: performance.now() - t0,
          // What the stop was priced from, so an operator (and bench:migrate) sees which piece does not fit.
          message: `${d.reason} [stop priced from: dirty scan ${(report.scanMs ?? 0).toFixed(1)} ms, mailbox round trip ${rtts.length > 0 ? Math.max(...rtts).toFixed(1) : '-'} ms × ${STOP_PATH_RPCS}, earlier stops ${(this.stopOverheads.get(kind) ?? []).map((x) => x.toFixed(0)).join('/') || '-'} ms]`,
        });
        if (d.action === 'stop-copy') break;
        if (d.action === 'give-up') {
          // Without a dirty log the stop rescans the whole FB by hashes: say so when that is what does not fit.
          const scanBound = (report.scanMs ?? 0) > d.stopCostMs / 2 && !guest?.dirty;
          throw new VgpuError(ErrorCode.Migration, `migration of ${id} gave up: ${d.reason}`, {
            hint: scanBound
              ? `no dirty log is attached, so the stop must rescan the whole FB by page hashes (${(report.scanMs ?? 0).toFixed(0)} ms here): attach the guest's dirty log, or raise --downtime-ms; the source vGPU keeps running`
              : 'raise --downtime-ms, give the transport more bandwidth, or migrate when the guest is less busy; the source vGPU keeps running',
            details: { passes: passes.length, dirtyBytes: report.dirtyAfter, downtimeBudgetMs: policy.downtimeBudgetMs, stopCostMs: d.stopCostMs, scanMs: report.scanMs ?? 0 },
          });
        }
      }
      const bw = lastBandwidth(passes);
      if (bw > 0) this.bandwidth.set(kind, bw);
      this.checkAbort(o.signal);
      progress({ phase: 'stop-copy', elapsedMs: performance.now() - t0 });
      const downFrom = performance.now();
      if (guest) { await guest.pause(); paused = true; }
      const pausedAt = performance.now();
      await src.setState(MigState.STOP_COPY);
      progress({ phase: 'restore', elapsedMs: performance.now() - t0 });
      const finishFrom = performance.now();
      const fin = await dest.finish(o.signal);
      const vgpu = fin.vgpu;
      const end = performance.now();
      const downtimeMs = end - downFrom;
      const stop = this.stopReport(save, decision, policy.downtimeBudgetMs, {
        pauseMs: pausedAt - downFrom, finishMs: end - finishFrom, restoreMs: fin.restoreMs, resumeMs: fin.resumeMs, downtimeMs,
      });
      this.learnStop(kind, stop.overheadMs);
      if (stop.overrunMs > 0) {
        // Pre-copy decided to stop because the prediction fit; the stop took longer. The guest cannot be un-paused
        // into the past, so the least owed is to say so, with the pieces, and to price the next stop with it.
        this.log.warn('migration downtime exceeded the limit', { vgpu: id, to: o.to, ...stop });
        progress({ phase: 'restore', elapsedMs: performance.now() - t0, predictedDowntimeMs: downtimeMs, message: `downtime ${downtimeMs.toFixed(0)} ms exceeded the ${policy.downtimeBudgetMs} ms limit by ${stop.overrunMs.toFixed(0)} ms (predicted ${stop.predictedMs.toFixed(0)} ms)` });
      }
      // Last point to cancel: the destination runs, but the source is still whole; undo goes back to the source.
      this.checkAbort(o.signal);
      const streamBytes = save.totals().streamBytes;
      await src.setState(MigState.STOP);
      const totalMs = performance.now() - t0;
      progress({ phase: 'done', elapsedMs: totalMs, predictedDowntimeMs: downtimeMs, predictedTotalMs: totalMs, message: `now ${vgpu}` });
      this.log.info('vGPU migrated', { vgpu: id, to: o.to, dest: vgpu, passes: passes.length, totalMs: Math.round(totalMs), downtimeMs: Math.round(downtimeMs), stop: roundAll(stop) });
      if (o.keepSource !== true) {
        this.forget(id);
        await this.svc.destroy(id, { force: true });
      }
      // keepSource: the source stays STOPPED (its image now lives at the destination), its guest paused.
      return { source: id, destination: o.to, vgpu, passes, totalMs, downtimeMs, streamBytes, estimate, stop, ...(fin.prefault ? { destinationPrefault: fin.prefault } : {}) };
    } catch (err) {
      const cancelled = o.signal?.aborted === true || isVgpuError(err, ErrorCode.Cancelled);
      progress({ phase: cancelled ? 'cancelled' : 'failed', elapsedMs: performance.now() - t0, message: (err as Error).message });
      dest.abort(err);
      await this.backToRunning(id, src);
      if (paused && guest) await guest.resume().catch((e: unknown) => this.log.error('guest resume failed', { vgpu: id, error: e }));
      await dest.cleanup();
      this.log.warn('migration ended without moving the vGPU; the source runs on', { vgpu: id, to: o.to, error: err });
      if (cancelled && !isVgpuError(err, ErrorCode.Cancelled)) {
        throw new VgpuError(ErrorCode.Cancelled, `migration of ${id} cancelled`, { hint: 'the source vGPU keeps running; migrate again when ready', cause: err });
      }
      throw err;
    }
  }

  private stopReport(save: SaveHandle, d: EstimatorDecision | null, limitMs: number,
    m: { pauseMs: number; finishMs: number; restoreMs: number; resumeMs: number; downtimeMs: number }): StopReport {
    const b = save.stopBreakdown();
    const finalScanMs = b?.finalScanMs ?? 0;
    const finalSendMs = b?.finalSendMs ?? 0;
    return {
      pauseMs: m.pauseMs, stopWorkMs: b?.stopWorkMs ?? 0, finalScanMs, finalPages: b?.finalPages ?? 0, finalSendMs,
      firmwareSaveMs: b?.firmwareSaveMs ?? 0, firmwareBytes: b?.firmwareBytes ?? 0, trailerMs: b?.trailerMs ?? 0,
      tailMs: Math.max(0, m.finishMs - m.restoreMs - m.resumeMs), restoreMs: m.restoreMs, resumeMs: m.resumeMs,
      predictedMs: d?.predictedDowntimeMs ?? NaN, predictedStopCostMs: d?.stopCostMs ?? NaN,
      overheadMs: Math.max(0, m.downtimeMs - finalScanMs - finalSendMs),
      limitMs, overrunMs: Math.max(0, m.downtimeMs - limitMs),
    };
  }

  /** Remember what this stop cost beyond its scan and send, for the next migration over the same transport kind. */
  private learnStop(kind: string, overheadMs: number): void {
    const l = this.stopOverheads.get(kind) ?? [];
    l.push(overheadMs);
    if (l.length > KEEP_OVERHEADS) l.shift();
    this.stopOverheads.set(kind, l);
  }

  /** Whatever state the source reached, walk it back to RUNNING (STOP_COPY→STOP→RUNNING resumes the firmware). */
  private async backToRunning(id: string, src: DeviceMigration): Promise<void> {
    try {
      if (src.state !== MigState.RUNNING && src.state !== MigState.ERROR) await src.setState(MigState.RUNNING);
    } catch (error) {
      this.log.error('could not return the source vGPU to RUNNING', { vgpu: id, state: migStateName(src.state), error });
    }
    if (src.state === MigState.ERROR) {
      this.log.error('source vGPU is in ERROR after a failed migration; reset needed', { vgpu: id });
    }
  }

  private async localDestination(src: VgpuDeviceHandle, o: MigrateOptions): Promise<Destination> {
    const info = await this.svc.create({ gpu: o.to, type: src.typeId, ...(o.vf !== undefined ? { vf: o.vf } : {}) });
    const pair = inProcessPair();
    let handle: Awaited<ReturnType<DeviceMigration['setState']>> = null;
    const dst = this.device(info.id);
    try {
      handle = await dst.setState(MigState.RESUMING, { source: pair.receiver, ...(o.signal ? { signal: o.signal } : {}) });
    } catch (err) {
      this.forget(info.id);
      await this.svc.destroy(info.id, { force: true }).catch(() => undefined);
      throw err;
    }
    const resume = handle as ResumeHandle;
    return {
      sink: pair.sender,
      finish: async () => ({ vgpu: info.id, ...(await finishResume(dst, resume)) }),
      abort: (err) => { pair.sender.destroy(err instanceof Error ? err : undefined); },
      cleanup: async () => {
        this.forget(info.id);
        await this.svc.destroy(info.id, { force: true }).catch((error: unknown) => this.log.error('could not destroy the destination vGPU', { vgpu: info.id, error }));
      },
    };
  }

  private async remoteDestination(src: VgpuDeviceHandle, to: string): Promise<Destination> {
    const sock = await connect(to);
    const lines = lineReader(sock);
    sock.write(`${JSON.stringify({ op: 'migrate', v: 1, typeId: src.typeId, typeName: src.typeName })}\n`);
    const ready = await lines.next();
    if (ready.op !== 'ready') {
      sock.destroy();
      throw remoteError(ready, to);
    }
    // A destination that refuses the stream mid-way (corrupt frame, no room, ...) answers "error" and stops
    // reading: without this the source would wait forever for a drain. Fail the sink with the destination's own
    // reason, so the encoder's pending write rejects with it and the source rolls back at once.
    let finishing = false;
    let succeeded = false; // 'done' queued: the hang-up that follows it is no failure
    lines.onEarly((m) => {
      if (m.op === 'done') succeeded = true;
      else if (!finishing && !succeeded) sock.destroy(remoteError(m, to));
    });
    return {
      sink: sock,
      finish: async () => {
        finishing = true;
        const done = await lines.next();
        sock.destroy();
        if (done.op !== 'done') throw remoteError(done, to);
        const ms = (k: string): number => (typeof done[k] === 'number' ? done[k] : 0);
        const pf = done['prefault'] as { outcome?: unknown; reservedBytes?: unknown } | undefined;
        return {
          vgpu: String(done['vgpu']), restoreMs: ms('restoreMs'), resumeMs: ms('resumeMs'),
          ...(pf !== undefined && typeof pf.outcome === 'string' && typeof pf.reservedBytes === 'number' ? { prefault: { outcome: pf.outcome, reservedBytes: pf.reservedBytes } } : {}),
        };
      },
      abort: () => { sock.destroy(); },
      cleanup: async () => { sock.destroy(); },
    };
  }

  // ---- destination daemon ----

  /** Accept migrations from other daemons on a Unix socket path or `host:port` / `:port`. */
  async listen(addr: string, opts: { gpu?: string } = {}): Promise<string> {
    if (this.server) throw new VgpuError(ErrorCode.Busy, 'the migration listener is already running', { hint: 'one listener per daemon' });
    const server = createServer({ allowHalfOpen: true }, (s) => { void this.serve(s, opts.gpu); });
    const isUnix = addr.includes('/');
    if (isUnix) rmSync(addr, { force: true });
    await new Promise<void>((resolve, reject) => {
      server.once('error', (e) => reject(new VgpuError(ErrorCode.Migration, `cannot listen for migrations on ${addr}: ${e.message}`, { hint: 'pick a free port or a writable path', cause: e })));
      if (isUnix) server.listen(addr, resolve);
      else { const [h, p] = splitHostPort(addr); server.listen(p, h, resolve); }
    });
    this.server = server;
    this.listenPath = isUnix ? addr : null;
    const a = server.address();
    return typeof a === 'string' ? a : `${a?.address}:${a?.port}`;
  }

  async close(): Promise<void> {
    const s = this.server;
    this.server = null;
    if (s) await new Promise<void>((r) => s.close(() => r()));
    if (this.listenPath) rmSync(this.listenPath, { force: true });
  }

  private async serve(sock: Socket, gpu?: string): Promise<void> {
    const reply = (o: Record<string, unknown>): void => { if (!sock.destroyed && sock.writable) sock.write(`${JSON.stringify(o)}\n`); };
    let created: string | null = null;
    let ledgerUuid: string | null = null;
    try {
      const hello = await readHello(sock);
      if (hello['op'] !== 'migrate' || typeof hello['typeId'] !== 'number') {
        throw new VgpuError(ErrorCode.Migration, 'not a migration request', { hint: 'connect with vgpuctl migrate' });
      }
      const target = gpu ?? this.svc.gpus().find((g) => g.state === 'ready' && this.svc.types(g.bdf).some((t) => t.id === hello['typeId']))?.bdf;
      if (target === undefined) {
        throw new VgpuError(ErrorCode.NoSpace, `no GPU here can host a vGPU of type ${hello['typeId']} (${String(hello['typeName'])})`, { hint: 'free room on the destination' });
      }
      // Write-ahead: the ledger names the vGPU (by the UUID it is created with) before it exists, so a restart
      // after a crash anywhere from here to the end destroys it instead of re-attaching half a migration.
      ledgerUuid = this.incoming !== undefined ? await this.incoming.add({ gpu: target, typeId: hello['typeId'] }) : null;
      const info = await this.svc.create({ gpu: target, type: hello['typeId'], ...(ledgerUuid !== null ? { uuid: ledgerUuid } : {}) });
      created = info.id;
      const dst = this.device(info.id);
      // Own pipe: the stream decoder destroys its source when it ends, the socket must stay for the answer.
      const pt = new PassThrough({ highWaterMark: 8 << 20 });
      sock.pipe(pt);
      sock.on('error', (e) => pt.destroy(e));
      sock.on('close', () => { if (!pt.writableEnded) pt.destroy(new Error('source closed the connection mid-stream')); });
      const resume = (await dst.setState(MigState.RESUMING, { source: pt })) as ResumeHandle;
      reply({ op: 'ready', vgpu: info.id });
      const t = await finishResume(dst, resume);
      // Moved in: from here the vGPU is ours to keep. Dropped from the ledger BEFORE the source hears 'done' and
      // destroys its copy: a crash in between leaves two copies (the source resumes when 'done' never comes),
      // never none.
      if (ledgerUuid !== null) await this.incoming!.remove(ledgerUuid);
      ledgerUuid = null;
      reply({ op: 'done', vgpu: info.id, restoreMs: t.restoreMs, resumeMs: t.resumeMs, ...(t.prefault ? { prefault: t.prefault } : {}) });
      this.log.info('vGPU migrated in', { vgpu: info.id, gpu: target, ...(t.prefault ? { prefault: t.prefault } : {}) });
      sock.end();
    } catch (err) {
      reply({ op: 'error', ...(isVgpuError(err) ? err.toJSON() : { message: String(err) }) });
      sock.end();
      hangUpAfterError(sock);
      this.log.warn('incoming migration failed; nothing kept', { vgpu: created, error: err });
      let gone = true;
      if (created !== null) {
        this.forget(created);
        gone = await this.svc.destroy(created, { force: true }).then(() => true, (error: unknown) => {
          this.log.error('could not destroy the half-made vGPU; the next start tries again', { vgpu: created, error });
          return false;
        });
      }
      if (gone && ledgerUuid !== null) {
        await this.incoming!.remove(ledgerUuid).catch((error: unknown) => this.log.error('could not update the incoming-migration ledger', { error }));
      }
    }
  }

  /**
   * Keep incoming migrations in `ledger` from now on, and first destroy the vGPUs it still names: migrations a
   * crash of this daemon interrupted (the migration plugin calls this at start, after the lifecycle re-attached
   * the journalled vGPUs).
   */
  async recoverIncoming(ledger: IncomingLedger): Promise<{ destroyed: string[]; kept: number }> {
    this.incoming = ledger;
    const r = await ledger.recover(this.svc);
    for (const id of r.destroyed) this.forget(id);
    return r;
  }

  // ---- helpers ----

  /** The device of a vGPU; VGPU_ENOENT for an unknown id. */
  private find(id: string): VgpuDeviceHandle {
    return this.access.device(id);
  }

  private checkAbort(signal?: AbortSignal): void {
    if (signal?.aborted) throw new VgpuError(ErrorCode.Cancelled, 'migration cancelled', { hint: 'the source vGPU keeps running' });
  }
}

/** How the destination's FB pre-fault ended (stream/destination-prefault.ts), as the destination reports it. */
export interface DestinationPrefaultReport {
  outcome: string;
  reservedBytes: number;
}

interface Finished {
  restoreMs: number;
  resumeMs: number;
  prefault?: DestinationPrefaultReport;
}

interface Destination {
  sink: Writable;
  /** After STOP_COPY: wait for the destination to validate, restore and run; resolves with its vGPU id and timings. */
  finish(signal?: AbortSignal): Promise<{ vgpu: string } & Finished>;
  abort(err: unknown): void;
  cleanup(): Promise<void>;
}

/**
 * Destination: wait for the stream to validate, then RESUMING→STOP (firmware restore) and STOP→RUNNING (resume),
 * each timed: they are part of the guest's downtime and the source reports them.
 */
async function finishResume(dst: DeviceMigration, h: ResumeHandle): Promise<Finished> {
  const applied = await h.applied.catch(() => undefined); // a failed stream fails the RESUMING→STOP arc below, with its error
  const t1 = performance.now();
  await dst.setState(MigState.STOP);
  const t2 = performance.now();
  await dst.setState(MigState.RUNNING);
  const pf = applied?.prefault;
  return { restoreMs: t2 - t1, resumeMs: performance.now() - t2, ...(pf ? { prefault: { outcome: pf.outcome, reservedBytes: Number(pf.reservedBytes) } } : {}) };
}

function roundAll<T extends object>(o: T): Record<string, number> {
  const r: Record<string, number> = {};
  for (const [k, v] of Object.entries(o)) if (typeof v === 'number') r[k] = Math.round(v * 10) / 10;
  return r;
}

/**
 * Transport rate for the estimator: FB bytes a pass covered per second (zero pages travel as a header, so stream
 * bytes would understate what the pass moved), from the latest pass that covered at least 1 MiB. The latest, not
 * the best: the full first pass over a mostly-zero FB is faster than any later pass of dirty (non-zero) pages, and
 * the final send runs under the host's load of now.
 */
function lastBandwidth(passes: PassReport[], pageSize = 4096): number {
  for (let i = passes.length - 1; i >= 0; i--) {
    const p = passes[i]!;
    if (p.pages * pageSize >= 1 << 20 && p.ms > 0) return (p.pages * pageSize * 1000) / p.ms;
  }
  const last = passes[passes.length - 1];
  return last !== undefined && last.ms > 0 ? (last.pages * pageSize * 1000) / last.ms : 0;
}

function splitHostPort(addr: string): [string, number] {
  const i = addr.lastIndexOf(':');
  const host = i > 0 ? addr.slice(0, i) : '127.0.0.1';
  return [host, Number(addr.slice(i + 1))];
}

function connect(to: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = to.includes('/') ? createConnection({ path: to, allowHalfOpen: true }) : (() => { const [h, p] = splitHostPort(to); return createConnection({ host: h, port: p, allowHalfOpen: true }); })();
    const onErr = (e: Error): void => reject(new VgpuError(ErrorCode.Migration, `cannot reach the destination daemon at ${to}: ${e.message}`, {
      hint: 'start the destination daemon with a migration listener (plugins.migration.listen) and check the address', cause: e,
    }));
    s.once('error', onErr);
    s.once('connect', () => { s.off('error', onErr); s.on('error', () => undefined); resolve(s); });
  });
}

/** JSON lines the destination sends back. */
function lineReader(sock: Socket): { next(): Promise<Record<string, unknown>>; onEarly(f: (m: Record<string, unknown>) => void): void } {
  let buf = '';
  const queue: Record<string, unknown>[] = [];
  const waiters: Array<(v: Record<string, unknown>) => void> = [];
  let early: ((m: Record<string, unknown>) => void) | null = null;
  const push = (v: Record<string, unknown>): void => {
    const w = waiters.shift();
    if (w) return w(v);
    queue.push(v);
    early?.(v); // a line nobody waits for yet (during the stream): the destination gave up early
  };
  sock.on('data', (d: Buffer) => {
    buf += d.toString('utf8');
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      try { push(JSON.parse(line) as Record<string, unknown>); } catch { push({ op: 'error', message: `bad reply line: ${line.slice(0, 80)}` }); }
    }
  });
  sock.on('end', () => push({ op: 'error', code: ErrorCode.Migration, message: 'the destination ended the connection' }));
  sock.on('close', () => push({ op: 'error', code: ErrorCode.Migration, message: 'the destination closed the connection' }));
  return {
    next: () => new Promise((r) => { const v = queue.shift(); if (v) r(v); else waiters.push(r); }),
    onEarly: (f) => { early = f; },
  };
}

/** How long a destination that refused a stream keeps reading (and dropping) it so the source can read the reply. */
const HANG_UP_GRACE_MS = 5000;

/**
 * After the "error" reply the destination reads no more of the stream. Just ending our side would leave a source
 * that does not read replies mid-stream blocked on a full socket buffer forever; destroying at once could reset
 * the connection before the source read the reply. So: drop whatever still arrives, close when the source hangs
 * up, and close anyway after a grace period.
 */
function hangUpAfterError(sock: Socket): void {
  sock.unpipe();
  sock.on('data', () => undefined);
  sock.resume();
  const t = setTimeout(() => sock.destroy(), HANG_UP_GRACE_MS);
  t.unref();
  sock.once('end', () => { clearTimeout(t); sock.destroy(); });
  sock.once('close', () => clearTimeout(t));
}

function remoteError(m: Record<string, unknown>, to: string): VgpuError {
  const code = typeof m['code'] === 'string' && Object.values(ErrorCode).includes(m['code'] as ErrorCode) ? (m['code'] as ErrorCode) : ErrorCode.Migration;
  return new VgpuError(code, `destination ${to}: ${String(m['message'] ?? 'failed')}`, {
    hint: typeof m['hint'] === 'string' ? m['hint'] : 'see the destination daemon log', details: { destination: to },
  });
}

/** Read the hello line; push back whatever of the stream came with it. */
function readHello(sock: Socket): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const onData = (d: Buffer): void => {
      buf = Buffer.concat([buf, d]);
      const i = buf.indexOf(10);
      if (i < 0) { if (buf.length > 4096) fail(new Error('hello line too long')); return; }
      sock.off('data', onData); sock.off('error', fail); sock.off('end', onEnd);
      sock.pause();
      const rest = buf.subarray(i + 1);
      if (rest.length > 0) sock.unshift(rest);
      try { resolve(JSON.parse(buf.subarray(0, i).toString('utf8')) as Record<string, unknown>); } catch (e) { reject(e); }
    };
    const fail = (e: Error): void => { sock.off('data', onData); reject(e); };
    const onEnd = (): void => fail(new Error('connection closed before the hello line'));
    sock.on('data', onData);
    sock.once('error', fail);
    sock.once('end', onEnd);
  });
}
