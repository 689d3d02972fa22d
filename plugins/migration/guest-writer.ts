/**
 * A simulated guest workload on one vGPU's FB: a worker thread that writes pages at a set rate and pattern,
 * concurrently with whatever the main thread does (pre-copy). `pause()` is the vCPU stop of a migration's
 * stop-copy: it resolves only once the worker has acknowledged, so no write is in flight afterwards.
 */
import { ErrorCode, VgpuError } from '../../core/contracts/exceptions.js';
import { siblingModule } from '../../core/runtime/module-entry.js';
import { spawnModuleWorker } from '../../core/runtime/spawn-worker.js';
import type { Worker } from 'node:worker_threads';
import {
  CONTROL_BYTES, CTL_BYTES_INDEX, CTL_CMD, CTL_STATE, Cmd, State, type ArenaRef, type GuestWriterInit, type WritePattern,
} from './guest-writer-protocol.js';

export interface GuestWriterOptions {
  arena: ArenaRef;
  base?: bigint;
  size: bigint;
  pageSize?: number;
  rateMiBps: number;
  pattern?: WritePattern;
  hotFraction?: number;
  seed?: number;
  dirtyLog?: { arena: ArenaRef; offset?: bigint };
  /**
   * Before reporting ready, rewrite one word of every page with its own value, so the worker's own mapping of a
   * file arena is faulted in up front: a real guest's writes to VRAM cost the host nothing, but each first write
   * through a fresh mmap of the simulator's file costs a page fault (~1.5 M of them over a 6 GiB FB, taken on the
   * same two cores the migration runs on). Only for an FB whose pages are all backed already (a hole would be
   * allocated); contents do not change and nothing is marked dirty.
   */
  prefault?: boolean;
  /**
   * For a fresh (scrubbed, mostly unwritten) FB: before reporting ready, back the FB's pages with memory WITHOUT
   * writing them (SharedArena.reserve: fallocate on the simulator's sparse file). Real VRAM is there from power-on,
   * so a guest's first store to a page costs what any store costs; on the sparse file it allocated the page inside
   * the fault, on the same two cores the migration runs on. Reads stay zero and the file's written-since-scrub
   * record is unchanged (docs/reference/precopy-convergence.md), so what the guest writes is still all that counts as
   * written. Costs the FB's size in backing memory while the guest runs. Nothing is done where the arena cannot
   * (a SharedArrayBuffer) or the filesystem has no room.
   */
  reserveFb?: boolean;
}

type WaitAsync = (ta: Int32Array, index: number, value: number, timeout?: number) =>
  { async: false; value: string } | { async: true; value: Promise<string> };
const waitAsync = (Atomics as unknown as { waitAsync: WaitAsync }).waitAsync;

export class GuestWriter {
  private readonly ctl: Int32Array;
  private readonly bytes: BigInt64Array;
  private exited: Promise<void>;

  private constructor(private readonly worker: Worker, control: SharedArrayBuffer) {
    this.ctl = new Int32Array(control);
    this.bytes = new BigInt64Array(control);
    this.exited = new Promise((resolve) => worker.once('exit', () => resolve()));
  }

  static async start(o: GuestWriterOptions): Promise<GuestWriter> {
    const ps = o.pageSize ?? 4096;
    if (o.size <= 0n || o.size % BigInt(ps) !== 0n || !(o.rateMiBps > 0)) {
      throw new VgpuError(ErrorCode.InvalidArgument, 'guest writer needs a page-aligned size and a positive rate', {
        hint: 'pass size as a multiple of the page size and rateMiBps > 0',
      });
    }
    const control = new SharedArrayBuffer(CONTROL_BYTES);
    const init: GuestWriterInit = {
      arena: o.arena, base: (o.base ?? 0n).toString(), size: o.size.toString(), pageSize: ps, rateMiBps: o.rateMiBps,
      pattern: o.pattern ?? 'random', hotFraction: o.hotFraction ?? 0.05, seed: o.seed ?? 1, control,
      ...(o.dirtyLog ? { dirtyLog: { arena: o.dirtyLog.arena, offset: (o.dirtyLog.offset ?? 0n).toString() } } : {}),
      ...(o.prefault === true ? { prefault: true } : {}),
      ...(o.reserveFb === true ? { reserveFb: true } : {}),
    };
    const worker = spawnModuleWorker(siblingModule(import.meta.url, './guest-writer-worker'), { workerData: init });
    const w = new GuestWriter(worker, control);
    await new Promise<void>((resolve, reject) => {
      const onMsg = (m: { op: string; message?: string }): void => {
        if (m.op === 'ready') { cleanup(); resolve(); }
        if (m.op === 'fatal') { cleanup(); reject(new VgpuError(ErrorCode.Internal, `guest writer failed to start: ${m.message}`, {})); }
      };
      const onErr = (e: Error): void => { cleanup(); reject(e); };
      const onExit = (): void => { cleanup(); reject(new VgpuError(ErrorCode.Internal, 'guest writer exited during start', {})); };
      const cleanup = (): void => { worker.off('message', onMsg); worker.off('error', onErr); worker.off('exit', onExit); };
      worker.on('message', onMsg);
      worker.on('error', onErr);
      worker.on('exit', onExit);
    });
    return w;
  }

  bytesWritten(): bigint {
    return Atomics.load(this.bytes, CTL_BYTES_INDEX);
  }

  /** Stop writing; resolves once the worker confirms no write is in flight. */
  async pause(): Promise<void> {
    this.command(Cmd.PAUSE);
    await this.waitState(State.PAUSED);
  }

  async resume(): Promise<void> {
    this.command(Cmd.RUN);
    await this.waitState(State.RUNNING);
  }

  async stop(): Promise<bigint> {
    this.command(Cmd.STOP);
    await this.exited;
    return this.bytesWritten();
  }

  private command(c: number): void {
    Atomics.store(this.ctl, CTL_CMD, c);
    Atomics.notify(this.ctl, CTL_CMD);
  }

  private async waitState(want: number): Promise<void> {
    const deadline = Date.now() + 5000;
    for (;;) {
      const s = Atomics.load(this.ctl, CTL_STATE);
      if (s === want) return;
      if (s === State.STOPPED) throw new VgpuError(ErrorCode.IllegalState, 'guest writer already stopped', { hint: 'start a new writer' });
      if (Date.now() > deadline) throw new VgpuError(ErrorCode.RpcTimeout, 'guest writer did not acknowledge within 5 s', { hint: 'the worker is stuck' });
      const r = waitAsync(this.ctl, CTL_STATE, s, 100);
      if (r.async) await r.value;
    }
  }
}
