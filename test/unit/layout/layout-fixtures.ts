/**
 * Snapshots of hosts with several boards for the layout tests, written by hand from the VgpuService contract: an
 * RTX 6000 Ada (0x26B1) at 0000:41:00.0, an L40S (0x26B9) at 0000:81:00.0 and a second RTX 6000 Ada with another
 * subsystem id at 0000:c1:00.0 (addresses deliberately not in index order of insertion).
 */
import type { GpuSummary, VgpuInfo, VgpuTypeInfo } from '../../../core/contracts/vgpu-service.js';
import type { LayoutSnapshot } from '../../../core/layout/layout-snapshot.js';

const GiB = 1n << 30n;

function gpu(bdf: string, deviceId: number, subsystem: number, name: string): GpuSummary {
  return {
    bdf, name, halId: 'test', pciDeviceId: deviceId, pciVendorId: 0x10de, pciSubsystem: { vendorId: 0x10de, deviceId: subsystem },
    firmwareVersion: '570.144', state: 'ready', policy: 'heterogeneous', totalVfs: 32,
    fb: { total: 48n * GiB, used: 0n, free: 48n * GiB, stranded: 0n, largestFree: 48n * GiB }, vgpus: 0,
  };
}

function types(board: string, first: number): VgpuTypeInfo[] {
  return [[4, 12], [8, 6], [24, 2], [48, 1]].map(([gb, max], i) => ({
    id: first + i, name: `NVIDIA ${board}-${gb}Q`, series: 'Q', fbBytes: BigInt(gb!) * GiB,
    profileFbBytes: BigInt(gb!) * GiB, guestFbBytes: BigInt(gb!) * GiB, maxInstances: max!,
    heads: 4, maxResolution: '7680x4320', available: max!,
  }));
}

export const ADA_A = '0000:41:00.0';
export const L40S = '0000:81:00.0';
export const ADA_B = '0000:c1:00.0';

/** Three GPUs, no vGPUs. `index` is left to the layout code (rank by address) unless given. */
export function threeBoards(opts: { vgpus?: VgpuInfo[]; index?: Record<string, number> } = {}): LayoutSnapshot {
  const gpus = [
    gpu(L40S, 0x26b9, 0x1851, 'NVIDIA L40S'),
    gpu(ADA_B, 0x26b1, 0x17fa, 'NVIDIA RTX 6000 Ada Generation'),
    gpu(ADA_A, 0x26b1, 0x16a1, 'NVIDIA RTX 6000 Ada Generation'),
  ].map((g) => (opts.index?.[g.bdf] !== undefined ? { ...g, index: opts.index[g.bdf]! } : g));
  return {
    gpus,
    vgpus: opts.vgpus ?? [],
    types: new Map([[ADA_A, types('RTX6000-Ada', 100)], [ADA_B, types('RTX6000-Ada', 100)], [L40S, types('L40S', 200)]]),
  };
}

/** Desired layout as sorted "gpu: type×count" strings, easy to compare. */
export function desiredText(desired: Map<string, Map<number, number>>): string[] {
  return [...desired].flatMap(([g, counts]) => [...counts].filter(([, n]) => n > 0).map(([t, n]) => `${g}: ${t}×${n}`)).sort();
}
