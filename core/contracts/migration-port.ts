/**
 * MigrationPort contract: one vGPU's VFIO migration state machine and data stream, as a VMM drives them itself
 * (vfio-user DEVICE_FEATURE MIG_DEVICE_STATE, MIG_DATA_READ/WRITE) rather than `vgpuctl migrate`. Bound to
 * TOKENS.MigrationPort by the migration plugin; the vfio-user face calls it. States and arcs are VFIO's (vfio.h
 * enum vfio_device_mig_state): a refused arc throws (VGPU_EINVAL), a failed one leaves the device in ERROR or its
 * original state (vfio.h allows both) and throws.
 */
export interface MigrationPort {
  /** VFIO_MIGRATION_* flags the vGPU supports (STOP_COPY | P2P | PRE_COPY). */
  flags(vgpuId: string): number;
  state(vgpuId: string): number;
  setState(vgpuId: string, state: number): Promise<void>;
  /** Up to `max` bytes of the saving stream; an empty answer = nothing more for now (PRE_COPY) or the end. */
  read(vgpuId: string, max: number): Promise<Buffer>;
  /** Bytes of the resuming stream (RESUMING only). */
  write(vgpuId: string, data: Buffer): Promise<void>;
  /** VFIO_DEVICE_RESET through the state machine (ends any session, back to RUNNING, then the vGPU's reset). */
  reset(vgpuId: string): Promise<void>;
}
