/**
 * What a device front asks of the vGPU manager (the daemon), per vGPU. In the front process this goes over the
 * control channel (front-control-server.ts); in worker mode the daemon plugin implements it directly. Calls made
 * while the daemon is away fail with EAGAIN; notifications are dropped (the daemon re-reads the front's state when it
 * connects again).
 */
export interface FrontManager {
  reset(vgpuId: string): Promise<void>;
  migrationState(vgpuId: string): Promise<number>;
  /** `fbByCaller`: this front moves the FB pages itself (MigrationStateOptions.fbByCaller). */
  setMigrationState(vgpuId: string, state: number, fbByCaller?: boolean): Promise<void>;
  /** The vGPU's migration compatibility data (MigrationPort.compat): what a stream's header must match. */
  migrationCompat(vgpuId: string): Promise<string>;
  migrationRead(vgpuId: string, max: number): Promise<Buffer>;
  migrationWrite(vgpuId: string, data: Buffer): Promise<void>;
  /** Bus Master Enable changed (notification). */
  busMaster(vgpuId: string, on: boolean): void;
  /** A VMM attached (pid) or left (null) (notification). */
  client(vgpuId: string, pid: number | null): void;
  /** A VMM connected to a VF that has only a type selected: create its vGPU (upstream's VFIO open). */
  open(vfIndex: number): Promise<{ vgpuId: string; migrationFlags: number }>;
  /** The VMM of such a VF left: destroy the vGPU (upstream's VFIO close) (notification). */
  close(vgpuId: string): void;
}
