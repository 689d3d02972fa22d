/**
 * The router: one VgpuService over every VgpuBackend (core/contracts/vgpu-backend.ts). It owns the map GPU →
 * backend and nothing else: every call goes to the backend that manages the GPU, the vGPU or the VF it names, and
 * lists are the backends' lists side by side. Layouts, requests, the API, metrics, the sysfs presenter and the node
 * agent therefore work unchanged on a host where vgpud drives the GPUs, on one where NVIDIA's kernel driver does,
 * and on one with both.
 *
 * Which backend manages a GPU: the config's `gpus[].backend` for that BDF (or the catch-all entry) when the named
 * backend found the GPU; else the one backend that found it; when several found it and the config names none, the
 * first in plugin order (the manager before the sysfs backend), with a warning, once.
 */
import { ErrorCode, VgpuError, isVgpuError } from '../contracts/exceptions.js';
import type { Logger } from '../contracts/logger.js';
import type { VgpuBackend } from '../contracts/vgpu-backend.js';
import type {
  AdoptResult, CreateVgpuRequest, GpuSummary, QuarantinedVf, TypePolicy, UnmanagedGpu, UnmanagedVf, VfAttribute, VfInfo, VfReleaseReport,
  VgpuInfo, VgpuService, VgpuTypeInfo,
} from '../contracts/vgpu-service.js';

export interface RouterGpuChoice {
  bdf?: string;
  backend?: string;
}

export class VgpuRouter implements VgpuService {
  private readonly warned = new Set<string>();

  constructor(
    private readonly backends: readonly VgpuBackend[],
    private readonly choices: readonly RouterGpuChoice[],
    private readonly log: Logger,
  ) {}

  /** The backend names in plugin order. */
  backendNames(): string[] {
    return this.backends.map((b) => b.backend);
  }

  /** GPU BDF (lower case) → the backend that manages it. */
  assignments(): Map<string, VgpuBackend> {
    const claims = new Map<string, VgpuBackend[]>();
    for (const b of this.backends) {
      for (const bdf of b.bdfs()) claims.set(bdf.toLowerCase(), [...(claims.get(bdf.toLowerCase()) ?? []), b]);
    }
    const out = new Map<string, VgpuBackend>();
    for (const [bdf, list] of claims) {
      const wanted = this.wantedBackend(bdf);
      const chosen = wanted === undefined ? undefined : list.find((b) => b.backend === wanted);
      if (wanted !== undefined && chosen === undefined) {
        this.warnOnce(`${bdf}:${wanted}`, 'the backend the config names for a GPU did not find it; another backend manages it', {
          gpu: bdf, configured: wanted, foundBy: list.map((b) => b.backend),
        });
      } else if (chosen === undefined && list.length > 1) {
        this.warnOnce(`${bdf}:several`, 'several backends found one GPU; the first manages it (set gpus[].backend to choose)', {
          gpu: bdf, backends: list.map((b) => b.backend), chosen: list[0]!.backend,
        });
      }
      out.set(bdf, chosen ?? list[0]!);
    }
    return out;
  }

  /** The backend that manages `gpu`, or VGPU_ENOENT naming the GPUs there are. */
  backendOf(gpu: string): VgpuBackend {
    const map = this.assignments();
    const b = map.get(gpu.toLowerCase());
    if (b === undefined) {
      throw new VgpuError(ErrorCode.NotFound, `no GPU ${gpu}`, {
        hint: `managed GPUs: ${[...map.keys()].join(', ') || '(none)'}`, details: { gpu },
      });
    }
    return b;
  }

  // ---- VgpuService ----

  gpus(): GpuSummary[] {
    const map = this.assignments();
    return this.backends.flatMap((b) => b.gpus()
      .filter((g) => map.get(g.bdf.toLowerCase()) === b)
      .map((g) => ({ ...g, backend: b.backend })));
  }

  /**
   * Configured GPUs no backend manages. A backend reports the GPUs it could not take (not on its bus, a failed
   * probe); one another backend manages is not unmanaged, so those are left out.
   */
  unmanaged(): UnmanagedGpu[] {
    const map = this.assignments();
    const out = new Map<string, UnmanagedGpu>();
    for (const b of this.backends) {
      for (const u of b.unmanaged?.() ?? []) {
        const bdf = u.bdf.toLowerCase();
        if (!map.has(bdf) && !out.has(bdf)) out.set(bdf, u);
      }
    }
    return [...out.values()].sort((a, b) => a.bdf.localeCompare(b.bdf));
  }

  types(gpu: string, opts?: { all?: boolean }): VgpuTypeInfo[] {
    return this.backendOf(gpu).types(gpu, opts);
  }

  list(filter?: { gpu?: string }): VgpuInfo[] {
    if (filter?.gpu !== undefined) return this.backendOf(filter.gpu).list(filter);
    const map = this.assignments();
    return this.backends.flatMap((b) => b.list().filter((v) => map.get(v.gpu.toLowerCase()) === b));
  }

  get(id: string): VgpuInfo {
    return this.backendOfVgpu(id).get(id);
  }

  hasVgpu(id: string): boolean {
    return this.backends.some((b) => b.hasVgpu(id));
  }

  create(req: CreateVgpuRequest): Promise<VgpuInfo> {
    return this.backendOf(req.gpu).create(req);
  }

  destroy(id: string, opts?: { force?: boolean; signal?: AbortSignal }): Promise<void> {
    return this.backendOfVgpu(id).destroy(id, opts);
  }

  async reset(id: string, opts?: { force?: boolean }): Promise<void> {
    const b = this.backendOfVgpu(id);
    if (b.reset === undefined) throw unsupported(b, 'resetting a vGPU (the kernel driver resets its VF: echo 1 > /sys/bus/pci/devices/<VF>/reset)');
    return b.reset(id, opts);
  }

  readVfAttribute(vfBdf: string, attr: VfAttribute): string {
    return this.onVf(vfBdf, (b) => b.readVfAttribute(vfBdf, attr));
  }

  writeVfAttribute(vfBdf: string, attr: VfAttribute, value: string): void | Promise<void> {
    return this.onVf(vfBdf, (b) => b.writeVfAttribute(vfBdf, attr, value));
  }

  setPolicy(gpu: string, policy: TypePolicy): void {
    this.backendOf(gpu).setPolicy(gpu, policy);
  }

  async reloadMetadata(): Promise<{ gpu: string; ok: boolean; reason?: string }[]> {
    const out: { gpu: string; ok: boolean; reason?: string }[] = [];
    for (const b of this.backends) if (b.reloadMetadata !== undefined) out.push(...await b.reloadMetadata());
    return out;
  }

  logs(id: string, lines?: number): string[] {
    return this.backendOfVgpu(id).logs(id, lines);
  }

  vfs(gpu: string): VfInfo[] {
    const b = this.backendOf(gpu);
    if (b.vfs === undefined) throw unsupported(b, 'listing VFs');
    return b.vfs(gpu);
  }

  configureVfs(gpu: string, numVfs: number): Promise<void> {
    const b = this.backendOf(gpu);
    if (b.configureVfs === undefined) throw unsupported(b, 'configuring SR-IOV');
    return b.configureVfs(gpu, numVfs);
  }

  async prepareGpus(gpus: readonly string[]): Promise<void> {
    for (const b of this.backends) {
      const mine = gpus.filter((g) => this.assignments().get(g.toLowerCase()) === b);
      if (mine.length > 0 && b.prepareGpus !== undefined) await b.prepareGpus(mine);
    }
  }

  unmanagedVfs(filter?: { gpu?: string }): UnmanagedVf[] {
    const map = this.assignments();
    const backends = filter?.gpu !== undefined ? [this.backendOf(filter.gpu)] : this.backends;
    return backends.flatMap((b) => (b.unmanagedVfs?.(filter) ?? []).filter((u) => map.get(u.gpu.toLowerCase()) === b));
  }

  async adopt(req: { gpu?: string; vfs?: string[] }): Promise<AdoptResult> {
    const backends = req.gpu !== undefined ? [this.backendOf(req.gpu)] : this.backends;
    const out: AdoptResult = { adopted: [], skipped: [] };
    let wanted = req.vfs?.map((v) => v.toLowerCase());
    for (const b of backends) {
      if (b.adopt === undefined) continue;
      // Each backend takes the listed VFs it has; the ones no backend has are reported at the end.
      const mine = wanted?.filter((vf) => (b.unmanagedVfs?.() ?? []).some((u) => u.vfBdf.toLowerCase() === vf));
      if (wanted !== undefined && mine!.length === 0) continue;
      const r = await b.adopt({ ...(req.gpu !== undefined ? { gpu: req.gpu } : {}), ...(mine !== undefined ? { vfs: mine } : {}) });
      out.adopted.push(...r.adopted);
      out.skipped.push(...r.skipped);
      if (wanted !== undefined) wanted = wanted.filter((vf) => !mine!.includes(vf));
    }
    for (const vf of wanted ?? []) out.skipped.push({ vfBdf: vf, why: 'no VF with a type vgpud does not manage has this address' });
    return out;
  }

  quarantined(): QuarantinedVf[] {
    const map = this.assignments();
    return this.backends.flatMap((b) => (b.quarantined?.() ?? []).filter((q) => map.get(q.gpu.toLowerCase()) === b));
  }

  async releaseVf(vfBdf: string): Promise<VfReleaseReport> {
    // Only a backend with a quarantine can hold the VF quarantined. Each answer is awaited, so a backend that says
    // "no such VF" asynchronously passes the call on as one that says it at once does.
    for (const b of this.backends) {
      if (b.releaseVf === undefined) continue;
      try {
        return await b.releaseVf(vfBdf);
      } catch (e) {
        if (!isVgpuError(e, ErrorCode.NotFound) || !isNoSuchVf(e, vfBdf)) throw e;
      }
    }
    throw noSuchVf(vfBdf);
  }

  // ---- helpers ----

  private wantedBackend(bdf: string): string | undefined {
    const exact = this.choices.find((c) => c.bdf?.toLowerCase() === bdf);
    return (exact ?? this.choices.find((c) => c.bdf === undefined))?.backend;
  }

  /** The backend holding vGPU `id` (ids never repeat across backends: they share one sequence). */
  private backendOfVgpu(id: string): VgpuBackend {
    const b = this.backends.find((x) => x.hasVgpu(id));
    if (b === undefined) throw new VgpuError(ErrorCode.NotFound, `no vGPU ${id}`, { hint: 'list the vGPUs for their ids', details: { id } });
    return b;
  }

  /** Run `fn` on the backend that has VF `vfBdf` (each answers VGPU_ENOENT for a VF it does not have). */
  private onVf<T>(vfBdf: string, fn: (b: VgpuBackend) => T): T {
    let last: unknown;
    for (const b of this.backends) {
      try {
        return fn(b);
      } catch (e) {
        if (!isVgpuError(e, ErrorCode.NotFound) || !isNoSuchVf(e, vfBdf)) throw e;
        last = e;
      }
    }
    throw last ?? new VgpuError(ErrorCode.NotFound, `no VF ${vfBdf} on a managed GPU`, { hint: 'list the GPUs and their VFs', details: { vfBdf } });
  }

  private warnOnce(key: string, message: string, meta: Record<string, unknown>): void {
    if (this.warned.has(key)) return;
    this.warned.add(key);
    this.log.warn(message, meta);
  }
}

/** A backend's "I have no such VF" (details.vfBdf names it), as opposed to any other VGPU_ENOENT about that VF. */
function isNoSuchVf(e: VgpuError, vfBdf: string): boolean {
  return typeof e.details.vfBdf === 'string' && e.details.vfBdf.toLowerCase() === vfBdf.toLowerCase() && e.details.noSuchVf === true;
}

function noSuchVf(vfBdf: string): VgpuError {
  return new VgpuError(ErrorCode.NotFound, `no VF ${vfBdf} on a managed GPU`, {
    hint: 'list the GPUs and their VFs', details: { vfBdf, noSuchVf: true },
  });
}

function unsupported(b: VgpuBackend, what: string): VgpuError {
  return new VgpuError(ErrorCode.InvalidArgument, `the '${b.backend}' backend does not support ${what}`, {
    hint: 'see docs/real-hosts.md for what each backend does', details: { backend: b.backend },
  });
}
