/**
 * Starts the simulated GSP in a worker thread and talks to it: the parent-side half of gsp-worker.ts.
 *
 *   const client = new GspRpcClient({ arena });               // host side first: it initialises the region
 *   const gsp = await startGspWorker({ arena, handlerModule }); // resolves once the firmware is RUNNING
 *   await gsp.inject({ kind: 'fail-call', fn: GspFunction.GSP_RM_CONTROL, result: 0x55 });
 *   await gsp.stop();
 */
import type { Worker } from 'node:worker_threads';
import { ErrorCode, VgpuError, type ErrorCode as ErrorCodeT } from '../../../core/contracts/exceptions.js';
import type { SharedArena } from '../../../native/native-ops.js';
import type { GspFault, GspServerStats } from './gsp-rpc-server.js';
import { siblingModule } from '../../../core/runtime/module-entry.js';
import { spawnModuleWorker } from '../../../core/runtime/spawn-worker.js';
import type { GspWorkerCommand, GspWorkerData, GspWorkerMessage } from './gsp-worker-protocol.js';

export interface StartGspWorkerOptions {
  /** A 'sab' arena (its SharedArrayBuffer is posted) or a 'file' arena (the worker opens its path). */
  arena: SharedArena;
  base?: bigint;
  handlerModule?: string;
  handlerOptions?: unknown;
  heartbeatMs?: number;
  spaceTimeoutMs?: number;
  /** The firmware thread's look-before-sleep budget, µs (firmware-spin.ts); default VGPUD_SIM_FW_SPIN_US or 200. */
  firmwareSpinUs?: number;
  verbose?: boolean;
  /** How long to wait for the worker to come up. Default 10 s. */
  startTimeoutMs?: number;
  /** Interrupts the firmware raises (GspHandlerContext.raiseIrq), in order. */
  onIrq?: (data: unknown) => void;
}

export interface GspWorkerHandle {
  readonly worker: Worker;
  inject(fault: GspFault): Promise<void>;
  /** Crash the firmware (FW_STATE = crashed, no more answers). */
  crash(reason?: number): Promise<void>;
  postEvent(fn: number, payload?: Uint8Array, gfid?: number): Promise<void>;
  stats(): Promise<GspServerStats>;
  /** Send a 'custom' command to the handler module (ctx.onCommand); resolves with its answer. */
  command(data: unknown): Promise<unknown>;
  /** Orderly firmware stop, then the worker exits. */
  stop(): Promise<void>;
  /** Kill the thread outright (no state change: the host sees the heartbeat stop). */
  terminate(): Promise<void>;
}

type DistributiveOmit<T, K extends keyof T> = T extends unknown ? Omit<T, K> : never;

export async function startGspWorker(opts: StartGspWorkerOptions): Promise<GspWorkerHandle> {
  const data: GspWorkerData = {
    base: (opts.base ?? 0n).toString(),
    ...(opts.handlerModule !== undefined ? { handlerModule: opts.handlerModule } : {}),
    ...(opts.handlerOptions !== undefined ? { handlerOptions: opts.handlerOptions } : {}),
    ...(opts.heartbeatMs !== undefined ? { heartbeatMs: opts.heartbeatMs } : {}),
    ...(opts.spaceTimeoutMs !== undefined ? { spaceTimeoutMs: opts.spaceTimeoutMs } : {}),
    ...(opts.firmwareSpinUs !== undefined ? { firmwareSpinUs: opts.firmwareSpinUs } : {}),
    ...(opts.verbose !== undefined ? { verbose: opts.verbose } : {}),
  };
  if (opts.arena.sab !== null) data.sab = opts.arena.sab;
  else if (opts.arena.path !== null) data.path = opts.arena.path;
  else {
    throw new VgpuError(ErrorCode.InvalidArgument, `a '${opts.arena.backing}' arena cannot be shared with the GSP worker`, {
      hint: "use a 'sab' arena (threads) or a 'file' arena with a path (the worker opens it)",
    });
  }
  const worker = spawnWorker(data);
  let nextId = 1;
  const waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  let exited = false;

  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new VgpuError(ErrorCode.FirmwareBoot, 'simulated GSP worker did not start in time', { hint: 'run with verbose: true to see its log' }));
      void worker.terminate();
    }, opts.startTimeoutMs ?? 10_000);
    worker.on('message', (m: GspWorkerMessage) => {
      if (m.op === 'ready') {
        clearTimeout(timer);
        resolve();
      } else if (m.op === 'fatal') {
        clearTimeout(timer);
        reject(new VgpuError((m.code as ErrorCodeT | undefined) ?? ErrorCode.FirmwareBoot, `simulated GSP failed to start: ${m.message}`, {
          hint: 'check the handler module and that the host client initialised the region first',
        }));
      } else if (m.op === 'irq') {
        opts.onIrq?.(m.data);
      } else if (m.op === 'ack') {
        const w = waiting.get(m.id);
        if (w === undefined) return;
        waiting.delete(m.id);
        if (m.error !== undefined) {
          w.reject(new VgpuError((m.error.code as ErrorCodeT | undefined) ?? ErrorCode.Internal, m.error.message, { hint: 'see the simulated GSP log' }));
        } else {
          w.resolve(m.value);
        }
      }
    });
    worker.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    worker.on('exit', () => {
      exited = true;
      clearTimeout(timer);
      reject(new VgpuError(ErrorCode.FirmwareBoot, 'simulated GSP worker exited', { hint: 'run with verbose: true' }));
      for (const w of waiting.values()) w.reject(new VgpuError(ErrorCode.GpuLost, 'simulated GSP worker exited', { hint: 'start it again' }));
      waiting.clear();
    });
  });
  await ready;

  const send = (cmd: DistributiveOmit<GspWorkerCommand, 'id'>): Promise<unknown> => {
    if (exited) return Promise.reject(new VgpuError(ErrorCode.GpuLost, 'simulated GSP worker has exited', { hint: 'start it again' }));
    const id = nextId++;
    return new Promise((resolve, reject) => {
      waiting.set(id, { resolve, reject });
      worker.postMessage({ ...cmd, id });
    });
  };

  return {
    worker,
    inject: async (fault) => {
      await send({ op: 'inject', fault });
    },
    crash: async (reason) => {
      await send({ op: 'inject', fault: { kind: 'crash', ...(reason !== undefined ? { reason } : {}) } });
    },
    postEvent: async (fn, payload = new Uint8Array(0), gfid) => {
      await send({ op: 'event', fn, payload, ...(gfid !== undefined ? { gfid } : {}) });
    },
    stats: async () => (await send({ op: 'stats' })) as GspServerStats,
    command: (d) => send({ op: 'custom', data: d }),
    stop: async () => {
      if (exited) return;
      const gone = new Promise<void>((r) => worker.once('exit', () => r()));
      await send({ op: 'stop' });
      await gone;
    },
    terminate: async () => {
      if (!exited) await worker.terminate();
    },
  };
}

function spawnWorker(data: GspWorkerData): Worker {
  return spawnModuleWorker(siblingModule(import.meta.url, './gsp-worker'), { workerData: data });
}
