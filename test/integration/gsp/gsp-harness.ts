/** Test harness: a SAB arena, the host client, and the simulated GSP in a worker thread. */
import { fallbackOps } from '../../../native/fallback.js';
import { GspRegion } from '../../../hal/gsp/gsp-layout.js';
import { GspRpcClient, type GspRpcClientOptions } from '../../../hal/gsp/gsp-rpc-client.js';
import { startGspWorker, type GspWorkerHandle } from '../../../hal/sim/gsp/gsp-worker-host.js';
import type { SharedArena } from '../../../native/native-ops.js';
import type { TestHandlerOptions } from './fixtures/test-handler.js';
import { until as untilShared } from '../../helpers/until.js';

export const HANDLER = new URL('./fixtures/test-handler.ts', import.meta.url).pathname;

export interface Rig {
  arena: SharedArena;
  client: GspRpcClient;
  gsp: GspWorkerHandle | null;
  start(): Promise<GspWorkerHandle>;
  close(): Promise<void>;
}

export async function makeRig(opts: {
  handler?: TestHandlerOptions;
  client?: Omit<GspRpcClientOptions, 'arena'>;
  heartbeatMs?: number;
  /** The simulated firmware's look-before-sleep budget, µs (hal/sim/gsp/firmware-spin.ts). */
  firmwareSpinUs?: number;
  startGsp?: boolean;
} = {}): Promise<Rig> {
  // Base at one page in, so nothing silently assumes the region starts at arena offset 0.
  const arena = fallbackOps.createArena({ size: BigInt(GspRegion.SIZE + 0x2000), backing: 'sab' });
  const base = 0x1000n;
  const client = new GspRpcClient({ arena, base, timeoutMs: 5000, ...opts.client });
  const rig: Rig = {
    arena,
    client,
    gsp: null,
    async start() {
      rig.gsp = await startGspWorker({
        arena, base, handlerModule: HANDLER, handlerOptions: opts.handler ?? {},
        ...(opts.heartbeatMs !== undefined ? { heartbeatMs: opts.heartbeatMs } : {}),
        ...(opts.firmwareSpinUs !== undefined ? { firmwareSpinUs: opts.firmwareSpinUs } : {}),
      });
      await client.waitReady(5000);
      return rig.gsp;
    },
    async close() {
      await client.close();
      await rig.gsp?.terminate();
    },
  };
  if (opts.startGsp ?? true) await rig.start();
  return rig;
}

export function pattern(len: number, seed: number): Uint8Array {
  const b = new Uint8Array(len);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < len; i++) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    b[i] = x & 0xff;
  }
  return b;
}

/** Poll `cond` until true (test/helpers/until.ts: the guard is against hanging, not a time limit). */
export async function until(cond: () => boolean | Promise<boolean>): Promise<void> {
  await untilShared('the condition', cond);
}
