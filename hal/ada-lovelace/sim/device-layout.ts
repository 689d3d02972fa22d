/**
 * Memory layout of one simulated Ada GPU: ONE shared region (a SharedArena) that the device process (or worker)
 * and the host driver both map. In process mode it is a sparse file under /dev/shm, in worker mode a
 * SharedArrayBuffer; the bytes are the same either way. Both the simulator and the HAL import these offsets, so a
 * layout change is one edit plus a LAYOUT_VERSION bump (an old device file is then refused, never misread).
 *
 *   offset       size            what
 *   0x0000000    4 KiB           device header (below)
 *   0x0001000    4 KiB           PF PCI config space (type-0 header, PM + PCIe caps, SR-IOV ext cap at 0x100)
 *   0x0002000    32 × 4 KiB      VF PCI config spaces, VF index i at 0x2000 + i·0x1000
 *   0x0022000    4 KiB           firmware log directory: where each gfid's log buffers live (FB offsets)
 *   0x0030000    64 KiB          GSP-RM's own log ring (readLog('gsp'))
 *   0x0100000    16 MiB          PF BAR0 register window, registers at their real BAR0 offsets (sparse)
 *   0x1100000    1 MiB slot      GSP message-queue region (hal/gsp/gsp-layout.ts GspRegion, 0x82000 bytes used)
 *   0x2000000    FB bytes        framebuffer (2 MiB aligned so huge pages could back it)
 *
 * All multi-byte fields are little-endian; words that two sides race on are touched with 32-bit atomics.
 */
import { GspRegion } from '../../gsp/gsp-layout.js';

export const LAYOUT_MAGIC = 0x4d534756; // 'VGSM' as bytes V G S M
/**
 * 2: the header gained the device doorbell and the interrupt-link address (0x100..0x178), and the device heartbeat
 * word went quiet (liveness is the link now). Nothing else moved, so a version-1 file is upgraded in place at the
 * next power-on (device-region.ts) instead of being refused: its FB is kept.
 */
export const LAYOUT_VERSION = 2;
/** Older layouts a power-on upgrades in place (same offsets for everything they have). */
export const UPGRADABLE_LAYOUT_VERSIONS: readonly number[] = [1];

export const MAX_VFS = 32;
const KiB = 0x400;
const MiB = 0x100000;

export const Region = {
  HEADER: 0x0,
  PF_CONFIG: 0x1000,
  VF_CONFIG: 0x2000,
  CONFIG_SIZE: 0x1000,
  LOG_DIRECTORY: 0x22000,
  GSP_LOG: 0x30000,
  GSP_LOG_SIZE: 64 * KiB,
  BAR0: 1 * MiB,
  BAR0_SIZE: 16 * MiB,
  GSP_QUEUES: 17 * MiB,
  GSP_QUEUES_SLOT: 1 * MiB,
  FB: 32 * MiB,
} as const;

if (GspRegion.SIZE > Region.GSP_QUEUES_SLOT) {
  // Fails at import, long before a device is created with overlapping queues and FB.
  throw new Error(`GSP queue region (${GspRegion.SIZE} B) outgrew its 1 MiB slot in the Ada device layout`);
}

export function vfConfigOffset(vfIndex: number): number {
  return Region.VF_CONFIG + vfIndex * Region.CONFIG_SIZE;
}

/** Total arena bytes for a device with `fbBytes` of framebuffer. */
export function regionBytes(fbBytes: bigint): bigint {
  return BigInt(Region.FB) + fbBytes;
}

/**
 * Device header (offsets from Region.HEADER). u32 unless noted.
 * deviceState / firmwareState are written by the device only; the host reads them.
 */
export const Header = {
  MAGIC: 0x00,
  LAYOUT_VERSION: 0x04,
  DEVICE_ID: 0x08,
  SUBSYSTEM_ID: 0x0c,
  /** DeviceState. */
  DEVICE_STATE: 0x10,
  /** DeviceFwState mirror of the GSP state (the authoritative word is the GSP control page FW_STATE). */
  FIRMWARE_STATE: 0x14,
  /** PID of the process hosting the device (the vgpu-sim process, or the test process in worker mode). */
  SIM_PID: 0x18,
  /** Incremented every time a simulator (re)starts on this region: lets a host tell "same device" from "rebooted". */
  GENERATION: 0x1c,
  /**
   * Layout 1 had the device's main thread bump this every 200 ms. Nobody read it, and a timer per device is an idle
   * cost, so it stays 0 now: whether the device lives is what its interrupt link says (the link closes when the
   * device process dies, which the kernel reports at once).
   */
  HEARTBEAT: 0x20,
  TOTAL_VFS: 0x24,
  NUM_VFS: 0x28,
  HEARTBEAT_MS: 0x2c,
  /** u64 fields. */
  FB_OFFSET: 0x30,
  FB_BYTES: 0x38,
  /** The board's nominal FB (chip table); FB_BYTES may be smaller in worker mode (see docs/simulator.md). */
  BOARD_FB_BYTES: 0x40,
  BAR0_OFFSET: 0x48,
  BAR0_BYTES: 0x50,
  GSP_OFFSET: 0x58,
  GSP_BYTES: 0x60,
  REGION_BYTES: 0x68,
  /** u64 BAR sizes as sizing the BARs would report them. */
  PF_BAR0: 0x70,
  PF_BAR1: 0x78,
  PF_BAR3: 0x80,
  VF_BAR0: 0x88,
  VF_BAR1: 0x90,
  VF_BAR3: 0x98,
  /** char[32] board key ("rtx6000-ada"). */
  BOARD_KEY: 0xa0,
  /** char[32] GSP-RM build the device's firmware carries. */
  FIRMWARE_VERSION: 0xc0,
  /** char[16] PF BDF. */
  BDF: 0xe0,
  STRING_BYTES: 32,
  BDF_BYTES: 16,
  /**
   * Device doorbell (simulator's stand-in for the device seeing a host write on its bus): the host bumps this word
   * and wakes it after a register or config write the device must act on (GSP CPUCTL, the PF's FLR bit); the
   * device's main thread sleeps on it and nothing else.
   */
  DEVICE_DOORBELL: 0x100,
  /** u32 byte length of IRQ_ADDRESS. */
  IRQ_ADDRESS_LEN: 0x104,
  /**
   * Where the device's interrupt link listens (sim/irq-protocol.ts): a Unix socket address, an abstract name
   * written with a leading '@'. Up to IRQ_ADDRESS_BYTES bytes.
   */
  IRQ_ADDRESS: 0x108,
  IRQ_ADDRESS_BYTES: 112,
} as const;

export const DeviceState = {
  /** Header not written yet (fresh sparse file). */
  Uninitialised: 0,
  /** A simulator is attached and serving. */
  Running: 1,
  /** The simulator exited cleanly (SIGTERM, stop()); contents are kept for the next start. */
  Stopped: 2,
} as const;
export type DeviceState = (typeof DeviceState)[keyof typeof DeviceState];

/** Header.HEARTBEAT_MS of layout 2: 0, the device keeps no heartbeat (see Header.HEARTBEAT). */
export const DEVICE_HEARTBEAT_MS = 0;

/**
 * PF BAR0 register offsets the simulator populates (real offsets; nothing else in the 16 MiB window is backed).
 * Sources: NV_PMC_BOOT_0 @0 (OpenRM dev_boot.h); NV_PCFG mirror of config space @0x88000 (RFC v1 nvkm `vgpu_mgr.c`
 * reads 0x88000+0xbf4/0xbfc); NV_PGSP falcon @0x110000, mailboxes at +0x40/+0x44, queue-head doorbell at +0xc00
 * (nouveau writes falcon 0xc00; docs/reference/gsp-queues.md); VF priv doorbell 0xB80000+0x2200
 * (docs/reference/host-rpc-mailbox.md).
 */
export const Bar0 = {
  PMC_BOOT_0: 0x000000,
  /** NV_PCFG: read-only mirror of the PF's PCI config space (first 4 KiB). */
  PCFG: 0x088000,
  /** SR-IOV VF BAR1 / BAR2 type words in the PCFG mirror (bits[2:1] == 0b10 → 64-bit). */
  PCFG_VF_BAR1_TYPE: 0x088000 + 0xbf4,
  PCFG_VF_BAR2_TYPE: 0x088000 + 0xbfc,
  PGSP_BASE: 0x110000,
  /** Falcon mailbox 0: the device mirrors the GSP firmware state here (GspFwState value). */
  PGSP_MAILBOX0: 0x110040,
  /** Falcon mailbox 1: the GSP-RM build as major·1000 + minor (570144 for "570.144"), 0 before boot. */
  PGSP_MAILBOX1: 0x110044,
  /**
   * Falcon CPUCTL (+0x100). Bit 1 STARTCPU: the host sets it to start GSP-RM (the device clears it when the GSP
   * thread runs); bit 4 HALTED: set by the device while no GSP-RM runs. Bit 31 is the simulator's own "halt
   * request" (real RM unloads GSP through an unload RPC; one bit keeps the simulated device simple).
   */
  PGSP_CPUCTL: 0x110100,
  /** Queue-head doorbell register (falcon +0xc00); the simulated transport uses the GSP control page instead. */
  PGSP_QUEUE_HEAD: 0x110c00,
  /** NV_VIRTUAL_FUNCTION_PRIV_DOORBELL: host writes gfid·32 + 17 to ring a vGPU's plugin task. */
  VF_PRIV_DOORBELL: 0xb82200,
} as const;

export const Cpuctl = {
  STARTCPU: 1 << 1,
  HALTED: 1 << 4,
  SIM_HALT_REQUEST: 0x80000000,
} as const;

/**
 * Firmware log directory (Region.LOG_DIRECTORY): one 48-byte entry per gfid 0..MAX_VFS, written by the firmware
 * when a plugin task is bootloaded (from the bootload params) and cleared at cleanup:
 * {initOff u64, initSize u64, vgpuOff u64, vgpuSize u64, kernelOff u64, kernelSize u64} — FB offsets.
 */
export const LOG_DIR_ENTRY_BYTES = 48;
export function logDirEntryOffset(gfid: number): number {
  return Region.LOG_DIRECTORY + gfid * LOG_DIR_ENTRY_BYTES;
}

/** Mirror of a board's BAR sizes in the header (BigInt fields). */
export interface HeaderBars {
  pf: { bar0: bigint; bar1: bigint; bar3: bigint };
  vf: { bar0: bigint; bar1: bigint; bar3: bigint };
}
