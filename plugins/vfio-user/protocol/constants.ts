/**
 * vfio-user wire constants (protocol 0.1). Every number here is a wire value a peer depends on.
 *
 * Sources (facts, restated in docs/reference/vfio-user.md): QEMU docs/interop/vfio-user.rst (commands, header,
 * VERSION capabilities and their defaults, region/irq/feature structures); Linux include/uapi/linux/vfio.h (region
 * and irq indices, VFIO_REGION_INFO_*, VFIO_IRQ_*, VFIO_DEVICE_FEATURE_*, migration states); QEMU
 * hw/vfio-user/protocol.h and proxy.c (what the QEMU client sends and the limits it enforces on our reply).
 */

export const VFIO_USER_MAJOR = 0;
/** The newest minor we speak. We answer with min(client's minor, ours): QEMU 10.1 proposes 0.0 and refuses a higher reply. */
export const VFIO_USER_MINOR = 1;

export const Command = {
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
  /** Removed from the protocol (the v1 dirty-page interface); refused with ENOTSUP. */
  DIRTY_PAGES: 14,
  REGION_WRITE_MULTI: 15,
  DEVICE_FEATURE: 16,
  MIG_DATA_READ: 17,
  MIG_DATA_WRITE: 18,
} as const;
export type CommandId = (typeof Command)[keyof typeof Command];

export function commandName(c: number): string {
  for (const [k, v] of Object.entries(Command)) if (v === c) return k;
  return `UNKNOWN(${c})`;
}

/** Header: u16 msg_id, u16 command, u32 message_size (header included), u32 flags, u32 error_no; little-endian. */
export const HEADER_SIZE = 16;
export const Flags = {
  TYPE_MASK: 0xf,
  TYPE_COMMAND: 0x0,
  TYPE_REPLY: 0x1,
  NO_REPLY: 0x10,
  ERROR: 0x20,
} as const;

/** Linux errno values sent in error replies (asm-generic/errno-base.h, errno.h). */
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
  ENODEV: 19,
  EINVAL: 22,
  ENOTTY: 25,
  ENOSPC: 28,
  ENOSYS: 38,
  EOVERFLOW: 75,
  ENOTSUP: 95,
} as const;
export type ErrnoValue = (typeof Errno)[keyof typeof Errno];

export function errnoName(n: number): string {
  for (const [k, v] of Object.entries(Errno)) if (v === n) return k;
  return `errno ${n}`;
}

/** VFIO PCI region indices (vfio.h VFIO_PCI_*_REGION_INDEX). */
export const RegionIndex = { BAR0: 0, BAR1: 1, BAR2: 2, BAR3: 3, BAR4: 4, BAR5: 5, ROM: 6, CONFIG: 7, VGA: 8 } as const;
/** VFIO_PCI_NUM_REGIONS: the device has no device-specific regions. */
export const NUM_REGIONS = 9;

/** VFIO PCI irq indices (vfio.h VFIO_PCI_*_IRQ_INDEX). */
export const IrqIndex = { INTX: 0, MSI: 1, MSIX: 2, ERR: 3, REQ: 4 } as const;
export const NUM_IRQS = 5;

/** struct vfio_device_info flags. */
export const DeviceFlags = { RESET: 1 << 0, PCI: 1 << 1 } as const;

/** struct vfio_region_info flags and capability ids. */
export const RegionFlags = { READ: 1 << 0, WRITE: 1 << 1, MMAP: 1 << 2, CAPS: 1 << 3 } as const;
export const REGION_INFO_SIZE = 32;
export const CAP_SPARSE_MMAP = 1;

/** struct vfio_irq_info flags. */
export const IrqInfoFlags = { EVENTFD: 1 << 0, MASKABLE: 1 << 1, AUTOMASKED: 1 << 2, NORESIZE: 1 << 3 } as const;

/** struct vfio_irq_set flags. */
export const IrqSetFlags = {
  DATA_NONE: 1 << 0,
  DATA_BOOL: 1 << 1,
  DATA_EVENTFD: 1 << 2,
  ACTION_MASK: 1 << 3,
  ACTION_UNMASK: 1 << 4,
  ACTION_TRIGGER: 1 << 5,
} as const;
export const IRQ_SET_DATA_MASK = 0x7;
export const IRQ_SET_ACTION_MASK = 0x38;
export const IRQ_SET_SIZE = 20;

/** DMA_MAP / DMA_UNMAP flags. */
export const DmaMapFlags = { READ: 1 << 0, WRITE: 1 << 1 } as const;
export const DmaUnmapFlags = { GET_DIRTY_BITMAP: 1 << 0, ALL: 1 << 1 } as const;
export const DMA_MAP_SIZE = 32;
export const DMA_UNMAP_SIZE = 24;

/** DEVICE_FEATURE (struct vfio_device_feature) flags and feature numbers. */
export const FeatureFlags = { MASK: 0xffff, GET: 1 << 16, SET: 1 << 17, PROBE: 1 << 18 } as const;
export const Feature = {
  MIGRATION: 1,
  MIG_DEVICE_STATE: 2,
  DMA_LOGGING_START: 6,
  DMA_LOGGING_STOP: 7,
  DMA_LOGGING_REPORT: 8,
} as const;
/** VFIO_MIGRATION_* bits of the MIGRATION feature. */
export const MigrationCap = { STOP_COPY: 1 << 0, P2P: 1 << 1, PRE_COPY: 1 << 2 } as const;

/** VERSION capability defaults when a peer omits a key (vfio-user.rst "Capabilities"). */
export const CapDefaults = {
  maxMsgFds: 1,
  maxDataXferSize: 1 << 20,
  maxDmaMaps: 65535,
  pgsizes: 4096,
  /** migration.pgsize / max_bitmap_size: QEMU's client defaults (hw/vfio-user/protocol.h). */
  migrationPgsize: 4096,
  maxBitmapSize: 256 << 20,
} as const;

/** Upper bounds QEMU's client accepts in our reply (proxy.c check_max_fds / check_max_xfer): we stay under them. */
export const QemuLimits = { maxMsgFds: 16, maxDataXferSize: 64 << 20, maxDmaMaps: 65535, maxBitmapSize: 256 << 20 } as const;

/** VFIO migration device states (vfio.h enum vfio_device_mig_state). */
export const MigDeviceState = {
  ERROR: 0, STOP: 1, RUNNING: 2, STOP_COPY: 3, RESUMING: 4, RUNNING_P2P: 5, PRE_COPY: 6, PRE_COPY_P2P: 7,
} as const;
