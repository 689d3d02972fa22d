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
import { VgpuServiceImpl } from '../../../plugins/lifecycle/vgpu-service-impl.js';
import { MigrationService } from '../../../plugins/migration/migration-service.js';

const GiB = 1n << 30n;

export interface Daemon {
  svc: VgpuServiceImpl;
  mig: MigrationService;
  logger: MemoryLogger;
}

export interface SimGpu {
  dev: SimDeviceHandle;
  gpu: PhysicalGpu;
  mgr: PgpuManager;
}

export async function startGpu(bdf: string, fbGiB = 8n): Promise<SimGpu> {
  const dev = await startSimDevice({ board: 'rtx6000-ada', bdf, mode: 'worker', fbBytes: fbGiB * GiB });
  const logger = new MemoryLogger();
  const gpu = await new AdaHal().open(dev.pciInfo(), { logger, rpcTimeoutMs: 5000 });
  await gpu.firmware.boot({ version: '570.144', source: 'test' });
  const mgr = await PgpuManager.create({ gpu, logger, metadataDir: dirname(ensureDefaultMetadata()), policy: 'heterogeneous' });
  return { dev, gpu, mgr };
}

export function daemon(gpus: SimGpu[], name: string): Daemon {
  const logger = new MemoryLogger({ level: 'info' });
  const bus = new EventBusImpl(logger);
  const config = configSchema.parse({ timeouts: { rpcMs: 5000, bootloadMs: 3000, scrubMs: 10000 } });
  const svc = new VgpuServiceImpl(null as never, bus, new ExceptionRelayImpl(bus, logger), logger, config, undefined);
  let n = 0;
  for (const g of gpus) {
    const lc = svc.attach(g.gpu, g.mgr);
    void lc;
  }
  void n;
  void name;
  return { svc, mig: new MigrationService(svc, logger, loadNativeOps()), logger };
}

export async function stopGpu(g: SimGpu | undefined): Promise<void> {
  if (g === undefined) return;
  await g.gpu.close().catch(() => undefined);
  await g.dev.stop().catch(() => undefined);
}
