/**
 * A bench "daemon": one simulated Ada GPU in process mode (a vgpu-sim child, its region a sparse file under `dir`
 * in /dev/shm) opened through the HAL, a VgpuServiceImpl over it and a MigrationService — the objects the real
 * daemon wires, so a migration runs the same code `vgpuctl migrate` reaches through the API. Built by hand (no
 * plugin host) like test/integration/migration/harness.ts.
 */
import 'reflect-metadata';
import { dirname } from 'node:path';
import { EventBusImpl } from '../../core/event-bus.js';
import { ExceptionRelayImpl } from '../../core/exception-relay.js';
import { configSchema } from '../../core/config/config-schema.js';
import type { PhysicalGpu } from '../../core/contracts/hal.js';
import { MemoryLogger } from '../../core/logging/memory-logger.js';
import { PgpuManager } from '../../core/manager/pgpu-manager.js';
import type { VgpuPolicy } from '../../core/manager/type-policy.js';
import { AdaHal } from '../../hal/ada-lovelace/ada-hal.js';
import { startSimDevice, type SimDeviceHandle } from '../../hal/ada-lovelace/sim/start-sim-device.js';
import { ensureDefaultMetadata } from '../../metadata/default-metadata.js';
import { loadNativeOps } from '../../native/index.js';
import { VgpuServiceImpl } from '../../plugins/lifecycle/vgpu-service-impl.js';
import { LifecycleDeviceAccess } from '../../plugins/lifecycle/lifecycle-device-access.js';
import { MigrationService } from '../../plugins/migration/migration-service.js';
import type { VgpuMigrationDevice } from '../../plugins/migration/vgpu-device.js';
import type { FbRegion } from '../../plugins/migration/fb-region.js';

export interface SimDaemon {
  dev: SimDeviceHandle;
  gpu: PhysicalGpu;
  svc: VgpuServiceImpl;
  mig: MigrationService;
  logger: MemoryLogger;
  bus: EventBusImpl;
  stop(): Promise<void>;
}

/**
 * Start the GPU (sparse FB of `fbBytes`) and the services over it, the GPU in `policy` (default heterogeneous:
 * NVIDIA's mixed-size mode, whose maxima are lower for some types — docs/vgpu-types.md).
 */
export async function startSimDaemon(o: { bdf: string; dir: string; fbBytes: bigint; board?: string; policy?: VgpuPolicy }): Promise<SimDaemon> {
  const dev = await startSimDevice({ board: o.board ?? 'rtx6000-ada', bdf: o.bdf, mode: 'process', dir: o.dir, fbBytes: o.fbBytes });
  const logger = new MemoryLogger({ level: 'warn' });
  try {
    const gpu = await new AdaHal().open(dev.pciInfo(), { logger, rpcTimeoutMs: 10_000 });
    await gpu.firmware.boot({ version: '570.144', source: 'bench' });
    const mgr = await PgpuManager.create({ gpu, logger, metadataDir: dirname(ensureDefaultMetadata()), policy: o.policy ?? 'heterogeneous' });
    const bus = new EventBusImpl(logger);
    const config = configSchema.parse({ timeouts: { rpcMs: 10_000, bootloadMs: 5000, scrubMs: 60_000 } });
    const svc = new VgpuServiceImpl(null as never, bus, new ExceptionRelayImpl(bus, logger), logger, config, undefined);
    // No scrubber: the benchmark pre-faults FB pages and needs them to stay backed across create/destroy (touchFb).
    svc.configure({ allowUnscrubbedFb: true });
    svc.attach(gpu, mgr);
    const mig = new MigrationService(svc, new LifecycleDeviceAccess(svc), logger, loadNativeOps());
    return {
      dev, gpu, svc, mig, logger, bus,
      stop: async () => {
        await mig.close().catch(() => undefined);
        for (const v of svc.list()) { mig.forget(v.id); await svc.destroy(v.id, { force: true }).catch(() => undefined); }
        await gpu.close().catch(() => undefined);
        await dev.stop().catch(() => undefined);
      },
    };
  } catch (e) {
    await dev.stop().catch(() => undefined);
    throw e;
  }
}

/** The migration device of a vGPU: its FB region and lifecycle record. */
export const migDevice = (d: SimDaemon, id: string): VgpuMigrationDevice => d.mig.device(id).device as VgpuMigrationDevice;

/** Where a vGPU's guest FB lives in the sim's region file (so a guest-writer worker or a fill can open it). */
export function fbLocation(d: SimDaemon, id: string): { path: string; base: bigint; size: bigint } {
  const fb = migDevice(d, id).vgpu.guestFb!;
  const path = d.dev.descriptor.path;
  if (path === null) throw new Error('bench needs a process-mode simulator (file region)');
  return { path, base: d.dev.fbOffset + fb.offset, size: fb.size };
}

/**
 * Write a 32-bit pattern over the first `bytes` of a vGPU's FB THROUGH ITS FB MAPPING (the HAL's one mmap of the
 * simulator's region file, which every mapping of that GPU shares). A real GPU's VRAM has no first-touch page
 * faults; the simulator's sparse file does, twice: the kernel zeroing a fresh page, and a write fault per 4 KiB page
 * of each mmap that never touched it. Touching through the mapping the migration code uses leaves both done, for
 * the floor and the migration alike (a fill through another mmap of the file would leave the second).
 */
export function touchFb(region: FbRegion, bytes: bigint, pattern: number): void {
  const pat = Buffer.alloc(4);
  pat.writeUInt32LE(pattern >>> 0);
  for (let off = 0n; off < bytes; off += 1n << 30n) {
    const n = bytes - off < 1n << 30n ? bytes - off : 1n << 30n;
    region.window(off, Number(n)).fill(pat);
  }
}
