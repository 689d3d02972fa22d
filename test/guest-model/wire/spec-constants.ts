/**
 * Numbers of the vfio-user wire protocol and of the VFIO structures it reuses, typed in by hand from the public
 * texts (not from the server's code, so one cannot hide the other's mistakes):
 *   - QEMU docs/interop/vfio-user.rst ("vfio-user Protocol Specification"): command numbers, header flag bits,
 *     capability names and defaults, feature indices, migration states;
 *   - Linux include/uapi/linux/vfio.h: region/IRQ indices and flag bits, vfio_region_info capability ids,
 *     VFIO_DEVICE_FEATURE bits, VFIO_MIGRATION_* flags;
 *   - Linux include/uapi/asm-generic/errno-base.h and errno.h: the errno values a reply may carry.
 */

/** Commands (QEMU spec "Commands" table). 14 is absent from the table: it was the removed DIRTY_PAGES. */
export const Cmd = {
  VERSION: 1,
  DMA_MAP: 2,
  DMA_UNMAP: 3,
  DEVICE_GET_INFO: 4,
  DEVICE_GET_REGION_INFO: 5,
  DEVICE_GET_REGION_IO_FDS: 6,
  DEVICE_GET_IRQ_INFO: 7,
  DEVICE_SET_IRQS: 8,
  REGION_READ: 9,
  REGION_WRITE: 10,
  DMA_READ: 11,
  DMA_WRITE: 12,
  DEVICE_RESET: 13,
  REGION_WRITE_MULTI: 15,
  DEVICE_FEATURE: 16,
  MIG_DATA_READ: 17,
  MIG_DATA_WRITE: 18,
} as const;
export type CmdName = keyof typeof Cmd;

export function cmdName(n: number): string {
  for (const [k, v] of Object.entries(Cmd)) if (v === n) return k;
  return `command ${n}`;
}

/** Header flags (QEMU spec "Header"): bits 0-3 type, bit 4 No_reply, bit 5 Error. */
export const HDR_TYPE_MASK = 0xf;
export const HDR_TYPE_COMMAND = 0x0;
export const HDR_TYPE_REPLY = 0x1;
export const HDR_NO_REPLY = 1 << 4;
export const HDR_ERROR = 1 << 5;
export const HEADER_BYTES = 16;

/** The protocol version this client speaks (QEMU spec "VFIO_USER_VERSION"; the text describes 0.1). */
export const PROTOCOL_MAJOR = 0;
export const PROTOCOL_MINOR = 1;

/** Capability defaults when a peer leaves one out (QEMU spec "VFIO_USER_VERSION", Capabilities table). */
export const CAP_DEFAULTS = {
  max_msg_fds: 1,
  max_data_xfer_size: 1048576,
  max_dma_maps: 65535,
  pgsizes: 4096,
  write_multiple: false,
} as const;

/** errno values (Linux asm-generic/errno-base.h, errno.h). */
export const Errno = {
  EPERM: 1,
  ENOENT: 2,
  EIO: 5,
  E2BIG: 7,
  EBADF: 9,
  EAGAIN: 11,
  ENOMEM: 12,
  EFAULT: 14,
  EBUSY: 16,
  EEXIST: 17,
  EINVAL: 22,
  ENOTTY: 25,
  ENOSPC: 28,
  ERANGE: 34,
  EOVERFLOW: 75,
  ENOTSUP: 95,
} as const;

export function errnoName(n: number): string {
  for (const [k, v] of Object.entries(Errno)) if (v === n) return k;
  return `errno ${n}`;
}

/** VFIO_DEVICE_FLAGS_* (vfio.h; QEMU spec DEVICE_GET_INFO). */
export const DEVICE_FLAGS_RESET = 1 << 0;
export const DEVICE_FLAGS_PCI = 1 << 1;

/** PCI region indices (vfio.h VFIO_PCI_*_REGION_INDEX). */
export const Region = { BAR0: 0, BAR1: 1, BAR2: 2, BAR3: 3, BAR4: 4, BAR5: 5, ROM: 6, CONFIG: 7, VGA: 8 } as const;
export const PCI_NUM_REGIONS = 9;

/** VFIO_REGION_INFO_FLAG_* (vfio.h). */
export const REGION_FLAG_READ = 1 << 0;
export const REGION_FLAG_WRITE = 1 << 1;
export const REGION_FLAG_MMAP = 1 << 2;
export const REGION_FLAG_CAPS = 1 << 3;

/** Region info capability ids (vfio.h VFIO_REGION_INFO_CAP_SPARSE_MMAP, VFIO_REGION_INFO_CAP_TYPE). */
export const REGION_CAP_SPARSE_MMAP = 1;
export const REGION_CAP_TYPE = 2;

/** PCI IRQ indices (vfio.h VFIO_PCI_*_IRQ_INDEX). */
export const Irq = { INTX: 0, MSI: 1, MSIX: 2, ERR: 3, REQ: 4 } as const;
export const PCI_NUM_IRQS = 5;

/** VFIO_IRQ_INFO_* (vfio.h). */
export const IRQ_INFO_EVENTFD = 1 << 0;
export const IRQ_INFO_MASKABLE = 1 << 1;
export const IRQ_INFO_AUTOMASKED = 1 << 2;
export const IRQ_INFO_NORESIZE = 1 << 3;

/** VFIO_IRQ_SET_* (vfio.h). */
export const IRQ_SET_DATA_NONE = 1 << 0;
export const IRQ_SET_DATA_BOOL = 1 << 1;
export const IRQ_SET_DATA_EVENTFD = 1 << 2;
export const IRQ_SET_ACTION_MASK = 1 << 3;
export const IRQ_SET_ACTION_UNMASK = 1 << 4;
export const IRQ_SET_ACTION_TRIGGER = 1 << 5;

/** DMA_MAP flags (QEMU spec: bit 0 readable, bit 1 writeable); DMA_UNMAP flags (vfio.h VFIO_DMA_UNMAP_FLAG_*). */
export const DMA_MAP_READ = 1 << 0;
export const DMA_MAP_WRITE = 1 << 1;
export const DMA_UNMAP_GET_DIRTY_BITMAP = 1 << 0;
export const DMA_UNMAP_ALL = 1 << 1;

/** DEVICE_FEATURE flags (QEMU spec; vfio.h VFIO_DEVICE_FEATURE_MASK/GET/SET/PROBE). */
export const FEATURE_MASK = 0xffff;
export const FEATURE_GET = 1 << 16;
export const FEATURE_SET = 1 << 17;
export const FEATURE_PROBE = 1 << 18;

/** Feature indices vfio-user keeps (QEMU spec "Device Features"). */
export const Feature = { MIGRATION: 1, MIG_DEVICE_STATE: 2, DMA_LOGGING_START: 6, DMA_LOGGING_STOP: 7, DMA_LOGGING_REPORT: 8 } as const;

/** VFIO_MIGRATION_* flags of feature MIGRATION (vfio.h). */
export const MIGRATION_STOP_COPY = 1n << 0n;
export const MIGRATION_P2P = 1n << 1n;
export const MIGRATION_PRE_COPY = 1n << 2n;

/** enum vfio_device_mig_state (vfio.h; QEMU spec MIG_DEVICE_STATE table). */
export const MigState = { ERROR: 0, STOP: 1, RUNNING: 2, STOP_COPY: 3, RESUMING: 4, RUNNING_P2P: 5, PRE_COPY: 6, PRE_COPY_P2P: 7 } as const;
export type MigStateName = keyof typeof MigState;

export function migStateName(n: number): string {
  for (const [k, v] of Object.entries(MigState)) if (v === n) return k;
  return `state ${n}`;
}
