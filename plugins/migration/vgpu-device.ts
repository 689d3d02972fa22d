/**
 * A lifecycle vGPU as a MigrationDevice: its guest FB (FbRegion over the FB mapping), its compatibility data, its
 * mailbox for the migration RPCs (HostRpcChannel + the host mapping of the mgmt heap, whose comm area holds the
 * 2 MiB migration buffer) and its reset. The guest (vCPU stop/start and the dirty log a real device would keep)
 * is attached separately: see MigrationService.attachGuest.
 */
import { ErrorCode, VgpuError } from '../../core/contracts/exceptions.js';
import type { NativeOps } from '../../native/native-ops.js';
import type { GpuLifecycle } from '../lifecycle/gpu-lifecycle.js';
import type { VgpuRecord } from '../lifecycle/vgpu-record.js';
import { HashDirtyTracker, type DirtySource } from './dirty-tracker.js';
import type { MigrationDevice } from './device-migration.js';
import { MailboxMigrationClient } from './mailbox-migration-client.js';
import { mappingRegion, type VgpuFbRegion } from './mapping-region.js';
import type { MigrationCompat } from './stream/compat.js';

export const MIGRATION_PAGE_SIZE = 4096;

export class VgpuMigrationDevice implements MigrationDevice {
  readonly id: string;
  readonly firmware: MailboxMigrationClient;
  private fb: VgpuFbRegion | null = null;
  /** Set by the service when a guest with a dirty log is attached. */
  dirtyProvider: (() => DirtySource | null) | null = null;

  constructor(readonly lc: GpuLifecycle, readonly rec: VgpuRecord, private readonly ops?: NativeOps, timeoutMs = 30_000) {
    this.id = rec.id;
    const channel = rec.res.channel;
    const mapping = rec.res.heapMapping;
    if (rec.state !== 'ready' || channel === undefined || mapping === undefined || rec.res.guestFb === undefined) {
      throw new VgpuError(ErrorCode.IllegalState, `vGPU ${rec.id} is ${rec.state}: only a ready vGPU can migrate`, {
        hint: 'wait for the create to finish', details: { vgpu: rec.id, state: rec.state },
      });
    }
    this.firmware = new MailboxMigrationClient({ caller: channel, mapping, timeoutMs });
  }

  compat(): MigrationCompat {
    const r = this.rec;
    return {
      vgpuTypeId: r.type.id, vgpuTypeName: r.type.name, fbBytes: r.res.guestFb!.size, chidCount: r.res.chids?.count ?? 0,
      firmwareVersion: this.lc.mgr.firmwareVersion, pciVdevId: r.vf.deviceId, pageSize: MIGRATION_PAGE_SIZE,
    };
  }

  region(): VgpuFbRegion {
    this.fb ??= mappingRegion(this.lc.gpu.memory, this.rec.res.guestFb!, this.ops);
    return this.fb;
  }

  dirtySource(): DirtySource {
    return this.dirtyProvider?.() ?? new HashDirtyTracker(this.region(), MIGRATION_PAGE_SIZE);
  }

  reset(): Promise<void> {
    return this.lc.reset(this.rec.id);
  }

  /** Drop the FB mapping (the vGPU is being destroyed or left the service). */
  close(): void {
    try { this.fb?.close(); } catch { /* the range may already be freed with its mappings */ }
    this.fb = null;
  }
}
