/**
 * The Hopper (GH100) boards this HAL drives for vGPU: one row per PF PCI device id, with the facts the HAL and the
 * simulated device need. docs/reference/hopper-chips.md lists every fact with its public source.
 *
 * Every fact carries a `source:` comment; [unverified] marks a value no public source in reach confirmed (a
 * documented choice of the simulator, not a claim about the silicon).
 * Source keys: OGKM-README = NVIDIA/open-gpu-kernel-modules `README.md` "Compatible GPUs" table (device,
 * subsystem-vendor, subsystem-device per row); NVAIE-HOPPER = NVIDIA AI Enterprise "Hopper Architecture vGPU Types"
 * (https://docs.nvidia.com/ai-enterprise/release-7/latest/infra-software/vgpu/reference/hopper.html).
 */
import { siblingModule } from '../../core/runtime/module-entry.js';
import { createBoardTable } from '../sim/board/board-table.js';
import { NV2080_ENGINE_TYPE, NVIDIA_VENDOR_ID, type BarSizes, type SimBoard } from '../sim/board/sim-board.js';

/** HOPPER_DMA_COPY_A. source: nouveau nvkm/subdev/gsp/rm/gh100.c (`.ce.class = HOPPER_DMA_COPY_A`); class number
 *  0xc8b5 per NVIDIA's class naming (clc8b5.h) [inferred from the header name]. */
export const HOPPER_COPY_ENGINE_CLASS = 0xc8b5;

/** GSP-RM build the upstream vGPU series (and the shared metadata file, vgpu-570.144.bin) requires. Hopper vGPU
 *  exists in every r570 release (NVAIE-HOPPER lists time-sliced types), so the floor is the series' own. */
export const HOPPER_FIRMWARE_FLOOR = '570.144';

/** NV_PMC_BOOT_0 architecture field of Hopper. source: nova-core drivers/gpu/nova-core/gpu.rs `Hopper = 0x18`. */
export const HOPPER_ARCHITECTURE = 0x18;

/** Implementation field of GH100. source: nova-core gpu.rs Chipset `GH100 = 0x180` (architecture 0x18, implementation 0). */
export const GH100_IMPLEMENTATION = 0x0;

export interface HopperBoard extends SimBoard {
  readonly chip: 'GH100';
}

const GiB = 1n << 30n;
const MiB = 1n << 20n;
const E = NV2080_ENGINE_TYPE;

/**
 * GH100 engines: 1 GR (compute; Hopper has no display engine and its vGPU types are all compute "C" types), copy
 * engines, 7 NVDEC, 7 NVJPG, no NVENC, 1 OFA. source: nouveau gh100.c lists ce, gr (HOPPER_COMPUTE_A), nvdec
 * (NVB8B0), nvjpg (NVB8D1), ofa (NVB8FA) and no nvenc/disp; NVIDIA H100 datasheet "7 NVDEC, 7 JPEG". The number of
 * copy engines (10) is [unverified].
 */
const GH100_ENGINES: readonly number[] = [
  E.GR0, E.COPY0, E.COPY1, E.COPY2, E.COPY3, E.COPY4, E.COPY5, E.COPY6, E.COPY7, E.COPY8, E.COPY9,
  E.NVDEC0, E.NVDEC1, E.NVDEC2, E.NVDEC3, E.NVDEC4, E.NVDEC5, E.NVDEC6,
  E.NVJPG0, E.NVJPG1, E.NVJPG2, E.NVJPG3, E.NVJPG4, E.NVJPG5, E.NVJPG6, E.OFA0,
];

/** Fields shared by every Hopper board of the table. */
const COMMON = {
  chip: 'GH100',
  architecture: HOPPER_ARCHITECTURE,
  implementation: GH100_IMPLEMENTATION,
  vendorId: NVIDIA_VENDOR_ID,
  subsystemVendorId: NVIDIA_VENDOR_ID, // source: OGKM-README lists 10DE subsystems for every row used here
  revision: 0xa1, // [unverified] A1 stepping, as the simulator assumes for Ada
  // [unverified] 32 VFs: NVA081_MAX_VGPU_PER_PGPU is 32, and NVAIE-HOPPER's densest type (H200-4C) allows 32 per GPU.
  totalVfs: 32,
  firstVfOffset: 4, // [unverified] as Ada's boards (VF 0 at function 4)
  vfStride: 1, // [unverified]
  engines: GH100_ENGINES,
  // [unverified] 2048 CHIDs for vGPUs, as on Ada: no public source gives Hopper's host channel count.
  channelCount: 2048,
  copyEngineClass: HOPPER_COPY_ENGINE_CLASS,
  firmwareFloor: HOPPER_FIRMWARE_FLOOR,
  // [unverified] one of the legal answers 32…512 MiB; 64 MiB as on Ada (metadata/hopper.yaml uses the same).
  vmmuSegmentSize: 64n * MiB,
  // source: every H100/H200/H20 datasheet lists HBM with ECC; datacenter HBM boards run with ECC on [inferred].
  eccSupported: true,
  eccEnabledDefault: true,
  // [unverified] BAR0 16 MiB register window as the PF; BAR1 large enough for the biggest C type's profile; BAR3 32 MiB.
  vfBars: { bar0: 16n * MiB, bar1: 128n * GiB, bar3: 32n * MiB },
} as const;

/** PF BARs [unverified]: BAR0 16 MiB (as every NVIDIA datacenter board in public lspci), BAR1 large (resizable BAR
 *  sized to the HBM, rounded up to a power of two), BAR3 32 MiB. */
const pfBars = (bar1: bigint): BarSizes => ({ bar0: 16n * MiB, bar1, bar3: 32n * MiB });

export const HOPPER_BOARDS: readonly HopperBoard[] = [
  {
    ...COMMON,
    key: 'h100-pcie',
    name: 'NVIDIA H100 PCIe',
    deviceId: 0x2331, // source: OGKM-README "NVIDIA H100 PCIe 2331 10DE 1626"
    subsystemId: 0x1626, // source: OGKM-README
    vfDeviceId: 0x2331, // [unverified] VFs carry the PF id
    fbBytes: 80n * GiB, // source: NVIDIA H100 datasheet "80GB" (PCIe); NVAIE-HOPPER "NVIDIA H100 PCIe 80GB"
    pfBars: pfBars(128n * GiB),
  },
  {
    ...COMMON,
    key: 'h100-nvl',
    name: 'NVIDIA H100 NVL',
    deviceId: 0x2321, // source: OGKM-README "NVIDIA H100 NVL 2321 10DE 1839"
    subsystemId: 0x1839, // source: OGKM-README
    vfDeviceId: 0x2321, // [unverified]
    fbBytes: 94n * GiB, // source: NVIDIA H100 NVL product brief "94GB"; NVAIE-HOPPER "NVIDIA H100 PCIe 94GB (H100 NVL)"
    pfBars: pfBars(128n * GiB),
  },
  {
    ...COMMON,
    key: 'h100-sxm',
    name: 'NVIDIA H100 80GB HBM3',
    deviceId: 0x2330, // source: OGKM-README "NVIDIA H100 80GB HBM3 2330 10DE 16C0 / 16C1"
    subsystemId: 0x16c1, // source: OGKM-README (the second of the two listed subsystems)
    vfDeviceId: 0x2330, // [unverified]
    fbBytes: 80n * GiB, // source: NVIDIA H100 datasheet "80GB" (SXM); NVAIE-HOPPER "NVIDIA H100 SXM5 80GB"
    pfBars: pfBars(128n * GiB),
  },
  {
    ...COMMON,
    key: 'h200',
    name: 'NVIDIA H200',
    deviceId: 0x2335, // source: OGKM-README "NVIDIA H200 2335 10DE 18BE / 18BF"
    subsystemId: 0x18be, // source: OGKM-README
    vfDeviceId: 0x2335, // [unverified]
    fbBytes: 141n * GiB, // source: NVIDIA H200 product page "141GB HBM3e"; NVAIE-HOPPER "NVIDIA H200 SXM5 141GB"
    pfBars: pfBars(256n * GiB),
  },
  {
    ...COMMON,
    key: 'h200-nvl',
    name: 'NVIDIA H200 NVL',
    deviceId: 0x233b, // source: OGKM-README "NVIDIA H200 NVL 233B 10DE 1996"
    subsystemId: 0x1996, // source: OGKM-README
    vfDeviceId: 0x233b, // [unverified]
    fbBytes: 141n * GiB, // source: NVAIE-HOPPER "NVIDIA H200 PCIe 141GB (H200 NVL)"
    pfBars: pfBars(256n * GiB),
  },
  {
    ...COMMON,
    key: 'h20',
    name: 'NVIDIA H20',
    deviceId: 0x2329, // source: OGKM-README "NVIDIA H20 2329 10DE 198B / 198C"
    subsystemId: 0x198b, // source: OGKM-README
    vfDeviceId: 0x2329, // [unverified]
    fbBytes: 96n * GiB, // source: NVAIE-HOPPER "NVIDIA H20 SXM5 96GB"
    pfBars: pfBars(128n * GiB),
  },
];

/** The Hopper boards for the generation-neutral simulator and GSP HAL; process mode runs ./sim/vgpu-sim.ts. */
export const HOPPER_BOARD_TABLE = createBoardTable('Hopper', HOPPER_BOARDS, siblingModule(import.meta.url, './sim/vgpu-sim'));
