/**
 * Set-up of the lifecycle tests on the SIMULATED Ada GPU: a simulated RTX 6000 Ada (worker mode by default: SAB
 * region, GSP-RM on a worker thread; process mode when a test needs the board's full 48 GiB FB), booted through the
 * Ada HAL, a PgpuManager over the default metadata and a GpuLifecycle with short timeouts.
 *
 * `books()` reads what the simulator and the HAL hold — RM clients alive in GSP-RM, the plugin task of each gfid,
 * FB ranges, CHID ranges, FB stats, placement slots — so a test can compare it with the books right after the
 * manager came up (`baseline`: only the manager's RM client).
 */
import 'reflect-metadata';
import { dirname } from 'node:path';
import { EventBusImpl } from '../../../core/event-bus.js';
import { ExceptionRelayImpl } from '../../../core/exception-relay.js';
import type { PhysicalGpu } from '../../../core/contracts/hal.js';
import type { FbStats, HostMapping } from '../../../core/contracts/memory.js';
import { MemoryLogger } from '../../../core/logging/memory-logger.js';
import type { LogLevel } from '../../../core/contracts/logger.js';
import { PgpuManager } from '../../../core/manager/pgpu-manager.js';
import type { VgpuPolicy } from '../../../core/manager/type-policy.js';
import type { VgpuTypeRecord } from '../../../core/metadata/metadata-file.js';
import { AdaHal } from '../../../hal/ada-lovelace/ada-hal.js';
import { startSimDevice, type SimDeviceHandle } from '../../../hal/ada-lovelace/sim/start-sim-device.js';
import { ensureDefaultMetadata } from '../../../metadata/default-metadata.js';
import type { LifecycleTimeouts } from '../../../plugins/lifecycle/create-steps.js';
import { GpuLifecycle } from '../../../plugins/lifecycle/gpu-lifecycle.js';
import { resolveType } from '../../../plugins/lifecycle/type-catalog.js';
import { RPC_GUARD_MS } from '../../helpers/guard-timeouts.js';

export const GiB = 1n << 30n;

export interface SimRigOptions {
  bdf: string;
  mode?: 'worker' | 'process';
  /** Simulated FB (default: 8 GiB in worker mode, the board's 48 GiB in process mode). */
  fbBytes?: bigint;
  /** Process mode: directory of the device file. */
  dir?: string;
  policy?: VgpuPolicy;
  timeouts?: Partial<LifecycleTimeouts>;
  /** Wrap the GPU the lifecycle sees (a test's host-side fault, e.g. a corrupting heap mapping). */
  wrapGpu?: (gpu: PhysicalGpu) => PhysicalGpu;
  logLevel?: LogLevel;
}

/** Resources held, as the simulator's GSP-RM and the HAL's allocators see them. */
export interface SimBooks {
  rmClients: number;
  /** gfids 1..N (N = the VFs the test used) with a plugin task in GSP-RM, and its state. */
  tasks: Array<[number, 'running' | 'shutdown']>;
  fbRanges: Array<{ label: string; owner: string; offset: bigint; size: bigint }>;
  chidRanges: Array<{ owner: string; offset: number; count: number }>;
  fb: FbStats;
  usedSlots: number;
}

export interface SimRig {
  dev: SimDeviceHandle;
  /** The GPU as opened (the lifecycle may see a wrapped one: `lc.gpu`). */
  gpu: PhysicalGpu;
  mgr: PgpuManager;
  lc: GpuLifecycle;
  bus: EventBusImpl;
  logger: MemoryLogger;
  baseline: SimBooks;
  books(gfids?: number): Promise<SimBooks>;
  /** Type by short name ('4Q', '24Q') from the installed catalogue. */
  type(short: string): VgpuTypeRecord;
  stop(): Promise<void>;
}

/** Gfids whose plugin-task state the books report by default (the tests use VFs 0..7). */
const BOOK_GFIDS = 8;

export async function simRig(o: SimRigOptions): Promise<SimRig> {
  const mode = o.mode ?? 'worker';
  const dev = await startSimDevice({
    board: 'rtx6000-ada', bdf: o.bdf, mode, fbBytes: o.fbBytes ?? (mode === 'worker' ? 8n * GiB : 48n * GiB),
    ...(o.dir !== undefined ? { dir: o.dir } : {}),
  });
  const logger = new MemoryLogger({ level: o.logLevel ?? 'info' });
  let gpu: PhysicalGpu | undefined;
  try {
    gpu = await new AdaHal().open(dev.pciInfo(), { logger, rpcTimeoutMs: RPC_GUARD_MS });
    await gpu.firmware.boot({ version: '570.144', source: 'test' });
    const mgr = await PgpuManager.create({ gpu, logger, metadataDir: dirname(ensureDefaultMetadata()), policy: o.policy ?? 'heterogeneous' });
    const bus = new EventBusImpl(logger);
    let n = 0;
    const lc = new GpuLifecycle({
      gpu: o.wrapGpu?.(gpu) ?? gpu, mgr, bus, relay: new ExceptionRelayImpl(bus, logger), logger,
      // No scrubber here on purpose: these tests count the firmware calls and FB ranges of the create/destroy
      // steps themselves (the scrub is tested in test/integration/scrub and wired in test/e2e/scrub-wired).
      allowUnscrubbedFb: true,
      timeouts: { rpcMs: RPC_GUARD_MS, bootloadMs: RPC_GUARD_MS, mailboxMs: RPC_GUARD_MS, scrubMs: RPC_GUARD_MS, pollIntervalMs: 1, ...o.timeouts },
      newId: () => `vgpu-${++n}`,
    });
    lc.start();
    const g = gpu;
    const books = async (gfids = BOOK_GFIDS): Promise<SimBooks> => {
      const tasks: SimBooks['tasks'] = [];
      for (let gfid = 1; gfid <= gfids; gfid++) {
        const s = await dev.controls.pluginTask(gfid);
        if (s !== null) tasks.push([gfid, s]);
      }
      return {
        rmClients: await dev.controls.rmClients(),
        tasks,
        fbRanges: g.memory.list().map((r) => ({ label: r.label, owner: r.owner, offset: r.offset, size: r.size })),
        chidRanges: g.channels.list().map((c) => ({ owner: c.owner, offset: c.offset, count: c.count })),
        fb: g.memory.stats(),
        usedSlots: mgr.policy.placementStats().usedSlots,
      };
    };
    const baseline = await books();
    return {
      dev, gpu, mgr, lc, bus, logger, baseline, books,
      type: (short) => resolveType(mgr.policy.types, short, g.bdf),
      stop: async () => {
        lc.detach();
        await g.close().catch(() => undefined);
        await dev.stop();
      },
    };
  } catch (e) {
    await gpu?.close().catch(() => undefined);
    await dev.stop();
    throw e;
  }
}

/**
 * The GPU with its heap mappings passed through `onWrite`, which may change the bytes the host writes into the
 * mailbox (offsets are from the start of the mgmt heap). Everything else is the GPU itself.
 */
export function interceptHeapWrites(gpu: PhysicalGpu, onWrite: (offset: number, data: Uint8Array) => Uint8Array): PhysicalGpu {
  const memory = new Proxy(gpu.memory, {
    get(target, prop, _recv) {
      if (prop === 'map') {
        return (...args: Parameters<typeof target.map>): HostMapping => {
          const m = target.map(...args);
          return new Proxy(m, {
            get(mt, p) {
              if (p === 'write') return (offset: number, data: Uint8Array) => mt.write(offset, onWrite(offset, data));
              const v = Reflect.get(mt, p, mt) as unknown;
              return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(mt) : v;
            },
          });
        };
      }
      const v = Reflect.get(target, prop, target) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
  return new Proxy(gpu, {
    get(target, prop) {
      if (prop === 'memory') return memory;
      const v = Reflect.get(target, prop, target) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

/** Poll `f` until it returns something other than undefined (test/helpers/until.ts). */
export { until } from '../../helpers/until.js';
