/**
 * What the simulated device and the GSP HAL need to know about one board, whatever its generation: PCI ids, FB,
 * SR-IOV, BARs, engines, the NV_PMC_BOOT_0 identification and the firmware floor. Each generation keeps its own table
 * of boards (hal/ada-lovelace/chips.ts, hal/hopper/chips.ts) with every value's public source; this file holds the
 * shape and the NVIDIA facts that do not change between generations.
 */

/** NVIDIA's PCI vendor id. source: pci.ids "10de NVIDIA Corporation". */
export const NVIDIA_VENDOR_ID = 0x10de;

/** 3D controller class code (03/02/00): what a datacenter NVIDIA PF in vGPU mode and every VF report.
 *  source: pci.ids class 03 subclass 02 "3D controller"; public lspci of L40S / H100 PFs ("3D controller"). */
export const CLASS_3D_CONTROLLER = 0x030200;

/**
 * NV2080 engine-type indices (RM_ENGINE_TYPE / NV2080_ENGINE_TYPE_*).
 * source: NVIDIA/open-gpu-kernel-modules 570.144 ctrl2080gpu.h as vendored by nouveau r570 (nvrm/gr.h…),
 * cross-checked with cl2080_notification.h (GRAPHICS 1, COPY0 9, NVDEC0 0x13, NVENC0 0x1b, NVJPG 0x2b, OFA 0x33).
 * COPY6..9, NVDEC4..7 and NVJPG4..7 are [inferred]: the indices between documented neighbours are contiguous
 * (COPY0 0x09 … NVDEC0 0x13 leaves room for exactly ten copy engines, NVDEC0 … NVENC0 0x1b for eight decoders).
 */
export const NV2080_ENGINE_TYPE = {
  GR0: 0x01,
  COPY0: 0x09,
  COPY1: 0x0a,
  COPY2: 0x0b,
  COPY3: 0x0c,
  COPY4: 0x0d,
  COPY5: 0x0e,
  COPY6: 0x0f,
  COPY7: 0x10,
  COPY8: 0x11,
  COPY9: 0x12,
  NVDEC0: 0x13,
  NVDEC1: 0x14,
  NVDEC2: 0x15,
  NVDEC3: 0x16,
  NVDEC4: 0x17,
  NVDEC5: 0x18,
  NVDEC6: 0x19,
  NVDEC7: 0x1a,
  NVENC0: 0x1b,
  NVENC1: 0x1c,
  NVENC2: 0x1d,
  SEC2: 0x26,
  NVJPG0: 0x2b,
  NVJPG1: 0x2c,
  NVJPG2: 0x2d,
  NVJPG3: 0x2e,
  NVJPG4: 0x2f,
  NVJPG5: 0x30,
  NVJPG6: 0x31,
  NVJPG7: 0x32,
  OFA0: 0x33,
  /** NV2080_ENGINE_TYPE_LAST in 570 (0x3e in 535); source: docs/reference/gsp-queues.md. */
  LAST: 0x54,
} as const;

/** Bytes of the engine bitmap: one bit per engine type below LAST, rounded up to 8 bytes. */
export const ENGINE_BITMAP_BYTES = Math.ceil(Math.ceil(NV2080_ENGINE_TYPE.LAST / 8) / 8) * 8;

export interface BarSizes {
  bar0: bigint;
  bar1: bigint;
  bar3: bigint;
}

export interface SimBoard {
  /** Short id used on the command line and in config: "rtx6000-ada", "h100-pcie". */
  readonly key: string;
  readonly name: string;
  /** Chip name ("AD102", "GH100"): shown in logs and checked against NV_PMC_BOOT_0. */
  readonly chip: string;
  /** NV_PMC_BOOT_0 architecture field (Ada 0x19, Hopper 0x18). */
  readonly architecture: number;
  /** NV_PMC_BOOT_0 implementation field of the chip (AD102 0x2, GH100 0x0). */
  readonly implementation: number;
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
  readonly pfBars: BarSizes;
  readonly vfBars: BarSizes;
  readonly engines: readonly number[];
  /** CHIDs the HAL gives to vGPUs (the PF's host channel space less what the host keeps). */
  readonly channelCount: number;
  readonly copyEngineClass: number;
  readonly firmwareFloor: string;
  /** NV2080_CTRL_CMD_GPU_GET_VMMU_SEGMENT_SIZE answer. */
  readonly vmmuSegmentSize: bigint;
  readonly eccSupported: boolean;
  /** ECC state the simulated firmware reports at power-on. */
  readonly eccEnabledDefault: boolean;
}

/**
 * NV_PMC_BOOT_0 as the chip reports it: minor revision 3:0, major revision 7:4, implementation 23:20,
 * architecture 28:24 (source: nova-core regs.rs NV_PMC_BOOT_0; architectures up to 0x1f fit the 5-bit field, so
 * the extra architecture bit 8 stays 0). AD102 A1 → 0x192000a1, GH100 A1 → 0x180000a1.
 */
export function boot0For(board: SimBoard): number {
  return ((board.architecture << 24) | ((board.implementation & 0xf) << 20) | (board.revision & 0xff)) >>> 0;
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
