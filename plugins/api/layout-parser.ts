/**
 * Parses layout text off the daemon's thread (layout-parse-worker.ts), so one layout request never stalls the
 * API. The text is first scanned here against the layout limits (core/layout/layout-limits.ts: linear and cheap),
 * so an oversized layout is refused without reaching the worker. One worker, started on first use; jobs queue in
 * it, at most MAX_QUEUED at a time. It stops IDLE_STOP_MS after its last job: a parked thread costs no CPU, but it
 * holds its own heap and module graph, which an idle daemon should not carry.
 */
import type { Worker } from 'node:worker_threads';
import { ErrorCode, VgpuError, type ErrorCode as ErrorCodeT } from '../../core/contracts/exceptions.js';
import type { LayoutFile } from '../../core/layout/layout-file.js';
import { scanLayoutText } from '../../core/layout/layout-limits.js';
import { siblingModule } from '../../core/runtime/module-entry.js';
import { spawnModuleWorker } from '../../core/runtime/spawn-worker.js';

/** Layout parses in flight before new ones are refused (busy) instead of queued. */
export const MAX_QUEUED = 16;
/** The worker stops this long after its last job (the next layout request starts a new one). */
export const IDLE_STOP_MS = 60_000;

type Reply = { id: number; file?: LayoutFile; error?: { code: string; message: string; hint: string; details: Record<string, unknown> } };

export class LayoutParser {
  private worker: Worker | undefined;
  private readonly pending = new Map<number, { resolve: (f: LayoutFile) => void; reject: (e: Error) => void }>();
  private nextId = 1;
  private idleTimer: NodeJS.Timeout | undefined;
  /** Texts handed to the worker so far (tests: an oversized layout must never get there). */
  workerJobs = 0;
  /** Workers started so far. */
  workerStarts = 0;

  constructor(private readonly idleStopMs = IDLE_STOP_MS) {}

  /** The running worker, if any (tests wait for its exit). */
  get current(): Worker | undefined {
    return this.worker;
  }

  async parse(text: string): Promise<LayoutFile> {
    scanLayoutText(text);
    if (this.pending.size >= MAX_QUEUED) {
      throw new VgpuError(ErrorCode.Busy, `${MAX_QUEUED} layouts are being parsed already`, { hint: 'retry when the running layout requests finished' });
    }
    const worker = this.ensureWorker();
    clearTimeout(this.idleTimer);
    const id = this.nextId++;
    this.workerJobs++;
    return new Promise<LayoutFile>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      worker.postMessage({ id, text });
    });
  }

  /** Stop the worker (API shutdown); parses still waiting are refused. */
  async close(): Promise<void> {
    clearTimeout(this.idleTimer);
    const w = this.worker;
    this.worker = undefined;
    this.failAll(new VgpuError(ErrorCode.Cancelled, 'the control API is shutting down', { hint: 'retry once the daemon is back' }));
    if (w !== undefined) await w.terminate();
  }

  private ensureWorker(): Worker {
    if (this.worker !== undefined) return this.worker;
    const w = spawnModuleWorker(siblingModule(import.meta.url, './layout-parse-worker'));
    w.unref(); // an idle parser must not keep the daemon (or a test) alive
    this.workerStarts++;
    w.on('message', (m: Reply | { op: string; message?: string }) => {
      if ('op' in m) {
        if (m.op === 'fatal') this.failAll(new VgpuError(ErrorCode.Internal, `the layout parser did not start: ${m.message ?? '?'}`, { hint: 'this is a bug in vgpud; see the daemon log' }));
        return;
      }
      const p = this.pending.get(m.id);
      if (p === undefined) return;
      this.pending.delete(m.id);
      if (this.pending.size === 0) {
        // One timer for the one worker, armed only after a job: nothing runs while the API is idle.
        this.idleTimer = setTimeout(() => {
          if (this.pending.size === 0 && this.worker === w) {
            this.worker = undefined;
            void w.terminate();
          }
        }, this.idleStopMs).unref();
      }
      if (m.file !== undefined) p.resolve(m.file);
      else p.reject(new VgpuError((m.error?.code as ErrorCodeT | undefined) ?? ErrorCode.Internal, m.error?.message ?? 'layout parse failed', {
        hint: m.error?.hint ?? 'see the daemon log', details: m.error?.details ?? {},
      }));
    });
    const gone = (why: string): void => {
      if (this.worker === w) this.worker = undefined; // the next parse starts a new one
      this.failAll(new VgpuError(ErrorCode.Internal, `the layout parser stopped (${why})`, { hint: 'retry; the daemon starts a new parser' }));
    };
    w.on('error', (e) => gone(e.message));
    w.on('exit', (code) => gone(`exit ${code}`));
    this.worker = w;
    return w;
  }

  private failAll(e: Error): void {
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
  }
}
