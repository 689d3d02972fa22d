/**
 * VgpuHolders over the kubelet's PodResources API: which pod holds each vGPU.
 *
 * The API has no watch (v1 has List and Get only), and polling it would cost an idle node a call every few
 * seconds forever. Instead it is asked when someone reads — `vgpuctl list`, a metrics scrape, a layout about to
 * destroy vGPUs — and what it said is reused for `maxAgeMs`. An Allocate by the device plugin ('device:allocated')
 * or a vGPU leaving ('vgpu:state' destroyed) marks the answer stale at once.
 *
 * A device id maps to a vGPU by its VF's PCI address (what vgpud's device plugin and KubeVirt's PCI device plugin
 * both use as the id) or by the vGPU id. Devices of other resources (CPUs, NICs, whole GPUs) match nothing.
 * No socket: nobody holds anything, quietly (not a Kubernetes node, or the kubelet is down).
 */
import { existsSync } from 'node:fs';
import type { EventBus } from '../../core/contracts/events.js';
import type { Logger } from '../../core/contracts/logger.js';
import type { VgpuHolder, VgpuHolders } from '../../core/contracts/vgpu-holders.js';
import type { VgpuService } from '../../core/contracts/vgpu-service.js';
// Type-only: the PodResources client (gRPC) is loaded on the first ask, so a host without a kubelet never loads it.
import type { PodDevices } from './pod-resources-client.js';

export interface HolderCacheOptions {
  socket: string;
  maxAgeMs: number;
  timeoutMs: number;
}

const EMPTY: ReadonlyMap<string, VgpuHolder> = new Map();

export class HolderCache implements VgpuHolders {
  private opts: HolderCacheOptions | undefined;
  private service: VgpuService | undefined;
  private log: Logger | undefined;
  private known: ReadonlyMap<string, VgpuHolder> = EMPTY;
  private fetchedAt = -Infinity;
  private stale = true;
  private inflight: Promise<ReadonlyMap<string, VgpuHolder>> | undefined;
  private lastError: string | undefined;
  private detach: (() => void) | undefined;
  /** PodResources calls made (tests check that an idle daemon makes none). */
  calls = 0;

  /** Start answering (until then, and when the section is off, nobody holds anything). */
  configure(opts: HolderCacheOptions, service: VgpuService, bus: EventBus, log: Logger): void {
    this.opts = opts;
    this.service = service;
    this.log = log;
    const off = [
      bus.on('device:allocated', () => { this.stale = true; }),
      bus.on('vgpu:state', (e) => { if (e.to === 'destroyed' || e.to === 'ready') this.stale = true; }),
    ];
    this.detach = () => { for (const f of off) f(); };
  }

  stop(): void {
    this.detach?.();
    this.detach = undefined;
    this.opts = undefined;
    this.known = EMPTY;
  }

  cached(): ReadonlyMap<string, VgpuHolder> {
    return this.known;
  }

  current(): Promise<ReadonlyMap<string, VgpuHolder>> {
    const o = this.opts;
    if (o === undefined) return Promise.resolve(EMPTY);
    if (!this.stale && performance.now() - this.fetchedAt < o.maxAgeMs) return Promise.resolve(this.known);
    this.inflight ??= this.fetch(o).finally(() => { this.inflight = undefined; });
    return this.inflight;
  }

  private async fetch(o: HolderCacheOptions): Promise<ReadonlyMap<string, VgpuHolder>> {
    this.stale = false;
    if (!existsSync(o.socket)) {
      this.fetchedAt = performance.now();
      return (this.known = EMPTY);
    }
    try {
      this.calls++;
      const { listPodDevices } = await import('./pod-resources-client.js');
      const rows = await listPodDevices(o.socket, o.timeoutMs);
      this.fetchedAt = performance.now();
      this.known = this.match(rows);
      if (this.lastError !== undefined) this.log?.info('the PodResources API answers again', { socket: o.socket });
      this.lastError = undefined;
    } catch (error) {
      // Keep what was known; say so once per distinct failure.
      const text = (error as Error).message;
      if (text !== this.lastError) this.log?.warn('cannot read who holds the vGPUs; showing what was last known', { error });
      this.lastError = text;
      this.stale = true;
    }
    return this.known;
  }

  private match(rows: PodDevices[]): Map<string, VgpuHolder> {
    const byDevice = new Map<string, string>();
    for (const v of this.service?.list() ?? []) {
      byDevice.set(v.vfBdf.toLowerCase(), v.id);
      byDevice.set(v.id, v.id);
    }
    const out = new Map<string, VgpuHolder>();
    for (const r of rows) {
      for (const d of r.deviceIds) {
        const id = byDevice.get(d.toLowerCase()) ?? byDevice.get(d);
        if (id !== undefined) out.set(id, { namespace: r.namespace, pod: r.pod, container: r.container, resource: r.resource });
      }
    }
    return out;
  }
}
