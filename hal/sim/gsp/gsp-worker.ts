/**
 * worker_threads entry of the simulated GSP: attaches the arena, builds the RPC handler from a handler module,
 * runs a GspRpcServer, and obeys control commands (fault injection, events, stop) from its parent.
 *
 * THE SEAM for the Ada simulator: write a module exporting
 *
 *     export function createHandler(ctx: GspHandlerContext): GspRpcHandler | Promise<GspRpcHandler>
 *
 * and start the worker with `startGspWorker({ ..., handlerModule: '/abs/path/ada-rm-handler.ts' })`. The handler
 * gets (fn, payload, {sequence, gfid}) for every RPC and returns {result, payload} (the server sends no reply for the
 * asynchronous boot RPCs, GSP_ASYNC_FUNCTIONS, and serves one RPC at a time); `ctx.postEvent` raises
 * firmware events; `ctx.onCommand` receives the simulator's own messages sent with `handle.command(data)`.
 * Without handlerModule the worker echoes every payload (echo-handler.ts).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { pathToFileURL } from 'node:url';
import { isAbsolute } from 'node:path';
import type { Logger } from '../../../core/contracts/logger.js';
import { isVgpuError } from '../../../core/contracts/exceptions.js';
import { siblingModule } from '../../../core/runtime/module-entry.js';
import type { SharedArena } from '../../../native/native-ops.js';
import { GspRpcServer } from './gsp-rpc-server.js';
import type { CreateGspHandler, GspHandlerContext, GspWorkerCommand, GspWorkerData, GspWorkerMessage } from './gsp-worker-protocol.js';

function stderrLogger(verbose: boolean, bindings: Record<string, unknown> = {}): Logger {
  const line = (level: string) => (message: string, meta?: Record<string, unknown>): void => {
    if (verbose) console.error(`[sim-gsp ${level}] ${message}`, { ...bindings, ...meta });
  };
  return {
    error: line('error'),
    warn: line('warn'),
    info: () => {},
    debug: () => {},
    child: (b) => stderrLogger(verbose, { ...bindings, ...b }),
  };
}

async function attach(data: GspWorkerData): Promise<SharedArena> {
  if (data.sab !== undefined) {
    const { fallbackOps } = await import('../../../native/fallback.js');
    return fallbackOps.attachSab(data.sab);
  }
  if (data.path !== undefined) {
    const { loadNativeOps } = await import('../../../native/index.js');
    return loadNativeOps().openArena(data.path);
  }
  throw new Error('gsp-worker: workerData needs `sab` or `path`');
}

function moduleUrl(spec: string): string {
  return isAbsolute(spec) ? pathToFileURL(spec).href : spec;
}

async function main(): Promise<void> {
  const port = parentPort;
  if (port === null) throw new Error('gsp-worker.ts must run as a worker thread');
  const data = (workerData ?? {}) as GspWorkerData;
  const post = (m: GspWorkerMessage): void => port.postMessage(m);
  const logger = stderrLogger(data.verbose ?? false);
  const arena = await attach(data);
  const base = BigInt(data.base ?? '0');
  const server = new GspRpcServer({
    arena, base, logger,
    ...(data.heartbeatMs !== undefined ? { heartbeatMs: data.heartbeatMs } : {}),
    ...(data.spaceTimeoutMs !== undefined ? { spaceTimeoutMs: data.spaceTimeoutMs } : {}),
    ...(data.firmwareSpinUs !== undefined ? { firmwareSpinUs: data.firmwareSpinUs } : {}),
  });
  let onCommand: ((d: unknown) => unknown) | null = null;
  const ctx: GspHandlerContext = {
    server, arena, base, logger,
    options: data.handlerOptions,
    postEvent: (fn, payload, opts) => server.postEvent(fn, payload, opts),
    onCommand: (l) => {
      onCommand = l;
    },
    raiseIrq: (d) => post({ op: 'irq', data: d }),
  };
  const mod = (await import(moduleUrl(data.handlerModule ?? siblingModule(import.meta.url, './echo-handler')))) as {
    createHandler?: CreateGspHandler;
  };
  if (typeof mod.createHandler !== 'function') {
    throw new Error(`handler module ${data.handlerModule} does not export createHandler(ctx)`);
  }
  server.handler = await mod.createHandler(ctx);

  port.on('message', (cmd: GspWorkerCommand) => {
    void (async () => {
      try {
        let value: unknown;
        switch (cmd.op) {
          case 'inject': server.inject(cmd.fault); break;
          case 'event': server.postEvent(cmd.fn, cmd.payload, cmd.gfid !== undefined ? { gfid: cmd.gfid } : {}); break;
          case 'stats': value = server.snapshotStats(); break;
          case 'stop': await server.stop(); break;
          case 'custom':
            if (onCommand === null) throw new Error('the handler module registered no onCommand listener');
            value = await (onCommand as (d: unknown) => unknown)(cmd.data);
            break;
        }
        post({ op: 'ack', id: cmd.id, value });
        if (cmd.op === 'stop') port.close();
      } catch (e) {
        const err = e as Error;
        post({ op: 'ack', id: cmd.id, error: { message: err.message, ...(isVgpuError(e) ? { code: e.code } : {}) } });
      }
    })();
  });

  server.start();
  post({ op: 'ready' });
}

main().catch((e: unknown) => {
  const err = e as Error;
  parentPort?.postMessage({ op: 'fatal', message: err.message, ...(isVgpuError(e) ? { code: e.code } : {}) } satisfies GspWorkerMessage);
});
