/**
 * Drains the three per-vGPU firmware log areas (docs/reference/host-rpc-mailbox.md: init task, vGPU task, kernel) of
 * every running vGPU into a winston child logger `{gpu, vgpu}`, a rotating per-vGPU file, the VgpuLogStore and
 * 'log:line' bus events.
 *
 * Driven by the firmware, not by a clock: a firmware that says when it wrote (Firmware.onLogWritten — the simulated
 * GSP raises a log interrupt, as GSP-RM interrupts the host and OpenRM reads its logs when it services them) gets its
 * vGPU drained within `maxDelayMs` of the write, and not at all while it writes nothing. Only a firmware that cannot
 * say so is swept every `maxDelayMs`. Each drain reads just what is new (Firmware.readLogSince, a cursor per area)
 * where the firmware offers it, else diffs snapshots (log-area-reader.ts).
 *
 * 'vgpu:state' starts a vGPU's drain ('creating'/'ready' on) and drains it at each state change; 'stopping' and the
 * end states ('destroyed', 'failed', 'lost') drain one last time (the areas vanish with the plugin task, so the drain
 * at the 'plugin-shutdown' step is the one that catches the shutdown lines) and stop.
 */
import { join } from 'node:path';
import { isUnsafeFileError } from '../../core/fs/own-file.js';
import type { EventBus, VgpuState } from '../../core/contracts/events.js';
import type { LogContext } from '../../core/contracts/firmware.js';
import type { PhysicalGpu } from '../../core/contracts/hal.js';
import type { Logger } from '../../core/contracts/logger.js';
import type { GpuRegistry } from '../../core/gpu-registry.js';
import { LogAreaReader, LogCursorReader } from './log-area-reader.js';
import { LogRetention, logFileName } from './log-retention.js';
import type { LoggingSettings } from './logging-config.js';
import { RotatingLogFile } from './rotating-log-file.js';
import type { VgpuLogStoreImpl } from './vgpu-log-store.js';

const AREAS = ['init-task', 'vgpu-task', 'kernel'] as const satisfies readonly LogContext[];
const END_STATES: ReadonlySet<VgpuState> = new Set(['destroyed', 'failed', 'lost']);

type AreaReader = { kind: 'cursor'; r: LogCursorReader } | { kind: 'snapshot'; r: LogAreaReader };

interface Drain {
  gpu: string;
  vgpuId: string;
  vf: number;
  readers: Map<string, AreaReader> | null;
  file: RotatingLogFile | null;
  log: Logger;
  active: boolean;
}

/** What the drainer keeps per GPU: its subscription to log notifications, or its place in the fallback sweep. */
interface GpuWatch {
  gpu: PhysicalGpu;
  notified: boolean;
  off: () => void;
}

export class FirmwareLogDrainer {
  private readonly drains = new Map<string, Drain>();
  /** Active drain by `${gpu}/${vf}`: a log notification names a gfid, not a vGPU. */
  private readonly byVf = new Map<string, Drain>();
  private readonly watches = new Map<string, GpuWatch>();
  /** Drains a notification asked for, flushed together after maxDelayMs. */
  private readonly dirty = new Set<Drain>();
  private flushTimer: NodeJS.Timeout | null = null;
  /** The sweep of GPUs whose firmware does not notify (none on the simulator or the mock). */
  private sweepTimer: NodeJS.Timeout | null = null;
  private off: (() => void) | null = null;
  private fileErrorLogged = false;
  /** Files disabled because something other than ours sat under their name (each reported once). */
  private readonly refusedFiles = new Set<string>();
  private readonly retention: LogRetention;
  /** Log file base names in the order this run saw their vGPU end or its VF reused (the retention's "newest"). */
  private readonly ended = new Map<string, number>();
  private endSeq = 0;
  /** False when the log dir could not be made (files are off; draining goes on). */
  private filesEnabled = true;
  /** Drains done, for tests and benchmarks (a quiet firmware must not cause any). */
  drainCount = 0;

  constructor(
    private readonly bus: EventBus,
    private readonly gpus: GpuRegistry,
    private readonly root: Logger,
    private readonly store: VgpuLogStoreImpl,
    private readonly settings: LoggingSettings,
  ) {
    this.retention = new LogRetention(settings, root);
  }

  /** Per-vGPU files are off (the plugin could not create their dir). */
  disableFiles(): void {
    this.filesEnabled = false;
  }

  /** Delete log files beyond the retention limits now (start; tests). */
  sweep(): Promise<void> {
    if (!this.filesEnabled) return Promise.resolve();
    return this.retention.request(
      () => new Set([...this.drains.values()].filter((d) => d.active).map((d) => logFileName(d.gpu, d.vf, d.vgpuId))),
      () => this.ended,
    );
  }

  start(): void {
    const offState = this.bus.on('vgpu:state', (e) => this.onState(e.gpu, e.vgpuId, e.vf, e.to));
    // The lifecycle announces the moment between SHUTDOWN (the task writes its last lines) and CLEANUP (the log
    // areas go with the task): the last chance to read them, as upstream's destroy snapshots debugfs.
    const offStep = this.bus.on('vgpu:step', (e) => {
      if (e.step !== 'plugin-shutdown') return;
      const d = this.drains.get(e.vgpuId);
      if (d?.active === true) this.drain(d, false);
    });
    this.off = () => { offState(); offStep(); };
  }

  /** Final drain of every active vGPU, then stop listening. */
  stop(): void {
    this.off?.();
    this.off = null;
    for (const w of this.watches.values()) w.off();
    this.watches.clear();
    if (this.flushTimer !== null) clearTimeout(this.flushTimer);
    this.flushTimer = null;
    if (this.sweepTimer !== null) clearInterval(this.sweepTimer);
    this.sweepTimer = null;
    this.dirty.clear();
    for (const d of this.drains.values()) if (d.active) this.drain(d, true);
  }

  /** Drain now (tests, and `logs` callers that want the freshest text). */
  drainAll(): void {
    for (const d of this.drains.values()) if (d.active) this.drain(d, false);
  }

  /** Whether a GPU's logs are drained on notification (true) or swept on a timer (false); undefined: not watched. */
  notifies(gpu: string): boolean | undefined {
    return this.watches.get(gpu)?.notified;
  }

  private onState(gpu: string, vgpuId: string, vf: number, to: VgpuState): void {
    let d = this.drains.get(vgpuId);
    if (d === undefined) {
      if (END_STATES.has(to) || to === 'stopping') return; // never saw it running: nothing was drained to finish
      // A new vGPU on this VF: the previous one's kept lines and drain go (upstream repoints debugfs at create),
      // and its files become fair game for the retention.
      let reused = false;
      for (const [id, old] of this.drains) {
        if (old.gpu !== gpu || old.vf !== vf) continue;
        old.file?.close();
        if (old.active) { this.retire(old); this.noteEnded(old); }
        this.drains.delete(id);
        reused = true;
      }
      this.store.open(gpu, vf, vgpuId);
      d = { gpu, vgpuId, vf, readers: null, file: this.openFile(gpu, vf, vgpuId), log: this.root.child({ gpu, vgpu: vgpuId }), active: true };
      this.drains.set(vgpuId, d);
      this.byVf.set(vfKey(gpu, vf), d);
      this.watch(gpu);
      if (reused) void this.sweep();
    }
    if (!d.active) return;
    this.drain(d, END_STATES.has(to));
    if (END_STATES.has(to)) {
      this.retire(d);
      d.file?.close();
      this.noteEnded(d);
      void this.sweep();
    }
  }

  private noteEnded(d: Drain): void {
    const base = logFileName(d.gpu, d.vf, d.vgpuId);
    this.ended.delete(base);
    this.ended.set(base, ++this.endSeq);
    // Bounded: only names that can still have files matter, and the retention keeps far fewer than this.
    if (this.ended.size > 4096) this.ended.delete(this.ended.keys().next().value!);
  }

  private retire(d: Drain): void {
    d.active = false;
    this.dirty.delete(d);
    if (this.byVf.get(vfKey(d.gpu, d.vf)) === d) this.byVf.delete(vfKey(d.gpu, d.vf));
  }

  /** Start listening to a GPU's log notifications (or put it in the sweep) when its first vGPU appears. */
  private watch(bdf: string): void {
    if (this.watches.has(bdf)) return;
    const gpu = this.gpus.find(bdf);
    if (gpu === undefined) return;
    const fw = gpu.firmware;
    if (fw.onLogWritten !== undefined) {
      const off = fw.onLogWritten((gfid) => this.onLogWritten(bdf, gfid));
      this.watches.set(bdf, { gpu, notified: true, off });
      return;
    }
    this.watches.set(bdf, { gpu, notified: false, off: () => {} });
    if (this.sweepTimer === null) {
      this.sweepTimer = setInterval(() => this.sweepUnnotified(), this.settings.maxDelayMs);
      this.sweepTimer.unref(); // logs must never keep the daemon (or a test) alive
    }
  }

  private onLogWritten(gpu: string, gfid: number): void {
    const d = this.byVf.get(vfKey(gpu, gfid - 1));
    if (d === undefined || !d.active) return;
    this.dirty.add(d);
    if (this.flushTimer === null) {
      // One timer for every notification that arrives meanwhile: a burst of lines (a create writes a dozen) is one
      // drain per vGPU, and the delay stays bounded. Not unref'd: it lives at most maxDelayMs, and lines the firmware
      // wrote must reach the files even when nothing else keeps the process busy.
      this.flushTimer = setTimeout(() => this.flush(), this.settings.maxDelayMs);
    }
  }

  private flush(): void {
    this.flushTimer = null;
    const ds = [...this.dirty];
    this.dirty.clear();
    for (const d of ds) if (d.active) this.drain(d, false);
  }

  /** Drain the vGPUs of GPUs whose firmware cannot say when it wrote (the fallback sweep). */
  private sweepUnnotified(): void {
    for (const d of this.drains.values()) if (d.active && this.watches.get(d.gpu)?.notified === false) this.drain(d, false);
  }

  private openFile(gpu: string, vf: number, vgpuId: string): RotatingLogFile | null {
    if (!this.filesEnabled) return null;
    return new RotatingLogFile(join(this.settings.dir, logFileName(gpu, vf, vgpuId)), this.settings.maxBytes, this.settings.maxFiles);
  }

  private fileError(e: unknown, d?: Drain): void {
    if (isUnsafeFileError(e)) {
      // Something not ours sits under this vGPU's file name (a planted link, another user's file): never written
      // through. This vGPU's lines still reach the daemon log and the store.
      if (d !== undefined) d.file = null;
      if (!this.refusedFiles.has(e.path)) {
        this.refusedFiles.add(e.path);
        this.root.warn('vGPU log file refused: not a regular file of the daemon\'s own; this vGPU logs to the daemon log only', { file: e.path, reason: e.detail });
      }
      return;
    }
    // One warning, not one per drain: a read-only or missing log dir should not flood the daemon log.
    if (this.fileErrorLogged) return;
    this.fileErrorLogged = true;
    this.root.warn('vGPU log files disabled: cannot write the log directory', { dir: this.settings.dir, error: (e as Error).message });
  }

  private readersFor(d: Drain, gpu: PhysicalGpu): Map<string, AreaReader> {
    if (d.readers === null) {
      const cursor = gpu.firmware.readLogSince !== undefined;
      d.readers = new Map(AREAS.map((a) => [a, cursor ? { kind: 'cursor', r: new LogCursorReader() } : { kind: 'snapshot', r: new LogAreaReader() }]));
    }
    return d.readers;
  }

  private drain(d: Drain, final: boolean): void {
    const gpu = this.gpus.find(d.gpu);
    if (gpu === undefined) return;
    this.drainCount++;
    const gfid = d.vf + 1;
    const now = Date.now();
    const fw = gpu.firmware;
    for (const area of AREAS) {
      const reader = this.readersFor(d, gpu).get(area)!;
      let lines: string[];
      try {
        lines = reader.kind === 'cursor'
          ? reader.r.next(fw.readLogSince!(area, gfid, reader.r.position))
          : reader.r.next(fw.readLog(area, gfid));
      } catch {
        lines = []; // no such area on this firmware, or the GPU is gone: nothing to add
      }
      if (final) lines.push(...reader.r.flush());
      if (lines.length === 0) continue;
      this.store.add(d.vgpuId, area, lines, now);
      for (const line of lines) {
        d.log.info(line, { area });
        this.bus.emit('log:line', { gpu: d.gpu, vgpuId: d.vgpuId, area, line });
      }
      if (d.file !== null) {
        try {
          d.file.append(lines.map((l) => `${new Date(now).toISOString()} [${area}] ${l}`));
        } catch (e) {
          this.fileError(e, d);
        }
      }
    }
  }
}

function vfKey(gpu: string, vf: number): string {
  return `${gpu}/${vf}`;
}
