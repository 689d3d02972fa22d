/**
 * An in-memory VgpuService for the Kubernetes plugins' unit tests: GPUs and vGPUs as plain records, with the bus
 * events the lifecycle emits (vgpu:state on create/destroy/state change, gpu:lost/gpu:ready). It checks nothing a
 * real service would (FB, types per policy): the tests here are about what the faces do with the service.
 */
import type { EventBus } from '../../../core/contracts/events.js';
import { ErrorCode, VgpuError } from '../../../core/contracts/exceptions.js';
import type { VgpuState } from '../../../core/contracts/events.js';
import type { CreateVgpuRequest, GpuSummary, VgpuInfo, VgpuService, VgpuTypeInfo } from '../../../core/contracts/vgpu-service.js';

export const TYPE_NAMES: Record<number, string> = { 941: 'NVIDIA RTX6000-Ada-1Q', 946: 'NVIDIA RTX6000-Ada-8Q', 949: 'NVIDIA RTX6000-Ada-24Q' };
const FB: Record<number, bigint> = { 941: 1n << 30n, 946: 8n << 30n, 949: 24n << 30n };

export class FakeVgpuService implements VgpuService {
  readonly gpuList: GpuSummary[] = [];
  private readonly vgpus = new Map<string, VgpuInfo>();
  private next = 1;

  constructor(private readonly bus: EventBus, gpus: { bdf: string; numaNode?: number; name?: string }[]) {
    for (const [i, g] of gpus.entries()) {
      this.gpuList.push({
        bdf: g.bdf, name: g.name ?? 'NVIDIA RTX 6000 Ada Generation', halId: 'fake', pciDeviceId: 0x26b1, pciVendorId: 0x10de, index: i,
        ...(g.numaNode !== undefined ? { numaNode: g.numaNode } : {}),
        firmwareVersion: '570.144', state: 'ready', policy: 'heterogeneous', totalVfs: 32,
        fb: { total: 48n << 30n, used: 0n, free: 48n << 30n, stranded: 0n, largestFree: 48n << 30n }, vgpus: 0,
      });
    }
  }

  gpus(): GpuSummary[] {
    return this.gpuList.map((g) => ({ ...g, vgpus: [...this.vgpus.values()].filter((v) => v.gpu === g.bdf).length }));
  }

  types(gpu: string): VgpuTypeInfo[] {
    if (!this.gpuList.some((g) => g.bdf === gpu)) throw new VgpuError(ErrorCode.NotFound, `no GPU ${gpu}`);
    return Object.entries(TYPE_NAMES).map(([id, name]) => ({
      id: Number(id), name, series: 'Q', fbBytes: FB[Number(id)]! - (64n << 20n), profileFbBytes: FB[Number(id)]!,
      guestFbBytes: FB[Number(id)]! - (64n << 20n), maxInstances: 32, heads: 4, maxResolution: '7680x4320',
      available: 32 - [...this.vgpus.values()].filter((v) => v.gpu === gpu).length,
    }));
  }

  list(filter?: { gpu?: string }): VgpuInfo[] {
    return [...this.vgpus.values()].filter((v) => filter?.gpu === undefined || v.gpu === filter.gpu).map((v) => ({ ...v }));
  }

  get(id: string): VgpuInfo {
    const v = this.vgpus.get(id);
    if (v === undefined) throw new VgpuError(ErrorCode.NotFound, `no vGPU ${id}`);
    return { ...v };
  }

  async create(req: CreateVgpuRequest): Promise<VgpuInfo> {
    const gpu = this.gpuList.find((g) => g.bdf === req.gpu);
    if (gpu === undefined) throw new VgpuError(ErrorCode.NotFound, `no GPU ${req.gpu}`);
    const typeId = typeof req.type === 'number' ? req.type
      : Number(Object.entries(TYPE_NAMES).find(([, n]) => n === req.type || n.endsWith(`-${String(req.type)}`) || n === `NVIDIA ${String(req.type)}`)?.[0]);
    if (!TYPE_NAMES[typeId]) throw new VgpuError(ErrorCode.UnknownType, `no type ${String(req.type)}`);
    const used = new Set([...this.vgpus.values()].filter((v) => v.gpu === req.gpu).map((v) => v.vf));
    const vf = req.vf ?? [...Array(32).keys()].find((i) => !used.has(i));
    if (vf === undefined || used.has(vf)) throw new VgpuError(ErrorCode.NoSpace, 'no free VF');
    const id = `vgpu-${this.next++}`;
    const [dom, bus] = req.gpu.split(':');
    const fn = 4 + vf;
    const v: VgpuInfo = {
      id, gpu: req.gpu, vf, vfBdf: `${dom}:${bus}:${(fn >> 3).toString(16).padStart(2, '0')}.${fn & 7}`, gfid: vf + 1, typeId,
      typeName: TYPE_NAMES[typeId]!, state: 'creating', fb: { offset: BigInt(vf) << 30n, size: FB[typeId]! }, chids: { offset: vf * 64, count: 64 },
      createdAt: Date.now(), inUse: false, ...(req.requestId !== undefined ? { requestId: req.requestId } : {}),
    };
    this.vgpus.set(id, v);
    this.bus.emit('vgpu:state', { gpu: v.gpu, vgpuId: id, vf, from: null, to: 'creating' });
    this.setState(id, 'ready');
    return { ...this.vgpus.get(id)! };
  }

  async destroy(id: string, opts: { force?: boolean } = {}): Promise<void> {
    const v = this.get(id);
    if (v.inUse && opts.force !== true) throw new VgpuError(ErrorCode.Busy, `${id} is in use`);
    this.setState(id, 'stopping');
    this.vgpus.delete(id);
    this.bus.emit('vgpu:state', { gpu: v.gpu, vgpuId: id, vf: v.vf, from: 'stopping', to: 'destroyed' });
  }

  /** Test control: move a vGPU to another state (emits vgpu:state). */
  setState(id: string, to: VgpuState): void {
    const v = this.vgpus.get(id)!;
    const from = v.state;
    v.state = to;
    this.bus.emit('vgpu:state', { gpu: v.gpu, vgpuId: id, vf: v.vf, from, to });
  }

  /** Test control: patch a vGPU record (e.g. its vfio-user socket), no event. */
  patch(id: string, p: Partial<VgpuInfo>): void {
    Object.assign(this.vgpus.get(id)!, p);
  }

  /** Test control: the GPU is lost (every vGPU 'lost') or back. */
  setGpuState(bdf: string, state: GpuSummary['state']): void {
    const g = this.gpuList.find((x) => x.bdf === bdf)!;
    g.state = state;
    if (state === 'lost') {
      this.bus.emit('gpu:lost', { gpu: bdf, reason: 'test' });
      for (const v of this.vgpus.values()) if (v.gpu === bdf) this.setState(v.id, 'lost');
    } else if (state === 'ready') this.bus.emit('gpu:ready', { gpu: bdf });
  }

  readVfAttribute(): string { return '0\n'; }
  writeVfAttribute(): void {}
  setPolicy(): void {}
  logs(): string[] { return []; }
}
