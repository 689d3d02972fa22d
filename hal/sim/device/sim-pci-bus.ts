/**
 * A PciBus over simulated GSP GPUs (any generation): devices announced by descriptor files in a directory (vgpu-sim processes) and
 * devices registered in-process (worker mode). Each listing is read from the device's own config space, like a
 * real bus scan, so a test that changes the device sees the change here.
 *
 * Transport the GSP HAL (hal/gsp-gpu) reads: `{ kind: 'gsp-sim', mode: 'process', path }` or `{ kind: 'gsp-sim', mode: 'worker',
 * sab }` (the region's SharedArrayBuffer).
 */
import type { PciBus, PciDeviceInfo } from '../../../core/contracts/hal.js';
import type { Logger } from '../../../core/contracts/logger.js';
import type { SharedArena } from '../../../native/native-ops.js';
import { loadNativeOps } from '../../../native/index.js';
import { Region } from './device-layout.js';
import { readIdentity, readSriov } from './pci-config.js';
import { readHeader } from './device-region.js';
import { listDescriptors } from './sim-descriptor.js';
import { LAYOUT_MAGIC } from './device-layout.js';

export const SIM_TRANSPORT = 'gsp-sim';

export type SimTransport =
  | { kind: 'gsp-sim'; mode: 'process'; path: string }
  | { kind: 'gsp-sim'; mode: 'worker'; sab: SharedArrayBuffer };

/** Enumerate one device from its region, as a bus scan reads config space. */
export function pciInfoFromRegion(arena: SharedArena, transport: SimTransport): PciDeviceInfo {
  const header = readHeader(arena);
  const cfg = arena.window(BigInt(Region.PF_CONFIG), Region.CONFIG_SIZE);
  const id = readIdentity(cfg);
  const sriov = readSriov(cfg);
  return {
    bdf: header.bdf,
    vendorId: id.vendorId,
    deviceId: id.deviceId,
    subsystemVendorId: id.subsystemVendorId,
    subsystemId: id.subsystemId,
    classCode: id.classCode,
    revision: id.revision,
    ...(sriov !== undefined
      ? { sriov: { totalVfs: sriov.totalVfs, numVfs: sriov.numVfs, firstVfOffset: sriov.firstVfOffset, vfStride: sriov.vfStride } }
      : {}),
    transport,
  };
}

export interface SimPciBusOptions {
  /** Directories holding vgpu-sim descriptors (process mode). */
  dirs?: string[];
  logger?: Logger;
}

export class SimPciBus implements PciBus {
  readonly name = 'gsp-sim';
  private readonly dirs: string[];
  private readonly local = new Map<string, SharedArena>();
  private readonly expectedBdfs = new Set<string>();
  private readonly log: Logger | undefined;

  constructor(opts: SimPciBusOptions = {}) {
    this.dirs = [...(opts.dirs ?? [])];
    this.log = opts.logger;
  }

  /** List a worker-mode device (its region arena must be a 'sab' arena). Returns an unregister function. */
  register(arena: SharedArena): () => void {
    if (arena.sab === null) throw new TypeError('SimPciBus.register needs a SharedArrayBuffer-backed region (worker mode)');
    const bdf = readHeader(arena).bdf;
    this.local.set(bdf, arena);
    return () => {
      if (this.local.get(bdf) === arena) this.local.delete(bdf);
    };
  }

  addDir(dir: string): void {
    if (!this.dirs.includes(dir)) this.dirs.push(dir);
  }

  /** A device the config names: the daemon reports it when it does not manage it (PciBus.expected). */
  expect(bdf: string): void {
    this.expectedBdfs.add(bdf.toLowerCase());
  }

  expected(): readonly string[] {
    return [...this.expectedBdfs];
  }

  async list(): Promise<PciDeviceInfo[]> {
    const out = new Map<string, PciDeviceInfo>();
    for (const arena of this.local.values()) {
      const sab = arena.sab as SharedArrayBuffer;
      const info = pciInfoFromRegion(arena, { kind: 'gsp-sim', mode: 'worker', sab });
      out.set(info.bdf, info);
    }
    for (const dir of this.dirs) {
      const { live, stale } = listDescriptors(dir);
      if (stale.length > 0) this.log?.debug('skipping stale simulator descriptors', { dir, stale });
      for (const d of live) {
        if (out.has(d.bdf)) continue;
        let arena: SharedArena | undefined;
        try {
          arena = loadNativeOps().openArena(d.path);
          if (readHeader(arena).magic !== LAYOUT_MAGIC) continue;
          out.set(d.bdf, pciInfoFromRegion(arena, { kind: 'gsp-sim', mode: 'process', path: d.path }));
        } catch (e) {
          this.log?.warn('cannot read simulated device', { bdf: d.bdf, path: d.path, error: (e as Error).message });
        } finally {
          arena?.close();
        }
      }
    }
    return [...out.values()].sort((a, b) => a.bdf.localeCompare(b.bdf));
  }
}
