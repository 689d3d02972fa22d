/**
 * What the VF's vfio-user face needs from the vGPU manager (the daemon): the things only it can do — reset the vGPU
 * (its firmware task's RESET and the FB scrub), run the migration state machine and its data stream, and learn of
 * bus-mastering changes (UPDATE_BME_STATE to the firmware task). In the front process these travel over the control
 * channel; when the daemon is away they fail with EAGAIN ("try again once vgpud is back") and nothing changes.
 */
export interface ManagerLink {
  reset(): Promise<void>;
  /** VFIO_MIGRATION_* flags the vGPU offers (0: no migration through this face). */
  migrationFlags(): number;
  migrationState(): Promise<number>;
  /** Walk to `state` (the FSM's arcs); resolves when the device is there. */
  setMigrationState(state: number): Promise<void>;
  /** Up to `max` bytes of the saving stream; fewer = no more for now (PRE_COPY) or the end (STOP_COPY). */
  migrationRead(max: number, alloc?: (length: number) => Buffer): Promise<Buffer>;
  migrationWrite(data: Buffer): Promise<void>;
  /** Bus Master Enable changed in config space (fire and forget). */
  busMaster(on: boolean): void;
}
