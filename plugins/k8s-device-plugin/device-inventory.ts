/**
 * What the device plugin advertises, computed from the VgpuService: one resource per vGPU type present, each with
 * its vGPUs as devices. A device's id is its VF's PCI address — the id NVIDIA's KubeVirt device plugin gives the same
 * VF (NVIDIA/kubevirt-gpu-device-plugin pkg/device_plugin/vfio_vgpu.go), stable across daemon restarts because the
 * journal re-attaches every vGPU on its VF, and the value KubeVirt needs in PCI_RESOURCE_* anyway.
 *
 * A device is Healthy when its vGPU is ready, its GPU is ready, no fatal exception hit it since, and no re-layout
 * is running ('layout:begin' … 'layout:end': the node's resources are out of service, so the kubelet hands none out
 * while the vGPUs change under it). vGPUs being created or destroyed are not advertised; failed and lost ones are,
 * Unhealthy, so the kubelet sees what happened to a device it may have allocated.
 *
 * Bus events only mark the inventory dirty; listeners get one 'change' per turn of the event loop however many
 * events came (a layout of 32 vGPUs is a burst of ~100 events).
 */
import { EventEmitter } from 'eventemitter3';
import type { EventBus } from '../../core/contracts/events.js';
import type { Logger } from '../../core/contracts/logger.js';
import type { VgpuService } from '../../core/contracts/vgpu-service.js';
import { DP_API } from './device-plugin-config.js';
import { resourceNameFor, resourceNameProblem } from './resource-names.js';

export interface AdvertisedDevice {
  /** Device id the kubelet sees: the VF's PCI address. */
  id: string;
  vgpu: string;
  gpu: string;
  health: typeof DP_API.healthy | typeof DP_API.unhealthy;
  /** Why the device is Unhealthy. */
  reason?: string;
  numaNode?: number;
  /** The vGPU's vfio-user socket, when that face serves it. */
  vfioUserSocket?: string;
}

const ADVERTISED_STATES = new Set(['ready', 'failed', 'lost']);

export class DeviceInventory extends EventEmitter<{ change: [] }> {
  private layout: string | undefined;
  private readonly faultedVgpus = new Map<string, string>();
  private readonly faultedGpus = new Map<string, string>();
  private readonly badNames = new Set<string>();
  private scheduled = false;

  constructor(private readonly service: VgpuService, private readonly prefix: string, private readonly log: Logger) {
    super();
  }

  /** Follow the bus; returns unsubscribe. */
  attach(bus: EventBus): () => void {
    const dirty = (): void => this.markDirty();
    const offs = [
      bus.on('vgpu:state', (e) => {
        if (e.to === 'ready' || e.to === 'destroyed') this.faultedVgpus.delete(e.vgpuId); // a reset or a new vGPU starts clean
        dirty();
      }),
      bus.on('gpu:ready', (e) => { this.faultedGpus.delete(e.gpu); dirty(); }),
      bus.on('gpu:lost', dirty),
      bus.on('gpu:probed', dirty),
      bus.on('host:event', dirty),
      bus.on('exception', (e) => {
        if (!e.fatal) return;
        const v = e.gfid !== undefined && e.gfid > 0 ? this.service.list({ gpu: e.gpu }).find((x) => x.gfid === e.gfid) : undefined;
        if (v !== undefined) this.faultedVgpus.set(v.id, `${e.kind}: ${e.message}`);
        else this.faultedGpus.set(e.gpu, `${e.kind}: ${e.message}`);
        dirty();
      }),
      bus.on('layout:begin', (e) => { this.layout = e.config; dirty(); }),
      bus.on('layout:end', () => { this.layout = undefined; dirty(); }),
    ];
    return () => { for (const off of offs) off(); };
  }

  /** True while a re-layout keeps the resources out of service. */
  get outOfService(): boolean {
    return this.layout !== undefined;
  }

  markDirty(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.emit('change');
    });
  }

  /** Resource name → its devices (sorted by id), now. */
  resources(): Map<string, AdvertisedDevice[]> {
    const gpus = new Map(this.service.gpus().map((g) => [g.bdf, g]));
    const out = new Map<string, AdvertisedDevice[]>();
    for (const v of this.service.list()) {
      if (!ADVERTISED_STATES.has(v.state)) continue;
      const resource = resourceNameFor(this.prefix, v.typeName);
      const problem = resourceNameProblem(resource);
      if (problem !== undefined) {
        if (!this.badNames.has(resource)) {
          this.badNames.add(resource);
          this.log.error('a vGPU type cannot be advertised: its resource name is not one the kubelet takes', { resource, problem, type: v.typeName });
        }
        continue;
      }
      const g = gpus.get(v.gpu);
      const reason = v.state !== 'ready' ? `vGPU ${v.id} is ${v.state}${v.error ? ` (${v.error.message})` : ''}`
        : g === undefined || g.state !== 'ready' ? `GPU ${v.gpu} is ${g?.state ?? 'gone'}`
          : this.faultedGpus.has(v.gpu) ? `GPU ${v.gpu}: ${this.faultedGpus.get(v.gpu)}`
            : this.faultedVgpus.has(v.id) ? `vGPU ${v.id}: ${this.faultedVgpus.get(v.id)}`
              : this.layout !== undefined ? `re-layout to config "${this.layout}" running`
                : undefined;
      const d: AdvertisedDevice = {
        id: v.vfBdf, vgpu: v.id, gpu: v.gpu, health: reason === undefined ? DP_API.healthy : DP_API.unhealthy,
        ...(reason !== undefined ? { reason } : {}),
        ...(g?.numaNode !== undefined ? { numaNode: g.numaNode } : {}),
        ...(v.vfioUser?.socket !== undefined ? { vfioUserSocket: v.vfioUser.socket } : {}),
      };
      out.set(resource, [...(out.get(resource) ?? []), d]);
    }
    for (const list of out.values()) list.sort((a, b) => a.id.localeCompare(b.id));
    return out;
  }
}
