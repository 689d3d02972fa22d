/**
 * The VFIO migration v2 device state of ONE vGPU (docs/migration-fsm.md): a request names only the end state,
 * `migrationPath()` gives the arcs, and each arc runs its action:
 *
 *   RUNNING→STOP, RUNNING_P2P→STOP        MIGRATION_STOP_WORK
 *   STOP→RUNNING, STOP→RUNNING_P2P        MIGRATION_RESUME_WORK
 *   RUNNING↔RUNNING_P2P, PRE_COPY↔PRE_COPY_P2P   nothing (a vGPU initiates no peer-to-peer DMA)
 *   RUNNING(_P2P)→PRE_COPY(_P2P)          open a saving session (stream header, dirty tracking on)
 *   PRE_COPY(_P2P)→RUNNING(_P2P)          end it (the reader sees the stream cut and refuses it)
 *   PRE_COPY(_P2P)→STOP_COPY              STOP_WORK, last dirty pages, SAVE_STATE through the 2 MiB buffer, trailer
 *   STOP→STOP_COPY                        open a saving session and stream everything (device already stopped)
 *   STOP_COPY→STOP                        end the saving session
 *   STOP→RESUMING                         open a resuming session (the applier writes the FB as frames arrive)
 *   RESUMING→STOP                         wait for the trailer; incomplete/corrupt → fail the arc; then
 *                                         RESTORE_STATE + RESTORE_DEFERRED_STATE (firmware refuses → fail the arc)
 *
 * A failed arc puts the device in ERROR; `reset()` (VFIO_DEVICE_RESET) brings it back to RUNNING. ONE exception,
 * a documented choice that vfio.h allows ("the device is left in the original state or ERROR"): when a SAVING arc
 * fails because the stream broke (transport gone, reader cancelled) we undo its device work (CANCEL_SAVE,
 * RESUME_WORK) and leave the device in the arc's ORIGINAL state, so the source vGPU can simply go back to RUNNING
 * with its FB untouched — Linux drivers would leave the source in ERROR and need a reset, which scrubs the FB.
 */
import { PassThrough, type Readable, type Writable } from 'node:stream';
import { ErrorCode, VgpuError } from '../../core/contracts/exceptions.js';
import type { DirtySource } from './dirty-tracker.js';
import { NO_FB, noDirtyPages } from './device-state-only.js';
import type { FbRegion } from './fb-region.js';
import {
  ALL_MIGRATION_FLAGS, MigState, migStateName, migrationPath, type MigrationFlagBits,
} from './fsm.js';
import { SaveSession, receiveMigration, type PassReport, type PrecopyInfo, type StopCopyBreakdown } from './precopy-engine.js';
import type { ApplyResult } from './stream/stream-applier.js';
import type { EncoderTotals } from './stream/stream-encoder.js';
import type { MigrationCompat } from './stream/compat.js';

/** The firmware side of the migration RPCs (MailboxMigrationClient implements it). */
export interface MigrationFirmware {
  stopWork(): Promise<unknown>;
  resumeWork(): Promise<unknown>;
  cancelStop(): Promise<unknown>;
  save(signal?: AbortSignal): AsyncIterable<Uint8Array>;
  cancel(): Promise<void>;
  restore(chunks: readonly Uint8Array[], signal?: AbortSignal): Promise<void>;
  /** One harmless mailbox round trip, ms (to price the stop before deciding it); optional. */
  probe?(): Promise<number>;
}

/** What the state machine needs from one vGPU. */
export interface MigrationDevice {
  readonly id: string;
  compat(): MigrationCompat;
  region(): FbRegion;
  readonly firmware: MigrationFirmware;
  /** Dirty tracking for a new saving session (the guest's dirty log when there is one, else page hashes). */
  dirtySource(): DirtySource;
  /** VFIO_DEVICE_RESET of the vGPU (lifecycle reset: RPC RESET + scrub). */
  reset(): Promise<void>;
}

export interface SaveHandle {
  readonly kind: 'save';
  /** The device-state stream (the data fd): pipe it to the transport. Absent when the caller passed a sink. */
  readonly stream: Readable | null;
  /** PRE_COPY: send the next pass (the first is the whole FB, later ones the pages dirtied since). */
  pass(): Promise<PassReport>;
  precopyInfo(): PrecopyInfo;
  totals(): EncoderTotals;
  /** Where the stop-copy's time went on this side (null until STOP_COPY finished). */
  stopBreakdown(): StopCopyBreakdown | null;
  /** Resolves when the trailer is handed to the sink (after STOP_COPY), rejects when the session failed. */
  readonly done: Promise<EncoderTotals>;
}

export interface ResumeHandle {
  readonly kind: 'resume';
  /** Write the device-state stream here (the data fd). Absent when the caller passed a source. */
  readonly stream: Writable | null;
  /** Resolves with what was applied once the trailer validated (RESUMING→STOP still restores the firmware). */
  readonly applied: Promise<ApplyResult>;
}

export type DataHandle = SaveHandle | ResumeHandle;

export interface SetStateOptions {
  /** Saving arcs: write the stream straight into this Writable (a socket) instead of a returned Readable. */
  sink?: Writable;
  /** RESUMING: read the stream from this Readable (a socket) instead of a returned Writable. */
  source?: Readable;
  signal?: AbortSignal;
  onApplyProgress?: (bytes: bigint) => void;
  /**
   * The session opened by this request carries only the device state (header, firmware context, trailer): the FB
   * is moved by the process that maps it (MigrationStateOptions.fbByCaller; device-state-only.ts).
   */
  deviceStateOnly?: boolean;
  /**
   * PRE_COPY→STOP_COPY: called once the device is stopped and the state is STOP_COPY; the rest of the arc (the last
   * dirty pages, the firmware context, the trailer) is produced as the reader takes it, so a VFIO front may answer
   * the SET then (vfio-migration-port.ts).
   */
  onStopped?: () => void;
}

/** An arc that failed but undid its work: the device stays in the arc's original state. */
class RolledBack extends Error {
  constructor(readonly original: unknown) { super('rolled back'); }
}

interface SaveCtx {
  session: SaveSession;
  handle: SaveHandle;
  resolveDone: (t: EncoderTotals) => void;
  rejectDone: (e: unknown) => void;
  finished: boolean;
  /** Background STOP→STOP_COPY copy, if any. */
  job?: Promise<void>;
  /** The pre-copy pass a reader started, if any (settles, never rejects): the stop-copy's frames follow its frames. */
  passing: Promise<unknown>;
  abort: AbortController;
}

interface ResumeCtx {
  handle: ResumeHandle;
  abort: AbortController;
}

export class DeviceMigration {
  private st: MigState = MigState.RUNNING;
  private chain: Promise<unknown> = Promise.resolve();
  private save: SaveCtx | null = null;
  private resume: ResumeCtx | null = null;
  /** STOP_WORK sent and not undone (RESUME_WORK/CANCEL_STOP): what reset and rollbacks must undo. */
  private fwStopped = false;
  private saveStarted = false;
  /** Last error that put the device in ERROR (for status output). */
  lastError: unknown = null;
  /** Called after every arc that completed (tests check the arcs against migrationPath; logs). */
  onArc: ((from: MigState, to: MigState) => void) | null = null;

  constructor(readonly device: MigrationDevice, readonly flags: MigrationFlagBits = ALL_MIGRATION_FLAGS) {}

  get state(): MigState {
    return this.st;
  }

  /**
   * Walk to `target` along migrationPath(). Resolves with the data handle an arc on the way opened (a saving or
   * resuming session), else null. Requests are serialized. On failure the device is in ERROR, or — for a saving
   * arc whose stream broke — still in the state it was in before that arc; callers re-read `state` (vfio.h).
   */
  setState(target: MigState, opts: SetStateOptions = {}): Promise<DataHandle | null> {
    const run = this.chain.then(() => this.walk(target, opts));
    this.chain = run.catch(() => undefined);
    return run;
  }

  /** VFIO_MIG_GET_PRECOPY_INFO: only in PRE_COPY / PRE_COPY_P2P (EINVAL elsewhere, as the uAPI). */
  precopyInfo(): PrecopyInfo {
    if ((this.st !== MigState.PRE_COPY && this.st !== MigState.PRE_COPY_P2P) || this.save === null) {
      throw new VgpuError(ErrorCode.IllegalState, `precopy info of ${this.device.id} asked in state ${migStateName(this.st)}`, {
        hint: 'precopy info exists only in PRE_COPY or PRE_COPY_P2P',
      });
    }
    return this.save.session.precopyInfo();
  }

  /**
   * VFIO_DEVICE_RESET: end any session (cancelling a firmware save), restart the firmware work if it was stopped,
   * reset the vGPU (RPC RESET + FB scrub), state RUNNING. Waits for a running request to settle first.
   */
  reset(): Promise<void> {
    const run = this.chain.then(async () => {
      this.endSave(new VgpuError(ErrorCode.Cancelled, 'device reset', { hint: 'migrate again' }));
      if (this.save?.job) await this.save.job.catch(() => undefined);
      this.save = null;
      if (this.resume) {
        this.resume.abort.abort();
        await this.resume.handle.applied.catch(() => undefined);
        this.resume = null;
      }
      if (this.saveStarted) await this.device.firmware.cancel().catch(() => undefined);
      this.saveStarted = false;
      if (this.fwStopped) {
        await this.device.firmware.resumeWork();
        this.fwStopped = false;
      }
      await this.device.reset();
      this.st = MigState.RUNNING;
      this.lastError = null;
    });
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async walk(target: MigState, opts: SetStateOptions): Promise<DataHandle | null> {
    const path = migrationPath(this.st, target, this.flags);
    if (path === null) {
      throw new VgpuError(ErrorCode.InvalidArgument, `vGPU ${this.device.id} cannot go from ${migStateName(this.st)} to ${migStateName(target)}`, {
        hint: this.st === MigState.ERROR ? 'reset the device first (it is in ERROR)' : 'see docs/migration-fsm.md for the reachable states',
        details: { from: migStateName(this.st), to: migStateName(target) },
      });
    }
    let handle: DataHandle | null = null;
    for (const next of path) {
      const from = this.st;
      try {
        const h = await this.arc(from, next, opts);
        if (h !== null) handle = h;
        this.st = next;
        this.onArc?.(from, next);
      } catch (err) {
        if (err instanceof RolledBack) throw err.original;
        this.st = MigState.ERROR;
        this.lastError = err;
        throw err;
      }
    }
    return handle;
  }

  private async arc(from: MigState, to: MigState, opts: SetStateOptions): Promise<DataHandle | null> {
    const S = MigState;
    const fw = this.device.firmware;
    const key = `${migStateName(from)}>${migStateName(to)}`;
    switch (key) {
      case 'RUNNING>RUNNING_P2P': case 'RUNNING_P2P>RUNNING':
      case 'PRE_COPY>PRE_COPY_P2P': case 'PRE_COPY_P2P>PRE_COPY':
        return null;
      case 'RUNNING>STOP': case 'RUNNING_P2P>STOP':
        await fw.stopWork();
        this.fwStopped = true;
        return null;
      case 'STOP>RUNNING': case 'STOP>RUNNING_P2P':
        await fw.resumeWork();
        this.fwStopped = false;
        return null;
      case 'RUNNING>PRE_COPY': case 'RUNNING_P2P>PRE_COPY_P2P':
        return this.openSave(opts, false);
      case 'PRE_COPY>RUNNING': case 'PRE_COPY_P2P>RUNNING_P2P':
        this.endSave(new VgpuError(ErrorCode.Cancelled, 'pre-copy ended before stop-copy', { hint: 'the source keeps running; migrate again' }));
        this.save = null;
        return null;
      case 'PRE_COPY>STOP_COPY': case 'PRE_COPY_P2P>STOP_COPY':
        await this.stopCopy(from, opts);
        return null;
      case 'STOP>STOP_COPY':
        return this.openSave(opts, true);
      case 'STOP_COPY>STOP': {
        const s = this.save;
        if (s !== null && !s.finished) {
          s.abort.abort();
          this.endSave(new VgpuError(ErrorCode.Cancelled, 'stop-copy ended before the stream was complete', { hint: 'migrate again' }));
        }
        if (s?.job) await s.job.catch(() => undefined);
        if (this.saveStarted) { await fw.cancel().catch(() => undefined); this.saveStarted = false; }
        this.save = null;
        return null;
      }
      case 'STOP>RESUMING':
        return this.openResume(opts);
      case 'RESUMING>STOP':
        await this.finishResume();
        return null;
      default:
        throw new VgpuError(ErrorCode.Internal, `no action for arc ${key}`, { hint: 'migrationPath produced an arc this driver does not know' });
    }
    void S;
  }

  // ---- saving ----

  private async openSave(opts: SetStateOptions, stopped: boolean): Promise<SaveHandle> {
    const dev = this.device;
    const pipe = opts.sink === undefined ? new PassThrough({ highWaterMark: 8 << 20 }) : null;
    const sink = opts.sink ?? pipe!;
    const abort = new AbortController();
    const onAbort = (): void => abort.abort();
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    const compat = dev.compat();
    const session = opts.deviceStateOnly === true
      ? new SaveSession({ region: NO_FB, dirty: noDirtyPages(compat.pageSize), sink, compat, signal: abort.signal })
      : new SaveSession({ region: dev.region(), dirty: dev.dirtySource(), sink, compat, signal: abort.signal });
    let resolveDone!: (t: EncoderTotals) => void;
    let rejectDone!: (e: unknown) => void;
    const done = new Promise<EncoderTotals>((res, rej) => { resolveDone = res; rejectDone = rej; });
    done.catch(() => undefined);
    let passes = 0;
    const handle: SaveHandle = {
      kind: 'save',
      stream: pipe,
      pass: async () => {
        if (this.save?.handle !== handle || (this.st !== MigState.PRE_COPY && this.st !== MigState.PRE_COPY_P2P)) {
          throw new VgpuError(ErrorCode.IllegalState, `no pre-copy pass possible on ${dev.id} in ${migStateName(this.st)}`, { hint: 'passes run only in PRE_COPY' });
        }
        const run = (async () => {
          try {
            return passes++ === 0 ? await session.fullPass() : await session.dirtyPass();
          } catch (err) {
            this.endSave(err);
            throw err;
          }
        })();
        ctx.passing = run.catch(() => undefined);
        return run;
      },
      precopyInfo: () => session.precopyInfo(),
      totals: () => session.totals(),
      stopBreakdown: () => session.lastStop,
      done,
    };
    const ctx: SaveCtx = { session, handle, resolveDone, rejectDone, finished: false, abort, passing: Promise.resolve() };
    this.save = ctx;
    try {
      await session.begin();
    } catch (err) {
      this.endSave(err);
      this.save = null;
      throw new RolledBack(err);
    }
    if (stopped) {
      // STOP→STOP_COPY: the whole stream in the background (the reader may only start once it has the handle).
      ctx.job = (async () => {
        try {
          await session.fullPass();
          await this.finishSave(ctx, { stop: async () => {}, resume: async () => {} });
        } catch (err) {
          this.endSave(err);
        }
      })();
    }
    return handle;
  }

  /** PRE_COPY→STOP_COPY: quiesce, send the rest and the firmware context; undo everything if the stream broke. */
  private async stopCopy(from: MigState, opts: SetStateOptions): Promise<void> {
    const ctx = this.save;
    if (ctx === null || ctx.finished) {
      throw new VgpuError(ErrorCode.IllegalState, `no open saving session on ${this.device.id}`, { hint: 'enter PRE_COPY first' });
    }
    const fw = this.device.firmware;
    try {
      let stop = async (): Promise<void> => { await fw.stopWork(); this.fwStopped = true; };
      if (opts.onStopped !== undefined) {
        // A VFIO front (VMM-driven reads): when the SET returns the device is in the new state. The device stops
        // first and the state says so (a pass can no longer start); a pass a reader started may still be writing —
        // and waiting for that reader — so the stop-copy's frames wait for it, not the stop (the final collect
        // catches every page written before the stop). The breakdown's stop-work time is then not the session's.
        await stop();
        this.st = MigState.STOP_COPY;
        opts.onStopped();
        await ctx.passing;
        stop = async () => {};
      }
      await this.finishSave(ctx, { stop, resume: async () => {} });
    } catch (err) {
      this.st = from; // rolled back below (or ERROR, by the caller, if that fails)
      this.endSave(err);
      try {
        if (this.saveStarted) { await fw.cancel(); this.saveStarted = false; }
        if (this.fwStopped) { await fw.resumeWork(); this.fwStopped = false; }
      } catch (undoErr) {
        throw new VgpuError(ErrorCode.Migration, `stop-copy of ${this.device.id} failed and could not be undone: ${(undoErr as Error).message}`, {
          hint: 'reset the device', cause: err,
        });
      }
      throw new RolledBack(err);
    }
  }

  private async finishSave(ctx: SaveCtx, device: { stop(): Promise<void>; resume(): Promise<void> }): Promise<void> {
    const fw = this.device.firmware;
    const self = this;
    const totals = await ctx.session.stopCopy(device, {
      async *save(signal?: AbortSignal) {
        self.saveStarted = true;
        yield* fw.save(signal);
      },
    });
    ctx.finished = true;
    this.saveStarted = false; // complete: the GSP may forget it (STOP_COPY→STOP then sends no CANCEL_SAVE)
    ctx.resolveDone(totals);
  }

  private endSave(err: unknown): void {
    const s = this.save;
    if (s === null || s.finished) return;
    s.finished = true;
    s.session.abort(err instanceof Error ? err : undefined);
    s.rejectDone(err);
  }

  // ---- resuming ----

  private async openResume(opts: SetStateOptions): Promise<ResumeHandle> {
    const dev = this.device;
    if (!this.fwStopped) {
      // A destination created for the migration runs its (empty) firmware context: quiesce it before the
      // restore (RESTORE_STATE needs a stopped plugin task).
      await dev.firmware.stopWork();
      this.fwStopped = true;
    }
    const pipe = opts.source === undefined ? new PassThrough({ highWaterMark: 8 << 20 }) : null;
    const source = opts.source ?? pipe!;
    const abort = new AbortController();
    opts.signal?.addEventListener('abort', () => abort.abort(), { once: true });
    const applied = receiveMigration({
      source, region: opts.deviceStateOnly === true ? NO_FB : dev.region(), expect: dev.compat(), signal: abort.signal,
      ...(opts.deviceStateOnly === true ? { deviceStateOnly: true } : {}),
      ...(opts.onApplyProgress ? { onProgress: opts.onApplyProgress } : {}),
    });
    applied.catch(() => undefined);
    const handle: ResumeHandle = { kind: 'resume', stream: pipe, applied };
    this.resume = { handle, abort };
    return handle;
  }

  private async finishResume(): Promise<void> {
    const r = this.resume;
    this.resume = null;
    if (r === null) throw new VgpuError(ErrorCode.IllegalState, 'no resuming session', { hint: 'enter RESUMING first' });
    const result = await r.handle.applied; // throws on a truncated/corrupt stream (the FB is already scrubbed)
    try {
      await this.device.firmware.restore(result.firmwareContext, r.abort.signal);
    } catch (err) {
      // The FB holds a complete image but the firmware refused its context: keep nothing.
      const region = this.device.region();
      await region.zero(0n, region.size).catch(() => undefined);
      throw new VgpuError(ErrorCode.Migration, `the firmware of ${this.device.id} refused the migrated context: ${(err as Error).message}`, {
        hint: 'the source and destination GSP plugins disagree; reset this vGPU and destroy it', cause: err,
      });
    }
  }
}
