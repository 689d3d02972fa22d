/**
 * A vGPU as a MigrationDevice, reached only through the core's VgpuDeviceAccess contract (never the lifecycle
 * plugin's classes): its guest FB (FbRegion over the FB mapping), its compatibility data, its mailbox for the
 * migration RPCs (the RPC caller + the host mapping of the mgmt heap's comm buffer, which holds the 2 MiB migration
 * buffer) and its reset. The guest (vCPU stop/start and the dirty log a real device would keep)
 * is attached separately: see MigrationService.attachGuest.
 */
import { ErrorCode, VgpuError } from '../../core/contracts/exceptions.js';
import type { VgpuDeviceHandle } from '../../core/contracts/vgpu-device-access.js';
import type { NativeOps } from '../../native/native-ops.js';
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

  constructor(readonly vgpu: VgpuDeviceHandle, private readonly ops?: NativeOps, timeoutMs = 30_000) {
    this.id = vgpu.id;
    const caller = vgpu.rpc;
    const mapping = vgpu.commMapping;
    const state = vgpu.state;
    if (state !== 'ready' || caller === undefined || mapping === undefined || vgpu.guestFb === undefined) {
      throw new VgpuError(ErrorCode.IllegalState, `vGPU ${vgpu.id} is ${state}: only a ready vGPU can migrate`, {
        hint: 'wait for the create to finish', details: { vgpu: vgpu.id, state },
      });
    }
    this.firmware = new MailboxMigrationClient({ caller, mapping, timeoutMs });
  }

  compat(): MigrationCompat {
    const v = this.vgpu;
    return {
      vgpuTypeId: v.typeId, vgpuTypeName: v.typeName, fbBytes: v.guestFb!.size, chidCount: v.chids?.count ?? 0,
      firmwareVersion: v.firmwareVersion, pciVdevId: v.vfDeviceId, pageSize: MIGRATION_PAGE_SIZE,
    };
  }

  region(): VgpuFbRegion {
    this.fb ??= mappingRegion(this.vgpu.memory, this.vgpu.guestFb!, this.ops);
    return this.fb;
  }

  dirtySource(): DirtySource {
    return this.dirtyProvider?.() ?? new HashDirtyTracker(this.region(), MIGRATION_PAGE_SIZE);
  }

  reset(): Promise<void> {
    return this.vgpu.reset();
  }

  /** Drop the FB mapping (the vGPU is being destroyed or left the service). */
  close(): void {
    try { this.fb?.close(); } catch { /* the range may already be freed with its mappings */ }
    this.fb = null;
  }
}
