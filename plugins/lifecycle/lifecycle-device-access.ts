/**
 * VgpuDeviceAccess (core/contracts/vgpu-device-access.ts) over the lifecycle's own records: publishes a vGPU's
 * resources (guest FB, mailbox, comm-buffer mapping, reset) in core terms, so the migration plugin (and later the
 * vfio-user face) never imports GpuLifecycle or VgpuRecord. Bound to TOKENS.VgpuDeviceAccess by the lifecycle
 * plugin.
 */
import { inject, injectable } from 'inversify';
import type { VgpuState } from '../../core/contracts/events.js';
import type { FbRange, FramebufferMemory, HostMapping } from '../../core/contracts/memory.js';
import type { VgpuDeviceAccess, VgpuDeviceHandle, VgpuRpcCaller } from '../../core/contracts/vgpu-device-access.js';
import type { VgpuInfo } from '../../core/contracts/vgpu-service.js';
import { ErrorCode, VgpuError } from '../../core/contracts/exceptions.js';
import type { GpuLifecycle } from './gpu-lifecycle.js';
import type { VgpuRecord } from './vgpu-record.js';
import { VgpuServiceImpl } from './vgpu-service-impl.js';

/** What the adapter needs of VgpuServiceImpl (tests pass the service itself). */
export interface LifecycleLookup {
  get(id: string): VgpuInfo;
  lifecycle(bdf: string): GpuLifecycle;
}

@injectable()
export class LifecycleDeviceAccess implements VgpuDeviceAccess {
  constructor(@inject(VgpuServiceImpl) private readonly svc: LifecycleLookup) {}

  device(id: string): VgpuDeviceHandle {
    // get() throws VGPU_ENOENT for an unknown id; the record lookup guards a record retired in between.
    const info = this.svc.get(id);
    const lc = this.svc.lifecycle(info.gpu);
    const rec = lc.record(id);
    if (rec === undefined) throw new VgpuError(ErrorCode.NotFound, `no vGPU ${id}`, { hint: 'list the vGPUs for their ids' });
    return new LifecycleVgpuHandle(lc, rec);
  }
}

/** Live view of one record: every getter reads the record now (resources come and go with create/destroy). */
class LifecycleVgpuHandle implements VgpuDeviceHandle {
  constructor(private readonly lc: GpuLifecycle, private readonly rec: VgpuRecord) {}

  get id(): string { return this.rec.id; }
  get gpu(): string { return this.rec.gpu; }
  get vfBdf(): string { return this.rec.vf.bdf; }
  get vfDeviceId(): number { return this.rec.vf.deviceId; }
  get state(): VgpuState { return this.rec.state; }
  get typeId(): number { return this.rec.type.id; }
  get typeName(): string { return this.rec.type.name; }
  get firmwareVersion(): string { return this.lc.mgr.firmwareVersion; }
  get memory(): FramebufferMemory { return this.lc.gpu.memory; }
  get guestFb(): FbRange | undefined { return this.rec.res.guestFb; }
  get chids(): { offset: number; count: number } | undefined { return this.rec.res.chids; }
  get rpc(): VgpuRpcCaller | undefined { return this.rec.res.channel; }
  get commMapping(): HostMapping | undefined { return this.rec.res.heapMapping; }

  reset(): Promise<void> {
    return this.lc.reset(this.rec.id);
  }

  setBme(enable: boolean): Promise<void> {
    return this.lc.setBme(this.rec.id, enable);
  }

  setExposure(e: { socket: string; pid: number | null } | null): void {
    this.lc.setExposure(this.rec.id, e);
  }
}
