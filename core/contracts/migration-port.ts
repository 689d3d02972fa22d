/**
 * MigrationPort contract: one vGPU's VFIO migration state machine and data stream, as a VMM drives them itself
 * (vfio-user DEVICE_FEATURE MIG_DEVICE_STATE, MIG_DATA_READ/WRITE) rather than `vgpuctl migrate`. Bound to
 * TOKENS.MigrationPort by the migration plugin; the vfio-user face calls it. States and arcs are VFIO's (vfio.h
 * enum vfio_device_mig_state): a refused arc throws (VGPU_EINVAL), a failed one leaves the device in ERROR or its
 * original state (vfio.h allows both) and throws.
 *
 * Two ways to carry the stream. Either the port produces and consumes all of it (read/write), or — when the caller
 * maps the vGPU's FB itself, as the vfio-user device front does — the caller moves the FB pages and the port only
 * the small device state (`fbByCaller`): the stream header, the firmware context and the trailer, in the same
 * stream format. The caller then runs the module named by `fbStreamModule()` (a FbStreamModule), which splices the
 * two into the one stream the VMM sees. The port's state machine stays the authority on arcs and errnos.
 */
export interface MigrationStateOptions {
  /**
   * The caller streams the FB itself: a saving or resuming session opened by this request carries only the device
   * state (header, firmware context, trailer) and moves no FB page.
   */
  fbByCaller?: boolean;
}

export interface MigrationPort {
  /** VFIO_MIGRATION_* flags the vGPU supports (STOP_COPY | P2P | PRE_COPY). */
  flags(vgpuId: string): number;
  state(vgpuId: string): number;
  setState(vgpuId: string, state: number, opts?: MigrationStateOptions): Promise<void>;
  /** Up to `max` bytes of the saving stream; an empty answer = nothing more for now (PRE_COPY) or the end. */
  read(vgpuId: string, max: number): Promise<Buffer>;
  /** Bytes of the resuming stream (RESUMING only). */
  write(vgpuId: string, data: Buffer): Promise<void>;
  /** VFIO_DEVICE_RESET through the state machine (ends any session, back to RUNNING, then the vGPU's reset). */
  reset(vgpuId: string): Promise<void>;
  /** What a destination of this vGPU must match (the stream header's JSON), for a caller that checks it itself. */
  compat?(vgpuId: string): string;
  /** Absolute path of the FbStreamModule a caller that maps the FB may import (null: none). */
  fbStreamModule?(): string | null;
}

/** Where a vGPU's FB slice lives, for a process that maps it: a file, the slice's offset in it, and its size. */
export interface FbSliceFile {
  path: string;
  offset: bigint;
  size: bigint;
}

/** What an FbStream asks of the migration port for its vGPU (over whatever channel reaches it). */
export interface DeviceStateLink {
  state(): Promise<number>;
  /** MigrationPort.setState with `fbByCaller`. */
  setState(state: number): Promise<void>;
  read(max: number): Promise<Buffer>;
  write(data: Buffer): Promise<void>;
  /** MigrationPort.compat. */
  compat(): Promise<string>;
}

/**
 * One vGPU's migration as its VMM drives it, with the FB moved by the process that maps it: the same calls as
 * MigrationPort's for one vGPU. Errors carry the errno VFIO would answer in `details.errno`.
 */
export interface FbStream {
  setState(state: number): Promise<void>;
  /**
   * Up to `max` bytes of the stream; with `alloc` they are copied into the buffer it gives (the reply message,
   * its header room before it), which the caller checks by identity: an implementation may ignore `alloc`.
   */
  read(max: number, alloc?: (length: number) => Buffer): Promise<Buffer>;
  write(data: Buffer): Promise<void>;
  /** The VMM left or the device was reset: drop any session (the port's own state is reset separately). */
  close(): void;
}

/** The module a MigrationPort names in fbStreamModule(). */
export interface FbStreamModule {
  openFbStream(fb: FbSliceFile, link: DeviceStateLink): FbStream;
}
