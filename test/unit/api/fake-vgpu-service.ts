/**
 * An in-memory VgpuService for the API, CLI and layout tests: one RTX 6000 Ada-like GPU (48 GiB, 32 VFs), a few
 * Q types, homogeneous/heterogeneous policy, in-use flags, typed errors like the real manager, bus events on every
 * transition, and failure injection (`failCreateAt`: the Nth create call throws VGPU_ENOSPC).
 */
import { ErrorCode, VgpuError } from '../../../core/contracts/exceptions.js';
import type { EventBus } from '../../../core/contracts/events.js';
import type {
  CreateVgpuRequest, GpuSummary, TypePolicy, VfAttribute, VgpuInfo, VgpuService, VgpuTypeInfo,
} from '../../../core/contracts/vgpu-service.js';

const GiB = 1n << 30n;
export const FAKE_GPU = '0000:41:00.0';
const TOTAL = 48n * GiB;
/** The fake's types give the guest its profile less 128 MiB of management heap, as the real catalogue does. */
const HEAP = 128n << 20n;
/** The fake knows every fact, like the userspace manager (the contract leaves some optional for the sysfs backend). */
type FullType = VgpuTypeInfo & { fbBytes: bigint; profileFbBytes: bigint; guestFbBytes: bigint; maxInstances: number };
type FullVgpu = VgpuInfo & { fb: { offset: bigint; size: bigint }; chids: { offset: number; count: number }; inUse: boolean };
const TYPES: Omit<FullType, 'available'>[] = [
  { id: 1, name: 'NVIDIA RTX6000-Ada-4Q', series: 'Q', fbBytes: 4n * GiB - HEAP, profileFbBytes: 4n * GiB, guestFbBytes: 4n * GiB - HEAP, maxInstances: 12, maxInstancesMixed: 8, heads: 4, maxResolution: '7680x4320' },
  { id: 2, name: 'NVIDIA RTX6000-Ada-8Q', series: 'Q', fbBytes: 8n * GiB - HEAP, profileFbBytes: 8n * GiB, guestFbBytes: 8n * GiB - HEAP, maxInstances: 6, maxInstancesMixed: 4, heads: 4, maxResolution: '7680x4320' },
  { id: 3, name: 'NVIDIA RTX6000-Ada-24Q', series: 'Q', fbBytes: 24n * GiB - HEAP, profileFbBytes: 24n * GiB, guestFbBytes: 24n * GiB - HEAP, maxInstances: 2, maxInstancesMixed: 2, heads: 4, maxResolution: '7680x4320' },
  { id: 4, name: 'NVIDIA RTX6000-Ada-48Q', series: 'Q', fbBytes: 48n * GiB - HEAP, profileFbBytes: 48n * GiB, guestFbBytes: 48n * GiB - HEAP, maxInstances: 1, maxInstancesMixed: 1, heads: 4, maxResolution: '7680x4320' },
];

export interface FakeServiceOptions {
  bus?: EventBus;
  /** 1-based index of the create() call that fails with VGPU_ENOSPC. */
  failCreateAt?: number;
  /** Milliseconds each create/destroy takes (with scrub:progress events), to exercise progress output. */
  slowMs?: number;
  /** Awaited inside every create before it finishes (a test holds a create in flight with it). */
  gate?: () => Promise<void>;
}

export class FakeVgpuService implements VgpuService {
  readonly vgpus = new Map<string, FullVgpu>();
  readonly logLines = new Map<string, string[]>();
  policy: TypePolicy = 'homogeneous';
  createCalls = 0;
  destroyCalls = 0;
  private nextId = 1;

  constructor(private readonly opts: FakeServiceOptions = {}) {}

  gpus(): GpuSummary[] {
    const used = [...this.vgpus.values()].reduce((s, v) => s + v.fb.size, 0n);
    return [{
      bdf: FAKE_GPU, name: 'NVIDIA RTX 6000 Ada Generation', halId: 'fake', pciDeviceId: 0x26b1, pciVendorId: 0x10de, firmwareVersion: '570.00',
      state: 'ready', policy: this.policy, totalVfs: 32,
      fb: { total: TOTAL, used, free: TOTAL - used, stranded: 0n, largestFree: TOTAL - used }, vgpus: this.vgpus.size,
    }];
  }

  types(gpu: string, opts: { all?: boolean } = {}): VgpuTypeInfo[] {
    this.gpuOrThrow(gpu);
    const list = TYPES.map((t) => ({ ...t, available: this.available(t) }));
    return opts.all === true ? list : list.filter((t) => t.available > 0);
  }

  list(filter?: { gpu?: string }): VgpuInfo[] {
    return [...this.vgpus.values()].filter((v) => filter?.gpu === undefined || v.gpu === filter.gpu).map((v) => ({ ...v }));
  }

  get(id: string): VgpuInfo {
    const v = this.vgpus.get(id);
    if (v === undefined) throw new VgpuError(ErrorCode.NotFound, `no vGPU ${id}`, { hint: 'vgpuctl list shows the ids', details: { id } });
    return { ...v };
  }

  async create(req: CreateVgpuRequest): Promise<VgpuInfo> {
    this.createCalls += 1;
    this.gpuOrThrow(req.gpu);
    const t = this.resolveType(req.type ?? 0);
    if (this.opts.failCreateAt === this.createCalls) {
      throw new VgpuError(ErrorCode.NoSpace, 'injected: no FB left', { hint: 'destroy a vGPU first' });
    }
    if (this.available(t) === 0) {
      throw new VgpuError(ErrorCode.NoSpace, `no room for another ${t.name} on ${req.gpu}`, {
        hint: 'destroy a vGPU or choose a smaller type', details: { gpu: req.gpu, type: t.name },
      });
    }
    const usedVfs = new Set([...this.vgpus.values()].map((v) => v.vf));
    const vf = req.vf ?? [...Array(32).keys()].find((i) => !usedVfs.has(i))!;
    if (usedVfs.has(vf)) throw new VgpuError(ErrorCode.Busy, `VF ${vf} already has a vGPU`, { hint: 'omit --vf' });
    const offset = [...this.vgpus.values()].reduce((s, v) => s + v.fb.size, 0n);
    const id = `vgpu-${this.nextId++}`;
    const v: FullVgpu = {
      id, gpu: req.gpu, vf, vfBdf: `0000:41:${String(1 + (vf >> 3)).padStart(2, '0')}.${vf & 7}`, gfid: vf + 1,
      typeId: t.id, typeName: t.name, state: 'creating', fb: { offset, size: t.fbBytes }, profileFbBytes: t.profileFbBytes,
      chids: { offset: 2048 + vf * 64, count: 64 }, createdAt: Date.now() + this.nextId, inUse: false,
      ...(req.requestId !== undefined ? { requestId: req.requestId } : {}),
    };
    this.vgpus.set(id, v);
    this.opts.bus?.emit('vgpu:state', { gpu: req.gpu, vgpuId: id, vf, from: null, to: 'creating' });
    await this.work(id, req.signal);
    await this.opts.gate?.();
    v.state = 'ready';
    v.lastScrub = { at: Date.now(), bytes: t.fbBytes, durationMs: 1, pattern: 0, verified: true, reason: 'create' };
    this.logLines.set(id, [`${id}: GSP booted`, `${id}: ready`]);
    this.opts.bus?.emit('vgpu:state', { gpu: req.gpu, vgpuId: id, vf, from: 'creating', to: 'ready' });
    return { ...v };
  }

  async destroy(id: string, opts: { force?: boolean; signal?: AbortSignal } = {}): Promise<void> {
    this.destroyCalls += 1;
    const v = this.vgpus.get(id);
    if (v === undefined) throw new VgpuError(ErrorCode.NotFound, `no vGPU ${id}`, { hint: 'vgpuctl list shows the ids', details: { id } });
    if (v.inUse && opts.force !== true) {
      throw new VgpuError(ErrorCode.Busy, `vGPU ${id} is in use by a VM`, { hint: 'stop the VM or pass --force', details: { id } });
    }
    this.opts.bus?.emit('vgpu:state', { gpu: v.gpu, vgpuId: id, vf: v.vf, from: v.state, to: 'stopping' });
    v.state = 'stopping';
    await this.work(id, opts.signal);
    this.vgpus.delete(id);
    this.opts.bus?.emit('vgpu:state', { gpu: v.gpu, vgpuId: id, vf: v.vf, from: 'stopping', to: 'destroyed' });
  }

  readVfAttribute(vfBdf: string, attr: VfAttribute): string {
    this.vfOrThrow(vfBdf);
    const v = [...this.vgpus.values()].find((x) => x.vfBdf === vfBdf);
    if (attr === 'current_vgpu_type') return `${v?.typeId ?? 0}\n`;
    if (attr !== 'creatable_vgpu_types') throw new VgpuError(ErrorCode.NotFound, `no ${attr} on this VF`, { hint: 'the fake has the upstream two' });
    return this.types(FAKE_GPU).map((t) => `${t.id} : ${t.name}\n`).join('');
  }

  /** The fake's 32 VFs are 0000:41:01.0 … 0000:41:04.7; another address is no VF of its (as the manager says). */
  private vfOrThrow(vfBdf: string): void {
    if (!/^0000:41:0[1-4]\.[0-7]$/.test(vfBdf)) {
      throw new VgpuError(ErrorCode.NotFound, `no VF ${vfBdf} on a managed GPU`, { hint: 'list the GPUs and their VFs', details: { vfBdf, noSuchVf: true } });
    }
  }

  writeVfAttribute(vfBdf: string, attr: VfAttribute, value: string): void {
    this.vfOrThrow(vfBdf);
    if (attr !== 'current_vgpu_type') {
      throw new VgpuError(ErrorCode.InvalidArgument, `${attr} is read-only`, { hint: 'write current_vgpu_type' });
    }
    if (!/^\d+\n?$/.test(value)) {
      throw new VgpuError(ErrorCode.InvalidArgument, `'${value}' is not a type id`, { hint: 'write a decimal id or 0' });
    }
    this.lastVfWrite = { vfBdf, value };
  }
  lastVfWrite: { vfBdf: string; value: string } | undefined;

  setPolicy(gpu: string, policy: TypePolicy): void {
    this.gpuOrThrow(gpu);
    if (this.vgpus.size > 0) {
      throw new VgpuError(ErrorCode.IllegalState, 'the policy can only change while the GPU has no vGPUs', { hint: 'destroy them first' });
    }
    this.policy = policy;
  }

  logs(id: string, lines = 100): string[] {
    const l = this.logLines.get(id);
    if (l === undefined) throw new VgpuError(ErrorCode.NotFound, `no vGPU ${id}`, { hint: 'vgpuctl list shows the ids' });
    return l.slice(-lines);
  }

  private available(t: Omit<FullType, 'available'>): number {
    const all = [...this.vgpus.values()];
    if (this.policy === 'homogeneous' && all.some((v) => v.typeId !== t.id)) return 0;
    const same = all.filter((v) => v.typeId === t.id).length;
    const free = TOTAL - all.reduce((s, v) => s + v.fb.size, 0n);
    return Math.max(0, Math.min(t.maxInstances - same, Number(free / t.fbBytes)));
  }

  private resolveType(type: string | number): Omit<FullType, 'available'> {
    const norm = (s: string): string => s.toLowerCase().replace(/^nvidia\s+/, '');
    const t = TYPES.find((x) => x.id === type || (typeof type === 'string'
      && (norm(x.name) === norm(type) || x.name.toLowerCase().endsWith(`-${type.toLowerCase()}`))));
    if (t === undefined) throw new VgpuError(ErrorCode.UnknownType, `unknown vGPU type '${type}'`, { hint: 'vgpuctl types --all' });
    return t;
  }

  private gpuOrThrow(gpu: string): void {
    if (gpu !== FAKE_GPU) throw new VgpuError(ErrorCode.NotFound, `no GPU ${gpu}`, { hint: 'vgpuctl gpus', details: { gpu } });
  }

  private async work(id: string, signal?: AbortSignal): Promise<void> {
    const ms = this.opts.slowMs ?? 0;
    if (ms <= 0) return;
    const steps = 10;
    for (let i = 1; i <= steps; i++) {
      signal?.throwIfAborted();
      await new Promise((r) => setTimeout(r, ms / steps));
      this.opts.bus?.emit('scrub:progress', { gpu: FAKE_GPU, vgpuId: id, done: i, total: steps });
    }
  }
}
