/**
 * The guest-visible side of the simulated VFs in the device region (simulator layout, in space the v1 layout left
 * unused, zero on a fresh or older file):
 *
 *   0x040000   32 × 4 KiB   VF state pages: the VF register file, the firmware's per-VF record, the DMA mailbox
 *   0x060000   4 KiB        VF bus block: the two kick words the device and the front wake each other with
 *   0x080000   32 × 16 KiB  DMA staging buffers (data of a DMA the device asked the front to do)
 *
 * Who writes what (every shared word has ONE writer, so plain atomic loads/stores suffice — no read-modify-write
 * races between processes): "front" = the vfio-user front process serving the VF to a VMM (it performs guest
 * register accesses and the DMA), "device" = the simulated device's main thread, "gsp" = its GSP thread.
 */
export const VF_PAGES = 0x40000;
export const VF_PAGE_SIZE = 0x1000;
export const VF_BUS = 0x60000;
export const VF_STAGING = 0x80000;
export const VF_STAGING_SIZE = 16 << 10;
export const VF_REGION_END = 0x100000;

export function vfPage(vf: number): number {
  return VF_PAGES + vf * VF_PAGE_SIZE;
}

export function vfStaging(vf: number): number {
  return VF_STAGING + vf * VF_STAGING_SIZE;
}

/** Offsets inside a VF state page. */
export const VfPage = {
  /** u32[32] device: times the device raised leaf 0 bit b. */
  RAISED: 0x000,
  /** u32[32] front: times the guest triggered leaf 0 bit b (CPU_INTR_LEAF_TRIGGER). */
  SW_RAISED: 0x080,
  /** u32[32] front: RAISED+SW_RAISED of bit b when the guest last cleared it (pending = sum ≠ acked). */
  ACKED: 0x100,
  /** u32[8] front: CPU_INTR_LEAF_EN of each leaf. */
  LEAF_EN: 0x180,
  /** u32 front: CPU_INTR_TOP_EN(0). */
  TOP_EN: 0x1a0,
  /** u32[16] front: MAILBOX_SCRATCH(i). */
  SCRATCH: 0x1c0,
  SCRATCH_COUNT: 16,
  /** u32[2] front: doorbell rings per token (0 setup, 1 message). */
  RINGS: 0x200,
  /** u32[2] device: rings of each token already handled. */
  RINGS_SEEN: 0x208,
  /** u32 front: bumped on every reset the front asks for (FLR, VFIO reset); the device clears its side. */
  RESETS: 0x210,
  /** u32 device: resets handled. */
  RESETS_SEEN: 0x214,
  /** u32 front: 1 while the config space's Bus Master Enable is set (the device may do DMA). */
  BUS_MASTER: 0x218,
  /** u32 front: 1 while a client (VMM) is attached, so DMA can be carried out. */
  ATTACHED: 0x21c,
  /** u32 device: bumped after every raise, so the front knows to look at RAISED. */
  IRQ_SEQ: 0x220,
  /**
   * u32[2] front: RINGS as they stood when the last reset was asked for. The device discards only those rings at
   * the reset: a ring the guest made after its reset (its first setup) must survive a reset the device handles late.
   */
  RESET_RINGS: 0x228,
  // -- the firmware's record of the vGPU on this VF (gsp) --
  /** u32 gsp: 0 no plugin task, 1 running, 2 work stopped (migration), 3 shut down. */
  TASK_STATE: 0x280,
  /** u32 gsp: vGPU type id of the task. */
  TASK_TYPE: 0x284,
  /** u64 gsp: the guest FB slice (FB offset, bytes) from the bootload. */
  FB_OFFSET: 0x288,
  FB_SIZE: 0x290,
  // -- DMA mailbox: device asks, front answers --
  /** u32 device: request sequence (a new request when it differs from DMA_DONE). */
  DMA_REQ: 0x300,
  /** u32 front: the last request answered. */
  DMA_DONE: 0x304,
  /** u32 device: 1 read guest memory into staging, 2 write staging to guest memory, 3 write FB bytes to guest memory,
   *  4 read guest memory into FB. */
  DMA_OP: 0x308,
  /** u32 front: 0 done, else an errno (14 EFAULT: not mapped; 5 EIO: no client or bus mastering off). */
  DMA_STATUS: 0x30c,
  /** u64 device: IOVA. */
  DMA_IOVA: 0x310,
  /** u32 device: bytes. */
  DMA_LENGTH: 0x318,
  /** u64 device: FB offset (ops 3 and 4). */
  DMA_FB_OFFSET: 0x320,
  // -- registers restored by a migration: the device stages them, the front (their writer) adopts them --
  /** u32 device: bumped after a new block below is complete. */
  REG_RESTORE_SEQ: 0x400,
  /** u32 front: the last REG_RESTORE_SEQ adopted (or dropped by a reset). */
  REG_RESTORE_DONE: 0x404,
  /** u32 device: 1 = the block holds registers to adopt; 0 = nothing (a new tenant voids an unadopted block). */
  REG_RESTORE_VALID: 0x408,
  /** u32[8] device: CPU_INTR_LEAF_EN of each leaf. */
  REG_RESTORE_LEAF_EN: 0x40c,
  /** u32 device: CPU_INTR_TOP_EN(0). */
  REG_RESTORE_TOP_EN: 0x42c,
  /** u32 device: the leaf-0 bits pending at the source. */
  REG_RESTORE_PENDING: 0x430,
  /** u32[16] device: MAILBOX_SCRATCH(i). */
  REG_RESTORE_SCRATCH: 0x434,
} as const;

export const TaskState = { NONE: 0, RUNNING: 1, STOPPED: 2, SHUTDOWN: 3 } as const;
export const DmaOp = { READ_TO_STAGING: 1, WRITE_FROM_STAGING: 2, WRITE_FROM_FB: 3, READ_TO_FB: 4 } as const;

/** Offsets inside the VF bus block. */
export const VfBus = {
  /** u32 front: bumped whenever the front has news for the device (doorbell, reset, bus master change). */
  DEVICE_KICK: 0x00,
  /** u32 device: bumped whenever the device has news for the front (interrupt raised, DMA requested). */
  FRONT_KICK: 0x04,
} as const;

/** Leaf-0 interrupt bits the device raises (docs/vfio-user.md "Leaf 0 bits"). */
export const VfIntr = { RPC_ANSWERED: 0, EXCEPTION: 1 } as const;
