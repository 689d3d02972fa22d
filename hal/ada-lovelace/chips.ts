/**
 * The Ada Lovelace boards this HAL drives for vGPU: one row per PF PCI device id, with the facts the HAL and the
 * device simulator both need (ids, FB, SR-IOV, BARs, engines, firmware floor).
 *
 * Every fact carries a `source:` comment. [unverified] marks a number no public source in reach confirmed; such a
 * number is a documented choice of the simulator, not a claim about the silicon.
 * Source keys: OGKM-README = NVIDIA/open-gpu-kernel-modules `README.md` "Compatible GPUs" table (checked against the
 * 560.31.02 copy: device, subsystem-vendor, subsystem-device per row); pci.ids = the PCI ID database (Debian
 * pci.ids 2023.04.10 has 26b1/26b5 "AD102GL", 27b8 "AD104GL [L4]"; newer copies quoted in public code add 26b2
 * "AD102GL [RTX 5000 Ada Generation]" and 26b9 "AD102GL [L40S]").
 */

/** NVIDIA's PCI vendor id (docs/reference/ada-chips.md). */
export const NVIDIA_VENDOR_ID = 0x10de;

/** 3D controller class code: what an Ada datacenter PF and every VF report (docs/reference/ada-chips.md). */
export const CLASS_3D_CONTROLLER = 0x030200;

/**
 * NV2080 engine-type indices (RM_ENGINE_TYPE / NV2080_ENGINE_TYPE_*).
 * source: open-gpu-kernel-modules 570.144 ctrl2080gpu.h excerpt as vendored by nouveau r570 (nvrm/gr.h…),
 * cross-checked with cl2080_notification.h (GRAPHICS 1, COPY0 9, NVDEC0 0x13, NVENC0 0x1b, NVJPG 0x2b, OFA 0x33).
 */
export const NV2080_ENGINE_TYPE = {
  GR0: 0x01,
  COPY0: 0x09,
  COPY1: 0x0a,
  COPY2: 0x0b,
  COPY3: 0x0c,
  COPY4: 0x0d,
  COPY5: 0x0e,
  NVDEC0: 0x13,
  NVDEC1: 0x14,
  NVDEC2: 0x15,
  NVDEC3: 0x16,
  NVENC0: 0x1b,
  NVENC1: 0x1c,
  NVENC2: 0x1d,
  SEC2: 0x26,
  NVJPG0: 0x2b,
  NVJPG1: 0x2c,
  NVJPG2: 0x2d,
  NVJPG3: 0x2e,
  OFA0: 0x33,
  /**
   * NV2080_ENGINE_TYPE_LAST in 570 (0x3e in 535); source: zhiwang-nvidia/linux
   * `drivers/vfio/pci/nvidia-vgpu/include/nvrm/bootload.h` (docs/reference/ada-chips.md).
   */
  LAST: 0x54,
} as const;

/**
 * Bytes of the engine bitmap: one bit per engine type below LAST, rounded up to 8 bytes (the RFC's manager aligns it
 * to 8).
 */
export const ENGINE_BITMAP_BYTES = Math.ceil(Math.ceil(NV2080_ENGINE_TYPE.LAST / 8) / 8) * 8;

/** AMPERE_DMA_COPY_B. source: clc7b5.h (class 0xc7b5); Ada CEs expose it (tinygrad ops_nv and nouveau ga102/ad102
 *  ce both pick AMPERE_DMA_COPY_B on AD10x). */
export const ADA_COPY_ENGINE_CLASS = 0xc7b5;

/** GSP-RM build the upstream vGPU series requires. source: docs/reference/ada-chips.md "Firmware". */
export const ADA_FIRMWARE_FLOOR = '570.144';

/** NV_PMC_BOOT_0 architecture field value of Ada. source: nova-core gpu.rs `Architecture::Ada = 0x19`. */
export const ADA_ARCHITECTURE = 0x19;

export type AdaChipName = 'AD102' | 'AD104';

/** Implementation field of NV_PMC_BOOT_0 per chip. source: nova-core gpu.rs Chipset AD102 = 0x192, AD104 = 0x194. */
export const ADA_IMPLEMENTATION: Record<AdaChipName, number> = { AD102: 0x2, AD104: 0x4 };

export interface AdaBarSizes {
  bar0: bigint;
  bar1: bigint;
  bar3: bigint;
}

export interface AdaBoard {
  /** Short id used on the command line and in config: "rtx6000-ada", "l40s". */
  readonly key: string;
  readonly name: string;
  readonly chip: AdaChipName;
  readonly vendorId: number;
  readonly deviceId: number;
  readonly subsystemVendorId: number;
  readonly subsystemId: number;
  /** Device id of the board's VFs (SR-IOV capability "VF Device ID"). */
  readonly vfDeviceId: number;
  readonly revision: number;
  readonly fbBytes: bigint;
  readonly totalVfs: number;
  readonly firstVfOffset: number;
  readonly vfStride: number;
  readonly pfBars: AdaBarSizes;
  readonly vfBars: AdaBarSizes;
  readonly engines: readonly number[];
  readonly copyEngineClass: number;
  readonly firmwareFloor: string;
  /** NV2080_CTRL_CMD_GPU_GET_VMMU_SEGMENT_SIZE answer. */
  readonly vmmuSegmentSize: bigint;
  readonly eccSupported: boolean;
  /** ECC state the simulated firmware reports at power-on. */
  readonly eccEnabledDefault: boolean;
}

const GiB = 1n << 30n;
const MiB = 1n << 20n;

const E = NV2080_ENGINE_TYPE;
/**
 * Engines of the full-size AD102 boards (RTX 6000 Ada, L40, L40S): 1 GR, CEs, 3 NVENC, 3 NVDEC, NVJPGs, 1 OFA.
 * source: engine kinds: nouveau r535 has ce/gr/nvenc/nvdec/nvjpg/ofa engines for AD10x (docs/reference/ada-chips.md)
 * [inferred]. NVENC×3 / NVDEC×3: NVIDIA RTX 6000 Ada datasheet "3x encode, 3x decode" (copy in
 * atineoSE/coding-model-seeks-gpu pipeline/pipeline/sources/rtx6000ada_specs.md) and the L40/L40S datasheet table
 * "NVENC | NVDEC 3x | 3x" (reseller copy, https://www.mullet.se/product.html?product_id=355414). Corrected from
 * NVDEC×4 (no source had four). NVJPG×4 and 6 CEs remain [unverified].
 */
const AD102_ENGINES: readonly number[] = [
  E.GR0, E.COPY0, E.COPY1, E.COPY2, E.COPY3, E.COPY4, E.COPY5,
  E.NVDEC0, E.NVDEC1, E.NVDEC2, E.NVENC0, E.NVENC1, E.NVENC2,
  E.NVJPG0, E.NVJPG1, E.NVJPG2, E.NVJPG3, E.OFA0,
];
/**
 * RTX 5000 Ada (a cut-down AD102): 2 NVENC, 2 NVDEC. source: NVIDIA RTX 5000 Ada datasheet "2x encode, 2x decode"
 * (copy in atineoSE/coding-model-seeks-gpu pipeline/pipeline/sources/rtx5000ada_specs.md). NVJPG×4, 6 CEs [unverified].
 */
const AD102_RTX5000_ENGINES: readonly number[] = [
  E.GR0, E.COPY0, E.COPY1, E.COPY2, E.COPY3, E.COPY4, E.COPY5,
  E.NVDEC0, E.NVDEC1, E.NVENC0, E.NVENC1,
  E.NVJPG0, E.NVJPG1, E.NVJPG2, E.NVJPG3, E.OFA0,
];
/** AD104 (L4): 2 NVENC, 4 NVDEC, 4 NVJPG (L4 product brief) [unverified], 4 CEs [unverified]. */
const AD104_ENGINES: readonly number[] = [
  E.GR0, E.COPY0, E.COPY1, E.COPY2, E.COPY3,
  E.NVDEC0, E.NVDEC1, E.NVDEC2, E.NVDEC3, E.NVENC0, E.NVENC1,
  E.NVJPG0, E.NVJPG1, E.NVJPG2, E.NVJPG3, E.OFA0,
];

/** Fields shared by every board of the table. */
const COMMON = {
  vendorId: NVIDIA_VENDOR_ID,
  subsystemVendorId: NVIDIA_VENDOR_ID, // source: OGKM-README lists 10DE subsystems for all of these
  // source: L40S PFs list as "AD102GL [L40S] (rev a1)" in public lspci output (an EKS deployment write-up in a public
  // repo, found via the code index); the other boards' revision is [unverified] (A1 is NVIDIA's usual first stepping).
  revision: 0xa1,
  // source: L40S shows 32 VFs (https://github.com/harvester/harvester/issues/6487); NVA081_MAX_VGPU_PER_PGPU = 32
  // (docs/reference/create-order.md). Other SKUs [unverified].
  totalVfs: 32,
  // source (offset, L40S): VF 0 of an L40S sits at function 4 of the PF's bus, e.g. PF 0000:26:00.0 -> VF 0000:26:00.4
  // and a `creatable_vgpu_types` read at 0000:3d:00.4 (harvester pcidevices code comment and test fixture, indexed
  // copies); A40 (Ampere) VFs likewise start at 00.4. Stride 1 and the other SKUs' offset are [unverified].
  firstVfOffset: 4,
  vfStride: 1,
  copyEngineClass: ADA_COPY_ENGINE_CLASS,
  firmwareFloor: ADA_FIRMWARE_FLOOR,
  // [unverified] one of the five legal answers 32…512 MiB (docs/reference/create-order.md, nvrm/vmmu.h). 64 MiB
  // chosen: it keeps the ECC-on guest-FB formula (docs/reference/create-order.md C3) workable on the scaled-down FBs
  // of worker-mode simulations.
  vmmuSegmentSize: 64n * MiB,
  // source: L40/L40S/RTX 6000 Ada spec pages "48 GB GDDR6 with ECC"; RTX 5000 Ada datasheet "Error Correcting
  // Code (ECC): Yes" (rtx5000ada_specs.md above). L20 and L4 [unverified].
  eccSupported: true,
  // VF BARs [unverified]: BAR0 16 MiB register window like the PF, BAR1 1 GiB (≥ type bar1Length 256 MiB), BAR3 32 MiB.
  vfBars: { bar0: 16n * MiB, bar1: 1n * GiB, bar3: 32n * MiB },
} as const;

/**
 * PF BARs of the 48 GB datacenter boards [unverified for Ada]: BAR0 16 MiB, BAR1 64 GiB, BAR3 32 MiB. BAR0 16 MiB
 * (32-bit) and BAR3 32 MiB match public lspci of Turing/Ampere NVIDIA boards (T4, Quadro RTX 8000, RTX A2000); no
 * Ada lspci with BAR sizes was found. The large BAR1 is the display-off/vGPU mode assumption.
 */
const PF_BARS_DC: AdaBarSizes = { bar0: 16n * MiB, bar1: 64n * GiB, bar3: 32n * MiB };

export const ADA_BOARDS: readonly AdaBoard[] = [
  {
    ...COMMON,
    key: 'rtx6000-ada',
    name: 'NVIDIA RTX 6000 Ada Generation',
    chip: 'AD102',
    deviceId: 0x26b1, // source: OGKM-README; pci.ids "26b1 AD102GL [... RTX 6000 Ada Generation]"
    subsystemId: 0x16a1, // source: OGKM-README
    vfDeviceId: 0x26b1, // [unverified] VFs assumed to carry the PF id (Blackwell RTX PRO 6000 VFs do, per
    // https://github.com/bigstack-oss/cubecos/issues/312); the vGPU's guest-visible id comes from the type
    fbBytes: 48n * GiB, // source: RTX 6000 Ada spec page "48 GB GDDR6 with ECC"
    pfBars: PF_BARS_DC, // [unverified] large-BAR (display-off) mode assumed, as vGPU needs
    engines: AD102_ENGINES,
    eccEnabledDefault: false, // [unverified] workstation boards ship with ECC off
  },
  {
    ...COMMON,
    key: 'rtx5000-ada',
    name: 'NVIDIA RTX 5000 Ada Generation',
    chip: 'AD102', // source: pci.ids name "AD102GL [RTX 5000 Ada Generation]" for 26b2 (quoted in public code)
    deviceId: 0x26b2, // source: OGKM-README
    subsystemId: 0x17fa, // source: OGKM-README
    vfDeviceId: 0x26b2, // [unverified]
    fbBytes: 32n * GiB, // source: NVIDIA RTX 5000 Ada datasheet "32GB GDDR6" (rtx5000ada_specs.md, see engines)
    pfBars: { bar0: 16n * MiB, bar1: 32n * GiB, bar3: 32n * MiB }, // [unverified]
    engines: AD102_RTX5000_ENGINES,
    eccEnabledDefault: false, // [unverified]
  },
  {
    ...COMMON,
    key: 'l40',
    name: 'NVIDIA L40',
    // source: docs/reference/ada-chips.md (OGKM-README places 0x26Bx in AD102); pci.ids "26b5 AD102GL [L40]"
    chip: 'AD102',
    deviceId: 0x26b5, // source: OGKM-README
    subsystemId: 0x169d, // source: OGKM-README
    vfDeviceId: 0x26b5, // [unverified]
    fbBytes: 48n * GiB, // source: L40 spec page
    pfBars: PF_BARS_DC,
    engines: AD102_ENGINES,
    eccEnabledDefault: true, // [unverified] datacenter boards ship with ECC on
  },
  {
    ...COMMON,
    key: 'l40s',
    name: 'NVIDIA L40S',
    chip: 'AD102', // source: pci.ids "AD102GL [L40S]" for 26b9 (quoted in public code)
    deviceId: 0x26b9, // source: OGKM-README
    subsystemId: 0x1851, // source: OGKM-README
    vfDeviceId: 0x26b9, // [unverified]
    fbBytes: 48n * GiB, // source: L40S spec page
    pfBars: PF_BARS_DC,
    engines: AD102_ENGINES,
    eccEnabledDefault: true, // [unverified]
  },
  {
    ...COMMON,
    key: 'l20',
    name: 'NVIDIA L20',
    // source (chip, FB): third-party spec databases list the L20 as AD102, 48 GB GDDR6, 384-bit (e.g.
    // https://pcpartdb.com/gpus/compare/nvidia-l4--vs--nvidia-l20, https://technical.city/pl/video/L20); no NVIDIA
    // datasheet was in reach. OGKM-README places 26BA in the AD102 (26Bx) range.
    chip: 'AD102',
    deviceId: 0x26ba, // source: OGKM-README
    subsystemId: 0x1957, // source: OGKM-README
    vfDeviceId: 0x26ba, // [unverified]
    fbBytes: 48n * GiB,
    pfBars: PF_BARS_DC,
    engines: AD102_ENGINES, // [unverified] for the L20 (a cut-down AD102; its NVENC/NVDEC counts were not found)
    eccEnabledDefault: true, // [unverified]
  },
  {
    ...COMMON,
    key: 'l4',
    name: 'NVIDIA L4',
    chip: 'AD104', // source: docs/reference/ada-chips.md; pci.ids "27b8 AD104GL [L4]"
    deviceId: 0x27b8, // source: OGKM-README
    subsystemId: 0x16ca, // source: OGKM-README
    vfDeviceId: 0x27b8, // [unverified]
    fbBytes: 24n * GiB, // source: NVIDIA L4 vs L40S comparison page
    pfBars: { bar0: 16n * MiB, bar1: 32n * GiB, bar3: 32n * MiB }, // [unverified]
    engines: AD104_ENGINES,
    eccEnabledDefault: true, // [unverified]
  },
];

export function boardByKey(key: string): AdaBoard | undefined {
  return ADA_BOARDS.find((b) => b.key === key);
}

export function boardByDeviceId(deviceId: number): AdaBoard | undefined {
  return ADA_BOARDS.find((b) => b.deviceId === deviceId);
}

/** "rtx6000-ada (0x26b1 NVIDIA RTX 6000 Ada Generation), …" for error hints. */
export function supportedBoardList(): string {
  return ADA_BOARDS.map((b) => `${b.key} (0x${b.deviceId.toString(16)} ${b.name})`).join(', ');
}

/**
 * NV_PMC_BOOT_0 as the chip reports it: minor revision 3:0, major revision 7:4, implementation 23:20,
 * architecture 28:24 (source: nova-core regs.rs NV_PMC_BOOT_0; Ada's architecture 0x19 fits the 5-bit field, so
 * the extra architecture bit 8 stays 0). AD102 A1 → 0x192000a1.
 */
export function boot0For(board: AdaBoard): number {
  const rev = board.revision;
  return ((ADA_ARCHITECTURE << 24) | (ADA_IMPLEMENTATION[board.chip] << 20) | (rev & 0xff)) >>> 0;
}

/** Decode NV_PMC_BOOT_0 into architecture / implementation / revision. */
export function decodeBoot0(v: number): { architecture: number; implementation: number; revision: number } {
  const architecture = ((v >>> 24) & 0x1f) | (((v >>> 8) & 0x1) << 5);
  return { architecture, implementation: (v >>> 20) & 0xf, revision: v & 0xff };
}

/** Engine list → little-endian bitmap of ENGINE_BITMAP_BYTES (bit n = engine type n present). */
export function engineBitmap(engines: readonly number[]): Uint8Array {
  const out = new Uint8Array(ENGINE_BITMAP_BYTES);
  for (const e of engines) out[e >> 3] = (out[e >> 3] ?? 0) | (1 << (e & 7));
  return out;
}
