/**
 * Runs the fallback's big fills and verifies on ONE helper worker thread, so the event loop's thread never touches
 * the arena's memory during a scrub.
 *
 * Why not time slices on the loop (the previous design): measured on the 2-vCPU VMs with per-thread schedstat, a
 * sliced 4 GiB fill kept the main thread 100 % busy for ~2 s (first-touch page faults at ~2 GB/s), so the scheduler
 * treated it as a CPU hog: every slice risked being preempted mid-way and the loop saw 27–170 ms stalls, plus
 * multi-100 ms ones whenever GC freed an earlier multi-GiB SharedArrayBuffer in between. On a helper thread the loop
 * sleeps between ticks and wakes with a sleeper's priority, and the helper runs at nice 19 (per-thread on Linux:
 * setpriority on its tid), so a waking main thread preempts it.
 *
 * The worker is plain JavaScript evaluated from a string: it needs no TypeScript loader (Node 20 runs no `--import`
 * hooks in workers) and works the same from `dist/`. It is unref'd while idle, so it never keeps a process alive.
 * If a worker cannot be started (resource limits, an embedder without workers), callers fall back to time slices.
 */
import { Worker } from 'node:worker_threads';

/** Below this, a job is quicker done in place than posted to another thread (~50 µs a hop). */
export const OFF_THREAD_MIN_BYTES = 8 << 20;

export type OffThreadJob =
  | { op: 'fill'; sab: SharedArrayBuffer; offset: number; length: number; pattern: number }
  | { op: 'verify'; sab: SharedArrayBuffer; offset: number; length: number; pattern: number };

// The worker's source. Chunks of 64 MiB keep every Buffer view well below Buffer's 4 GiB limit.
const SOURCE = String.raw`
const { parentPort } = require('node:worker_threads');
try {
  const tid = Number(require('node:fs').readlinkSync('/proc/thread-self').split('/').pop());
  if (tid > 0) require('node:os').setPriority(tid, 19);
} catch { /* not Linux, or not allowed: run at normal priority */ }
const CHUNK = 64 << 20;
function patternBytes(p) { const b = Buffer.alloc(4); b.writeUInt32LE(p >>> 0); return b; }
function fill(m) {
  const pat = patternBytes(m.pattern);
  const same = pat[0] === pat[1] && pat[1] === pat[2] && pat[2] === pat[3];
  for (let pos = m.offset, end = m.offset + m.length; pos < end; pos += CHUNK) {
    const view = Buffer.from(m.sab, pos, Math.min(CHUNK, end - pos));
    if (same) view.fill(pat[0]); else view.fill(pat); // chunks start 4-aligned: the pattern stays in phase
  }
  return null;
}
function verify(m) {
  const BLOCK = 1 << 20;
  const ref = Buffer.alloc(BLOCK, patternBytes(m.pattern));
  const want = m.pattern >>> 0;
  for (let pos = m.offset, end = m.offset + m.length; pos < end; pos += CHUNK) {
    const n = Math.min(CHUNK, end - pos);
    const view = Buffer.from(m.sab, pos, n);
    for (let b = 0; b < n; b += BLOCK) {
      const len = Math.min(BLOCK, n - b);
      if (ref.compare(view, b, b + len, 0, len) === 0) continue;
      for (let i = b; i < b + len; i += 4) if (view.readUInt32LE(i) !== want) return pos + i;
    }
  }
  return -1;
}
parentPort.on('message', (m) => {
  try {
    parentPort.postMessage({ id: m.id, result: m.op === 'fill' ? fill(m) : verify(m) });
  } catch (e) {
    parentPort.postMessage({ id: m.id, error: String(e && e.message || e) });
  }
});
`;

interface Pending {
  resolve(v: number | null): void;
  reject(e: Error): void;
}

class OffThreadRunner {
  private worker: Worker | null = null;
  private broken = false;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();

  /** Start the worker ahead of a big job, so its start-up (~20–40 ms of its own thread) is not on the job's path. */
  warm(): void {
    this.get();
  }

  /** The job's result, or undefined when no worker is available (the caller then does the work itself). */
  run(job: OffThreadJob): Promise<number | null> | undefined {
    const w = this.get();
    if (!w) return undefined;
    const id = this.nextId++;
    const done = new Promise<number | null>((resolve, reject) => this.pending.set(id, { resolve, reject }));
    if (this.pending.size === 1) w.ref();
    w.postMessage({ id, ...job });
    return done;
  }

  private get(): Worker | null {
    if (this.worker || this.broken) return this.worker;
    try {
      const w = new Worker(SOURCE, { eval: true, name: 'vgpud-fallback-fill' });
      w.on('message', (m: { id: number; result?: number | null; error?: string }) => {
        const p = this.pending.get(m.id);
        if (!p) return;
        this.pending.delete(m.id);
        if (this.pending.size === 0) w.unref();
        if (m.error !== undefined) p.reject(new Error(m.error));
        else p.resolve(m.result ?? null);
      });
      const fail = (err: Error): void => {
        if (this.worker === w) this.worker = null;
        for (const p of this.pending.values()) p.reject(err);
        this.pending.clear();
      };
      w.on('error', fail);
      w.on('exit', (code) => fail(new Error(`fallback helper thread exited (code ${code})`)));
      // Unref only now: on Node 20 adding a 'message' listener refs the worker again, so an earlier unref is undone
      // and an idle helper would keep every process that ever filled a SAB arena alive.
      w.unref();
      this.worker = w;
    } catch {
      this.broken = true; // e.g. ERR_WORKER_INIT_FAILED: do the work on this thread from now on
    }
    return this.worker;
  }
}

export const offThread = new OffThreadRunner();
