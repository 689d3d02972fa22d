/**
 * The fixed parts of every vfio-user message, one table per structure, offsets from the end of the 16-byte header
 * exactly as QEMU docs/interop/vfio-user.rst lists them (the header itself from its "Header" section). Where the
 * spec defers to Linux include/uapi/linux/vfio.h (region info, its capabilities, IRQ info/set, feature data), the
 * layout is vfio.h's.
 */
import { defineStruct } from './struct-layout.js';

/** Header (QEMU spec "Header"). */
export const Header = defineStruct('header', 16, {
  msgId: ['u16', 0],
  command: ['u16', 2],
  size: ['u32', 4],
  flags: ['u32', 8],
  error: ['u32', 12],
});

/** VERSION request and reply: major, minor, then optional NUL-terminated JSON (QEMU spec "VFIO_USER_VERSION"). */
export const Version = defineStruct('version', 4, { major: ['u16', 0], minor: ['u16', 2] });

/** DMA_MAP request, 32 bytes (QEMU spec "VFIO_USER_DMA_MAP"). */
export const DmaMap = defineStruct('dma_map', 32, {
  argsz: ['u32', 0],
  flags: ['u32', 4],
  offset: ['u64', 8],
  addr: ['u64', 16],
  size: ['u64', 24],
});

/** DMA_UNMAP request and reply, 24 bytes (QEMU spec "VFIO_USER_DMA_UNMAP": the reply repeats the entry). */
export const DmaUnmap = defineStruct('dma_unmap', 24, {
  argsz: ['u32', 0],
  flags: ['u32', 4],
  addr: ['u64', 8],
  size: ['u64', 16],
});

/** DEVICE_GET_INFO request and reply, 16 bytes (QEMU spec; struct vfio_device_info). */
export const DeviceInfo = defineStruct('device_info', 16, {
  argsz: ['u32', 0],
  flags: ['u32', 4],
  numRegions: ['u32', 8],
  numIrqs: ['u32', 12],
});

/** DEVICE_GET_REGION_INFO request and reply, 32 bytes before the capabilities (struct vfio_region_info). */
export const RegionInfo = defineStruct('region_info', 32, {
  argsz: ['u32', 0],
  flags: ['u32', 4],
  index: ['u32', 8],
  capOffset: ['u32', 12],
  size: ['u64', 16],
  offset: ['u64', 24],
});

/** struct vfio_info_cap_header (vfio.h; QEMU spec "VFIO cap header format"). `next` is from the region info start. */
export const CapHeader = defineStruct('vfio_info_cap_header', 8, { id: ['u16', 0], version: ['u16', 2], next: ['u32', 4] });

/** struct vfio_region_info_cap_sparse_mmap after its cap header (QEMU spec "VFIO region info cap sparse mmap"). */
export const SparseMmapHead = defineStruct('sparse_mmap', 8, { nrAreas: ['u32', 0], reserved: ['u32', 4] });
export const SparseMmapArea = defineStruct('sparse_mmap_area', 16, { offset: ['u64', 0], size: ['u64', 8] });

/** struct vfio_region_info_cap_type after its cap header (vfio.h). */
export const RegionCapType = defineStruct('region_cap_type', 8, { type: ['u32', 0], subtype: ['u32', 4] });

/** DEVICE_GET_REGION_IO_FDS request/reply head, 16 bytes (QEMU spec). */
export const RegionIoFds = defineStruct('region_io_fds', 16, {
  argsz: ['u32', 0],
  flags: ['u32', 4],
  index: ['u32', 8],
  count: ['u32', 12],
});

/** DEVICE_GET_IRQ_INFO request and reply, 16 bytes (struct vfio_irq_info). */
export const IrqInfo = defineStruct('irq_info', 16, {
  argsz: ['u32', 0],
  flags: ['u32', 4],
  index: ['u32', 8],
  count: ['u32', 12],
});

/** DEVICE_SET_IRQS request before its data, 20 bytes (struct vfio_irq_set). */
export const IrqSet = defineStruct('irq_set', 20, {
  argsz: ['u32', 0],
  flags: ['u32', 4],
  index: ['u32', 8],
  start: ['u32', 12],
  count: ['u32', 16],
});

/** REGION_READ / REGION_WRITE request and reply head, 16 bytes (QEMU spec). */
export const RegionAccess = defineStruct('region_access', 16, {
  offset: ['u64', 0],
  region: ['u32', 8],
  count: ['u32', 12],
});

/** REGION_WRITE_MULTI: u64 wr_cnt, then 24-byte writes with at most 8 data bytes each (QEMU spec). */
export const WriteMultiHead = defineStruct('write_multi', 8, { wrCnt: ['u64', 0] });
export const WriteMultiOne = defineStruct('write_multi_one', 24, {
  offset: ['u64', 0],
  region: ['u32', 8],
  count: ['u32', 12],
  data: ['u64', 16],
});

/**
 * DMA_READ / DMA_WRITE (server → client) head: u64 address, u64 count (QEMU spec). The spec's table for the
 * DMA_WRITE *reply* gives count 4 bytes; libvfio-user (lib/libvfio-user.c vfu_dma_transfer) compares a reply of
 * sizeof(struct vfio_user_dma_region_access) = 16 bytes with its request, so the reply is sent with an 8-byte count
 * here — a reader of a 4-byte count at offset 8 reads the same value (little-endian, count < 4 GiB). [inference]
 */
export const DmaAccess = defineStruct('dma_access', 16, { addr: ['u64', 0], count: ['u64', 8] });

/** DEVICE_FEATURE head, 8 bytes (QEMU spec; struct vfio_device_feature). */
export const FeatureHead = defineStruct('device_feature', 8, { argsz: ['u32', 0], flags: ['u32', 4] });

/** MIGRATION feature data (QEMU spec: u64 flags). */
export const MigrationFlags = defineStruct('mig_flags', 8, { flags: ['u64', 0] });

/** MIG_DEVICE_STATE feature data (QEMU spec: u32 device_state, u32 data_fd unused). */
export const MigDeviceState = defineStruct('mig_device_state', 8, { deviceState: ['u32', 0], dataFd: ['u32', 4] });

/** DMA_LOGGING_START data head and ranges (QEMU spec). */
export const DmaLoggingControl = defineStruct('dma_logging_control', 16, {
  pageSize: ['u64', 0],
  numRanges: ['u32', 8],
  reserved: ['u32', 12],
});
export const DmaLoggingRange = defineStruct('dma_logging_range', 16, { iova: ['u64', 0], length: ['u64', 8] });

/** DMA_LOGGING_REPORT request data; the reply repeats it and appends the bitmap at offset 24 (QEMU spec). */
export const DmaLoggingReport = defineStruct('dma_logging_report', 24, {
  iova: ['u64', 0],
  length: ['u64', 8],
  pageSize: ['u64', 16],
});

/** MIG_DATA_READ request (8 bytes) and reply head; MIG_DATA_WRITE request head (QEMU spec). */
export const MigData = defineStruct('mig_data', 8, { argsz: ['u32', 0], size: ['u32', 4] });
