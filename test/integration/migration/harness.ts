/**
 * Two "daemons" on simulated RTX 6000 Ada GPUs (worker mode, 8 GiB FB each): each a VgpuServiceImpl with one GPU
 * and a MigrationService over it. Same-daemon tests attach both GPUs to daemon A.
 */
import 'reflect-metadata';
import { dirname } from 'node:path';
import { EventBusImpl } from '../../../core/event-bus.js';
import { ExceptionRelayImpl } from '../../../core/exception-relay.js';
import { configSchema } from '../../../core/config/config-schema.js';
import type { PhysicalGpu } from '../../../core/contracts/hal.js';
import { MemoryLogger } from '../../../core/logging/memory-logger.js';
import { PgpuManager } from '../../../core/manager/pgpu-manager.js';
import { AdaHal } from '../../../hal/ada-lovelace/ada-hal.js';
import { startSimDevice, type SimDeviceHandle } from '../../../hal/ada-lovelace/sim/start-sim-device.js';
import { ensureDefaultMetadata } from '../../../metadata/default-metadata.js';
import { loadNativeOps } from '../../../native/index.js';
import { LifecycleDeviceAccess } from '../../../plugins/lifecycle/lifecycle-device-access.js';
import { VgpuServiceImpl } from '../../../plugins/lifecycle/vgpu-service-impl.js';
import { MigrationService } from '../../../plugins/migration/migration-service.js';
import type { VgpuMigrationDevice } from '../../../plugins/migration/vgpu-device.js';
import { decodeContextImage } from '../../../hal/sim/device/plugin-task-context.js';
import { RPC_GUARD_MS } from '../../helpers/guard-timeouts.js';

const GiB = 1n << 30n;

/** A downtime limit that cannot bind (test/helpers/guard-timeouts.ts says why). */
export { NO_DOWNTIME_LIMIT_MS } from '../../helpers/guard-timeouts.js';

export interface Daemon {
  svc: VgpuServiceImpl;
  mig: MigrationService;
  logger: MemoryLogger;
  bus: EventBusImpl;
}

export interface SimGpu {
  dev: SimDeviceHandle;
  gpu: PhysicalGpu;
  mgr: PgpuManager;
}

export async function startGpu(bdf: string, fbGiB = 8n): Promise<SimGpu> {
  const dev = await startSimDevice({ board: 'rtx6000-ada', bdf, mode: 'worker', fbBytes: fbGiB * GiB });
  const logger = new MemoryLogger();
  const gpu = await new AdaHal().open(dev.pciInfo(), { logger, rpcTimeoutMs: RPC_GUARD_MS });
  await gpu.firmware.boot({ version: '570.144', source: 'test' });
  const mgr = await PgpuManager.create({ gpu, logger, metadataDir: dirname(ensureDefaultMetadata()), policy: 'heterogeneous' });
  return { dev, gpu, mgr };
}

export function daemon(gpus: SimGpu[], name: string): Daemon {
  const logger = new MemoryLogger({ level: 'info' });
  const bus = new EventBusImpl(logger);
  const config = configSchema.parse({ timeouts: { rpcMs: RPC_GUARD_MS, bootloadMs: RPC_GUARD_MS, scrubMs: RPC_GUARD_MS } });
  const svc = new VgpuServiceImpl(null as never, bus, new ExceptionRelayImpl(bus, logger), logger, config, undefined);
  // No scrubber on purpose: a failed migration must zero the destination FB by itself, and a lifecycle scrub at
  // the destroy that follows would hide it if it did not.
  svc.configure({ allowUnscrubbedFb: true });
  for (const g of gpus) svc.attach(g.gpu, g.mgr);
  void name;
  return { svc, mig: new MigrationService(svc, new LifecycleDeviceAccess(svc), logger, loadNativeOps()), logger, bus };
}

export async function stopGpu(g: SimGpu | undefined): Promise<void> {
  if (g === undefined) return;
  await g.gpu.close().catch(() => undefined);
  await g.dev.stop().catch(() => undefined);
}

// ---- helpers shared by the vgpu-migration-*.test.ts files ----

/** The migration device of a vGPU (its FB region, its firmware client). */
export const devOf = (d: Daemon, id: string): VgpuMigrationDevice => d.mig.device(id).device as VgpuMigrationDevice;

/** Per-page hashes of a vGPU's whole FB: equal hashes = equal FB, page for page. */
export async function fbHash(d: Daemon, id: string): Promise<Buffer> {
  const r = devOf(d, id).region();
  return Buffer.from((await r.hashPages(0n, r.size, 4096)).buffer);
}

/** The firmware context the plugin task holds, via a save through the migration buffer (device must be stopped). */
export async function savedContext(d: Daemon, id: string): Promise<ReturnType<typeof decodeContextImage>['ctx']> {
  const fw = devOf(d, id).firmware;
  await fw.cancel(); // a source that completed its save still holds it: forget it first (CANCEL_SAVE)
  const parts: Uint8Array[] = [];
  for await (const c of fw.save()) parts.push(c);
  await fw.cancel();
  return decodeContextImage(Buffer.concat(parts)).ctx;
}

/** A few MiB of recognisable data spread over the FB (the rest stays zero: the zero-page path runs too). */
export function fill(d: Daemon, id: string, seed: number): void {
  const r = devOf(d, id).region();
  for (let i = 0; i < 64; i++) r.window(BigInt(i) * (r.size / 64n), 65536).fill((seed + i) & 0xff || 1);
}

/** A running 1Q vGPU on `gpu` whose firmware context differs from a fresh one (BME on changes it). */
export async function makeSource(d: Daemon, gpu: SimGpu, vf: number): Promise<string> {
  const info = await d.svc.create({ gpu: gpu.gpu.bdf, type: '1Q', vf });
  await d.svc.setBme(info.id, true);
  return info.id;
}

/** Forget and destroy a vGPU (end of a test). */
export async function dispose(d: Daemon, id: string): Promise<void> {
  d.mig.forget(id);
  await d.svc.destroy(id, { force: true });
}

/** Resolves once daemon `d` has no vGPU left (at once if it has none), on its bus events, no clock involved. */
export function noVgpusLeft(d: Daemon): Promise<void> {
  return new Promise((resolve) => {
    const check = (): void => {
      if (d.svc.list().length > 0) return;
      off();
      resolve();
    };
    const off = d.bus.on('vgpu:state', check);
    check();
  });
}
