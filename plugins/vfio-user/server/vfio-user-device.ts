/**
 * What the protocol server needs from a device. The server (vfio-user-session.ts and its command handlers) parses,
 * validates and answers messages; the device gives them meaning. A refusal is thrown as `refuse(errno, …)`
 * (protocol/protocol-error.ts) and reaches the client as an error reply with that errno.
 *
 * The vGPU implements this in device/vgpu-pci-device.ts; protocol tests use small fakes.
 */
export interface SparseArea {
  offset: bigint;
  size: bigint;
}

export interface RegionInfo {
  /** RegionFlags bits (READ/WRITE/MMAP/CAPS are set by the server from the fields below). */
  readable: boolean;
  writable: boolean;
  size: bigint;
  /** For a mmap-able region: the descriptor to send and the offset to give mmap() (region offset in that file). */
  mmap?: { fd: number; offset: bigint; areas: SparseArea[] };
}

export interface IrqInfo {
  /** IrqInfoFlags bits. */
  flags: number;
  count: number;
}

export interface IrqSetRequest {
  flags: number;
  index: number;
  start: number;
  count: number;
  /** DATA_BOOL: one byte per sub-index. */
  bools?: Uint8Array;
  /** DATA_EVENTFD: one descriptor per sub-index, or none to de-assign. The device owns them once it accepts. */
  fds?: number[];
}

/** What the device can ask of the connected client: DMA into its memory, through the server's map. */
export interface DmaPort {
  read(iova: bigint, length: number): Promise<Buffer>;
  write(iova: bigint, data: Uint8Array): Promise<void>;
}

export interface ClientInfo {
  pid: number;
  uid: number;
  gid: number;
}

export interface VfioUserDevice {
  readonly deviceFlags: number;
  readonly numRegions: number;
  readonly numIrqs: number;
  /** Throws refuse(EINVAL) for an index the device does not have. */
  regionInfo(index: number, opts: { canSendFd: boolean }): RegionInfo;
  /** Offsets and counts are already checked against the region's size and readable/writable flags. */
  regionRead(index: number, offset: bigint, count: number): Uint8Array;
  /**
   * Optional fast form of regionRead for a trapped register access: when `count` bytes of region `index` at
   * `offset` are in range, readable, and a read this device serves without allocating, write them to `out` at `at`
   * and return true — the same bytes regionRead would return, with the same effects. Otherwise return false having
   * done nothing (the server then takes the general path, which also reports any error); never throws.
   */
  readRegisterInto?(index: number, offset: number, count: number, out: Buffer, at: number): boolean;
  /**
   * A write whose effect takes time (an FLR through config space) returns a promise: the server answers the write,
   * and runs the client's next command, only once it settles — commands are processed in order (vfio-user.rst
   * "Command Concurrency"), so the next one sees the write's effect.
   */
  regionWrite(index: number, offset: bigint, data: Uint8Array): void | Promise<void>;
  irqInfo(index: number): IrqInfo;
  /** A request the server validated against irqInfo (index, range, data size). */
  setIrqs(req: IrqSetRequest): void;
  reset(): Promise<void>;
  /**
   * DEVICE_FEATURE for a feature the server does not handle itself (it handles DMA logging). Returns the GET data;
   * for SET and PROBE returns null (the server echoes the request). Throws refuse(ENOTTY) for an unknown feature.
   * `argsz` is the request's (the largest reply the client takes, header included).
   */
  feature(feature: number, flags: number, data: Buffer, argsz: number): Promise<Buffer | null>;
  /** Up to `max` bytes; may copy them into `alloc`'s buffer (FbStream.read, core/contracts/migration-port.ts). */
  migrationRead(max: number, alloc?: (length: number) => Buffer): Promise<Buffer>;
  migrationWrite(data: Buffer): Promise<void>;
  /** A client connected (after VERSION): its credentials and a port for DMA. */
  attach(client: ClientInfo, dma: DmaPort): void;
  /** The client went away: drop its interrupt descriptors and anything tied to it (the device state stays). */
  detach(): void;
}
