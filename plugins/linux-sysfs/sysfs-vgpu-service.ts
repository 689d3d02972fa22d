/**
 * The Linux sysfs backend ('linux-sysfs', core/contracts/vgpu-backend.ts): on a host where NVIDIA's kernel driver
 * owns the GPUs (vGPU 17+ on Ada, Hopper, Blackwell; the upstream RFC's VFIO variant driver), a vGPU is a VF whose
 * `nvidia/current_vgpu_type` holds a type id. vgpud's part starts at that ABI (docs/real-hosts.md):
 *
 * - create = write the type id to a free VF (one whose `creatable_vgpu_types`, re-read per VF, lists it), destroy =
 *   write 0; each step journalled before it is written (core/contracts/host-vf-journal.ts);
 * - a PF with no VFs gets them first: sriov_totalvfs written to `sriov_numvfs`, as NVIDIA's sriov-manage does;
 * - every refused write is a typed error carrying the kernel's errno (kernel-errors.ts);
 * - nothing is written anywhere but the VFs' `nvidia/` groups and the PFs' `sriov_numvfs`, and never to a VF whose
 *   type vgpud did not set (those are reported as unmanaged until an operator adopts them).
 * What the kernel keeps to itself (FB offsets and sizes, channel ids, whether a VM holds a VF) is left out of what
 * this backend reports, not invented.
 */
import { join } from 'node:path';
import { ErrorCode, VgpuError } from '../../core/contracts/exceptions.js';
import type { EventBus, VgpuState } from '../../core/contracts/events.js';
import type { HostVfJournal, HostVfRecord } from '../../core/contracts/host-vf-journal.js';
import type { Logger } from '../../core/contracts/logger.js';
import type { VgpuBackend } from '../../core/contracts/vgpu-backend.js';
import type {
  AdoptResult, CreateVgpuRequest, GpuSummary, TypePolicy, UnmanagedVf, VfAttribute, VfInfo, VgpuInfo, VgpuTypeInfo,
} from '../../core/contracts/vgpu-service.js';
import { resolveType } from '../../core/manager/resolve-type.js';
import { VfAbiError } from '../../core/manager/vf-abi-error.js';
import { nominalProfileBytes, seriesOf } from '../../core/metadata/vgpu-info-record.js';
import { parseCreatableTypes } from './creatable-types.js';
import { reconcileHostVfs, type HostReconcileReport } from './host-reconcile.js';
import { HostTypeCatalog } from './host-type-catalog.js';
import { kernelError, readError } from './kernel-errors.js';
import { devicesDir, discoverPfs, NVIDIA_DRIVER, readPf, readVfs, type HostPf, type HostVf } from './pci-discovery.js';
import type { SysfsConfig } from './sysfs-config.js';
import { nodeSysfsIo, type SysfsIo } from './sysfs-io.js';

export const SYSFS_BACKEND = 'linux-sysfs';
/** Lines of vgpud's own log kept per vGPU (`vgpuctl logs`: on a real host the firmware log is the driver's). */
const LOG_LINES = 200;

export interface SysfsServiceOptions {
  config: SysfsConfig;
  logger: Logger;
  journal: HostVfJournal;
  /** A new vGPU id (the daemon's never-repeating sequence). */
  newId: () => Promise<string>;
  /** The type policy the config names for a GPU (the kernel driver's own setting; vgpud cannot read it). */
  policy: (bdf: string) => TypePolicy;
  bus?: EventBus;
  io?: SysfsIo;
}

export class SysfsVgpuService implements VgpuBackend {
  readonly backend = SYSFS_BACKEND;
  private readonly io: SysfsIo;
  private readonly log: Logger;
  private readonly catalog: HostTypeCatalog;
  /** PFs found at init, by BDF; their dynamic state (VFs, driver) is re-read on every call. */
  private readonly pfs = new Map<string, HostPf>();
  /** VFs with a write of vgpud's in flight. */
  private readonly busy = new Set<string>();
  private readonly lines = new Map<string, string[]>();
  private readonly reportedDrift = new Set<string>();
  reconcileReport: HostReconcileReport | undefined;

  constructor(private readonly o: SysfsServiceOptions) {
    this.io = o.io ?? nodeSysfsIo;
    this.log = o.logger;
    this.catalog = new HostTypeCatalog(o.journal, o.logger);
  }

  /** Discover the PFs, then settle the journal against what their VFs hold now. */
  async init(): Promise<void> {
    const c = this.o.config;
    if (!c.disabled) {
      let found: HostPf[];
      try {
        found = discoverPfs(this.io, c.root, c.gpus);
      } catch (error) {
        throw readError(error, devicesDir(c.root));
      }
      for (const pf of found) {
        this.pfs.set(pf.bdf, pf);
        this.catalog.load(pf.bdf);
      }
    }
    this.reconcileReport = await reconcileHostVfs(this.o.journal, {
      gpus: new Set(this.pfs.keys()),
      current: (vf) => this.current(vf),
      clear: (vf) => this.io.writeText(this.attrPath(vf, 'current_vgpu_type'), '0\n'),
    }, this.log);
    const unmanaged = this.unmanagedVfs().filter((u) => u.reason === 'not-adopted');
    this.log.info('sysfs backend ready', {
      root: c.root, gpus: [...this.pfs.keys()], ...this.reconcileReport, notAdopted: unmanaged.map((u) => u.vfBdf),
    });
    if (unmanaged.length > 0) {
      this.log.warn('VFs hold vGPU types vgpud did not set; left alone', { vfs: unmanaged.map((u) => `${u.vfBdf}=${u.typeId}`), hint: 'vgpuctl adopt takes them over' });
    }
  }

  bdfs(): string[] {
    return [...this.pfs.keys()];
  }

  // ---- queries ----

  gpus(): GpuSummary[] {
    const version = this.io.readText(join(this.o.config.root, 'module', NVIDIA_DRIVER, 'version'))?.trim();
    const managed = this.managedNow();
    return [...this.pfs.values()].map((known) => {
      const pf = this.readPfNow(known);
      const state: GpuSummary['state'] = pf === undefined ? 'lost' : pf.driver === NVIDIA_DRIVER ? 'ready' : 'unbound';
      return {
        bdf: known.bdf, name: `NVIDIA PCI device ${hex4(known.vendorId)}:${hex4(known.deviceId)}`, halId: SYSFS_BACKEND,
        pciDeviceId: known.deviceId, pciVendorId: known.vendorId, pciClass: known.classCode, index: known.index,
        ...(known.subsystemVendorId !== undefined && known.subsystemId !== undefined
          ? { pciSubsystem: { vendorId: known.subsystemVendorId, deviceId: known.subsystemId } } : {}),
        firmwareVersion: version ?? 'unknown', state, policy: this.o.policy(known.bdf),
        totalVfs: pf?.totalVfs ?? known.totalVfs, numVfs: pf?.numVfs ?? 0,
        vgpus: managed.filter((r) => r.gpu === known.bdf).length,
      };
    });
  }

  types(gpu: string, opts: { all?: boolean } = {}): VgpuTypeInfo[] {
    const pf = this.pf(gpu);
    const lists = this.freeVfLists(pf);
    const counts = new Map<number, number>();
    for (const l of lists) for (const id of l.ids) counts.set(id, (counts.get(id) ?? 0) + 1);
    const now = this.readPfNow(pf);
    if (now !== undefined && now.numVfs === 0 && this.o.config.enableVfs) {
      // No VFs yet: a create (or a layout) enables all of them first, so each known type may get at most that many.
      for (const t of this.catalog.types(pf.bdf)) counts.set(t.id, now.totalVfs);
    }
    const out = this.catalog.types(pf.bdf).map((t): VgpuTypeInfo => {
      const profile = nominalProfileBytes(t.name);
      return {
        id: t.id, name: t.name, series: seriesOf(t.name) ?? '', available: counts.get(t.id) ?? 0,
        ...(profile !== undefined ? { profileFbBytes: profile } : {}),
      };
    });
    return opts.all === true ? out : out.filter((t) => t.available > 0);
  }

  list(filter: { gpu?: string } = {}): VgpuInfo[] {
    const pf = filter.gpu !== undefined ? this.pf(filter.gpu) : undefined;
    return this.managedNow().filter((r) => pf === undefined || r.gpu === pf.bdf).map((r) => this.infoOf(r));
  }

  hasVgpu(id: string): boolean {
    return this.o.journal.record(id) !== undefined || this.lines.has(id);
  }

  get(id: string): VgpuInfo {
    const r = this.managedNow().find((x) => x.id === id);
    if (r === undefined) throw this.noVgpu(id);
    return this.infoOf(r);
  }

  logs(id: string, lines = 100): string[] {
    const l = this.lines.get(id);
    if (l === undefined && this.o.journal.record(id) === undefined) throw this.noVgpu(id);
    return (l ?? []).slice(-Math.max(0, lines));
  }

  vfs(gpu: string): VfInfo[] {
    const pf = this.pf(gpu);
    const byVf = new Map(this.managedNow().map((r) => [r.vfBdf, r.id]));
    return readVfs(this.io, pf.dir).map((v) => ({
      index: v.index, bdf: v.bdf, typeId: this.current(v.bdf) ?? 0,
      ...(pf.vfDeviceId !== undefined ? { deviceId: pf.vfDeviceId } : {}),
      ...(byVf.has(v.bdf) ? { vgpuId: byVf.get(v.bdf)! } : {}),
    }));
  }

  unmanagedVfs(filter: { gpu?: string } = {}): UnmanagedVf[] {
    const pfs = filter.gpu !== undefined ? [this.pf(filter.gpu)] : [...this.pfs.values()];
    const records = this.o.journal.records();
    const out: UnmanagedVf[] = [];
    for (const pf of pfs) {
      const vfs = readVfs(this.io, pf.dir);
      const seen = new Set<string>();
      for (const vf of vfs) {
        seen.add(vf.bdf);
        const cur = this.current(vf.bdf) ?? 0;
        const rec = records.find((r) => r.vfBdf === vf.bdf);
        if (rec !== undefined && (rec.state !== 'set' || rec.typeId === cur)) continue;
        if (rec !== undefined) out.push(this.changedVf(pf, vf, rec, cur));
        else if (cur !== 0) out.push({ gpu: pf.bdf, vf: vf.index, vfBdf: vf.bdf, typeId: cur, reason: 'not-adopted', ...this.named(pf.bdf, cur) });
      }
      // A vGPU whose VF vanished (its VFs were disabled behind vgpud's back).
      for (const rec of records) {
        if (rec.gpu === pf.bdf && rec.state === 'set' && !seen.has(rec.vfBdf)) out.push(this.changedVf(pf, { index: rec.vf, bdf: rec.vfBdf }, rec, 0));
      }
    }
    return out;
  }

  readVfAttribute(vfBdf: string, attr: VfAttribute): string {
    this.findVf(vfBdf);
    const path = this.attrPath(vfBdf, attr);
    let text: string | undefined;
    try {
      text = this.io.readText(path);
    } catch (error) {
      throw readError(error, path);
    }
    if (text === undefined) {
      throw new VfAbiError('ENOENT', `${vfBdf} has no nvidia/${attr}`, {
        hint: 'the NVIDIA driver on this host does not publish it (or the VF is not bound to nvidia)', details: { vfBdf, attr },
      });
    }
    return text;
  }

  // ---- changes ----

  async create(req: CreateVgpuRequest): Promise<VgpuInfo> {
    const pf = this.pf(req.gpu);
    await this.ensureVfs(pf);
    const lists = this.freeVfLists(pf);
    const spec = req.type;
    if (spec === undefined) {
      // The manager's "select, then open" flow has no second step here: on NVIDIA's driver the write of the type is
      // the create, so a VF whose type is set already holds its vGPU.
      throw new VgpuError(ErrorCode.InvalidArgument, `name a vGPU type to create on ${pf.bdf}: writing the type to a VF is what creates it there`, {
        hint: 'pass --type (vgpuctl types lists them); a VF whose type was set outside vgpud is taken over with vgpuctl adopt', details: { gpu: pf.bdf },
      });
    }
    if (req.uuid !== undefined) {
      // NVIDIA's kernel driver picks the UUID of a vGPU it makes; the per-VF ABI has no file to pass one in.
      throw new VgpuError(ErrorCode.InvalidArgument, `the kernel driver of ${pf.bdf} chooses its vGPUs' UUIDs; vgpud cannot pass one`, {
        hint: 'create without a UUID on a GPU of the linux-sysfs backend', details: { gpu: pf.bdf, uuid: req.uuid },
      });
    }
    let typeId: number;
    if (typeof spec === 'number' || /^\d+$/.test(String(spec).trim())) {
      // An id goes to the kernel even when vgpud has never seen it listed: the kernel decides (ENODEV if unknown).
      typeId = Number(spec);
    } else {
      typeId = resolveType(this.catalog.types(pf.bdf), spec, pf.bdf).id;
    }
    const vfs = readVfs(this.io, pf.dir);
    let vf: HostVf | undefined;
    if (req.vf !== undefined) {
      vf = vfs.find((v) => v.index === req.vf);
      if (vf === undefined) {
        throw new VgpuError(ErrorCode.NotFound, `${pf.bdf} has no VF ${req.vf} (${vfs.length} enabled)`, { hint: 'vgpuctl vfs lists them', details: { gpu: pf.bdf, vf: req.vf } });
      }
      const cur = this.current(vf.bdf);
      if (cur !== 0) {
        throw new VgpuError(ErrorCode.Busy, `VF ${vf.bdf} holds vGPU type ${cur ?? '?'} already`, {
          hint: 'pick a VF with no type (vgpuctl vfs); vgpud never writes over a type it did not set', details: { vfBdf: vf.bdf, typeId: cur },
        });
      }
    } else {
      // Prefer a VF that lists the type now; with none, the first free VF, so the kernel's own errno says why not.
      const pick = lists.find((l) => l.ids.includes(typeId)) ?? lists[0];
      vf = pick?.vf;
      if (vf === undefined) {
        throw new VgpuError(ErrorCode.NoSpace, `no free VF on ${pf.bdf} (${vfs.length} VFs, all hold a type or are busy)`, {
          hint: 'destroy a vGPU first (vgpuctl list); VFs with types vgpud did not set: vgpuctl unmanaged', details: { gpu: pf.bdf },
        });
      }
    }
    this.claim(vf.bdf);
    try {
      req.signal?.throwIfAborted();
      const now = Date.now();
      const rec: HostVfRecord = {
        id: await this.o.newId(), gpu: pf.bdf, vf: vf.index, vfBdf: vf.bdf, typeId, typeName: this.catalog.nameOf(pf.bdf, typeId) ?? `vGPU type ${typeId}`,
        state: 'setting', createdAt: now, updatedAt: now, ...(req.requestId !== undefined ? { requestId: req.requestId } : {}),
      };
      await this.o.journal.put(rec); // write-ahead: a crash from here on is settled by the next start
      this.emit(rec, null, 'creating');
      const path = this.attrPath(vf.bdf, 'current_vgpu_type');
      try {
        await this.io.writeText(path, `${typeId}\n`);
      } catch (error) {
        await this.o.journal.remove(rec.id);
        this.emit(rec, 'creating', 'failed');
        throw kernelError(error, { attr: 'current_vgpu_type', path, what: `creating a ${rec.typeName} vGPU on ${vf.bdf}`, details: { gpu: pf.bdf, vfBdf: vf.bdf, typeId } });
      }
      const cur = this.current(vf.bdf);
      if (cur !== typeId) {
        await this.o.journal.remove(rec.id);
        this.emit(rec, 'creating', 'failed');
        throw new VgpuError(ErrorCode.Internal, `the kernel took type ${typeId} on ${vf.bdf} but the VF reads ${cur ?? 'nothing'}`, {
          hint: 'see the kernel log (dmesg); vgpud does not manage this VF', details: { vfBdf: vf.bdf, typeId, found: cur },
        });
      }
      const done = { ...rec, state: 'set' as const, updatedAt: Date.now() };
      await this.o.journal.put(done);
      this.note(done.id, `created: type ${typeId} (${done.typeName}) written to ${vf.bdf} nvidia/current_vgpu_type`);
      this.emit(done, 'creating', 'ready');
      return this.infoOf(done);
    } finally {
      this.busy.delete(vf.bdf);
    }
  }

  async destroy(id: string, opts: { force?: boolean; signal?: AbortSignal } = {}): Promise<void> {
    const rec = this.o.journal.record(id);
    if (rec === undefined || rec.state !== 'set') throw rec === undefined ? this.noVgpu(id) : this.inFlight(rec.vfBdf);
    const cur = this.current(rec.vfBdf);
    if (cur === 0 || cur === null) {
      // Someone cleared it (or disabled its VF) already: nothing to write, so the record just goes.
      await this.o.journal.remove(id);
      this.note(id, `forgotten: ${rec.vfBdf} already read ${cur ?? 'nothing'} (cleared outside vgpud)`);
      return;
    }
    if (cur !== rec.typeId) {
      throw new VgpuError(ErrorCode.IllegalState, `${id}'s VF ${rec.vfBdf} holds type ${cur} now, not the ${rec.typeId} vgpud set; vgpud leaves it alone`, {
        hint: `someone changed it outside vgpud: vgpuctl adopt ${rec.vfBdf} takes it over as it is`, details: { id, vfBdf: rec.vfBdf, expected: rec.typeId, found: cur },
      });
    }
    opts.signal?.throwIfAborted();
    this.claim(rec.vfBdf);
    try {
      await this.o.journal.put({ ...rec, state: 'clearing', updatedAt: Date.now() });
      this.emit(rec, 'ready', 'stopping');
      const path = this.attrPath(rec.vfBdf, 'current_vgpu_type');
      try {
        await this.io.writeText(path, '0\n');
      } catch (error) {
        await this.o.journal.put({ ...rec, updatedAt: Date.now() });
        this.emit(rec, 'stopping', 'ready');
        throw kernelError(error, { attr: 'current_vgpu_type', path, what: `destroying ${id} on ${rec.vfBdf}`, details: { id, vfBdf: rec.vfBdf } });
      }
      await this.o.journal.remove(id);
      this.note(id, `destroyed: 0 written to ${rec.vfBdf} nvidia/current_vgpu_type`);
      this.emit(rec, 'stopping', 'destroyed');
    } finally {
      this.busy.delete(rec.vfBdf);
    }
  }

  /**
   * The raw ABI, as `echo VALUE > /sys/…/nvidia/<attr>`: the kernel decides. A write to a VF whose vGPU vgpud
   * manages keeps the journal true to it: 0 ends that vGPU, another type becomes its type.
   */
  async writeVfAttribute(vfBdf: string, attr: VfAttribute, value: string): Promise<void> {
    const { pf } = this.findVf(vfBdf);
    const vf = vfBdf.toLowerCase();
    const path = this.attrPath(vf, attr);
    this.claim(vf);
    try {
      try {
        await this.io.writeText(path, value);
      } catch (error) {
        throw kernelError(error, { attr: attr === 'current_vgpu_type' ? attr : 'other', path, what: `writing ${attr} of ${vf}`, details: { vfBdf: vf } });
      }
      if (attr !== 'current_vgpu_type') return;
      const rec = this.o.journal.records().find((r) => r.vfBdf === vf && r.state === 'set');
      const cur = this.current(vf) ?? 0;
      if (rec === undefined || cur === rec.typeId) return;
      if (cur === 0) {
        await this.o.journal.remove(rec.id);
        this.note(rec.id, `destroyed through the ABI: 0 written to ${vf}`);
        this.emit(rec, 'ready', 'destroyed');
      } else {
        await this.o.journal.put({ ...rec, typeId: cur, typeName: this.catalog.nameOf(pf.bdf, cur) ?? `vGPU type ${cur}`, updatedAt: Date.now() });
        this.note(rec.id, `type changed through the ABI to ${cur}`);
      }
    } finally {
      this.busy.delete(vf);
    }
  }

  setPolicy(gpu: string, _policy: TypePolicy): void {
    throw new VgpuError(ErrorCode.InvalidArgument, `${gpu} is driven by NVIDIA's kernel driver, whose own setting decides its vGPU type policy`, {
      hint: 'change it with the driver\'s tools (nvidia-smi vgpu), then tell vgpud with gpus[].policy in its config', details: { gpu },
    });
  }

  /** Enable the VFs of those GPUs that have none (a layout is about to give them vGPUs). */
  async prepareGpus(gpus: readonly string[]): Promise<void> {
    for (const g of gpus) await this.ensureVfs(this.pf(g));
  }

  /** `sriov_numvfs` of a PF; refused (EBUSY) while a VF that would go holds a vGPU vgpud manages. */
  async configureVfs(gpu: string, numVfs: number): Promise<void> {
    const pf = this.pf(gpu);
    const doomed = this.o.journal.records().filter((r) => r.gpu === pf.bdf && r.vf >= numVfs);
    if (doomed.length > 0) {
      throw new VfAbiError('EBUSY', `${doomed.length} VF(s) of ${pf.bdf} that ${numVfs} VFs would not keep hold vGPUs vgpud manages`, {
        hint: 'destroy those vGPUs first (vgpuctl list)', details: { gpu: pf.bdf, vgpus: doomed.map((r) => r.id) },
      });
    }
    await this.writeNumVfs(pf, numVfs);
  }

  async adopt(req: { gpu?: string; vfs?: string[] }): Promise<AdoptResult> {
    const want = req.vfs?.map((v) => v.toLowerCase());
    const out: AdoptResult = { adopted: [], skipped: [] };
    const candidates = this.unmanagedVfs(req.gpu !== undefined ? { gpu: req.gpu } : {}).filter((u) => want === undefined || want.includes(u.vfBdf));
    for (const u of candidates) {
      if (u.typeId === 0) {
        out.skipped.push({ vfBdf: u.vfBdf, why: `holds no vGPU any more (${u.vgpuId ?? 'its vGPU'} was cleared outside vgpud): vgpuctl destroy ${u.vgpuId ?? ''} forgets it`.trim() });
        continue;
      }
      if (this.busy.has(u.vfBdf)) {
        out.skipped.push({ vfBdf: u.vfBdf, why: 'an operation on it is in progress' });
        continue;
      }
      for (const stale of this.o.journal.records().filter((r) => r.vfBdf === u.vfBdf)) await this.o.journal.remove(stale.id);
      const now = Date.now();
      const rec: HostVfRecord = {
        id: await this.o.newId(), gpu: u.gpu, vf: u.vf, vfBdf: u.vfBdf, typeId: u.typeId, typeName: u.typeName ?? `vGPU type ${u.typeId}`,
        state: 'set', adopted: true, createdAt: now, updatedAt: now,
      };
      await this.o.journal.put(rec);
      this.note(rec.id, `adopted: ${u.vfBdf} held type ${u.typeId} set outside vgpud${u.reason === 'changed' ? ` (it replaced ${u.vgpuId ?? 'a vGPU'} of type ${u.expectedTypeId ?? '?'})` : ''}`);
      this.log.info('adopted a vGPU vgpud did not create', { vgpu: rec.id, vf: u.vfBdf, type: u.typeId, reason: u.reason });
      out.adopted.push(this.infoOf(rec));
    }
    for (const v of want ?? []) {
      if (!candidates.some((u) => u.vfBdf === v)) out.skipped.push({ vfBdf: v, why: 'not a VF with a type vgpud does not manage' });
    }
    return out;
  }

  // ---- helpers ----

  /** Enable the PF's VFs (all of them, as sriov-manage -e does) when it has none. */
  private async ensureVfs(pf: HostPf): Promise<void> {
    const now = this.readPfNow(pf);
    if (now === undefined) throw readError(new Error('the PF is gone'), pf.dir);
    if (now.numVfs > 0) return;
    if (!this.o.config.enableVfs) {
      throw new VgpuError(ErrorCode.NoSpace, `${pf.bdf} has no VFs enabled and plugins.linux-sysfs.enableVfs is off`, {
        hint: `enable them: vgpuctl sriov ${pf.bdf} ${now.totalVfs} (or /usr/lib/nvidia/sriov-manage -e ${pf.bdf})`, details: { gpu: pf.bdf },
      });
    }
    this.log.info('enabling the VFs of a PF (as sriov-manage -e does)', { gpu: pf.bdf, numVfs: now.totalVfs });
    await this.writeNumVfs(pf, now.totalVfs);
  }

  private async writeNumVfs(pf: HostPf, numVfs: number): Promise<void> {
    const path = join(pf.dir, 'sriov_numvfs');
    try {
      await this.io.writeText(path, `${numVfs}\n`);
    } catch (error) {
      throw kernelError(error, { attr: 'sriov_numvfs', path, what: `setting ${numVfs} VFs on ${pf.bdf}`, details: { gpu: pf.bdf, numVfs } });
    }
    this.log.info('SR-IOV configured', { gpu: pf.bdf, numVfs });
  }

  /**
   * The free VFs of a PF with the type ids each lists now (re-read per VF: the lists shrink as siblings get types);
   * teaches the catalogue. Free = no type, nothing in flight, and no vGPU of vgpud's recorded on it (a VF whose
   * vGPU was cleared behind vgpud's back stays reported, and unused, until an operator forgets or adopts it).
   */
  private freeVfLists(pf: HostPf): { vf: HostVf; ids: number[] }[] {
    const out: { vf: HostVf; ids: number[] }[] = [];
    const recorded = new Set(this.o.journal.records().map((r) => r.vfBdf));
    for (const vf of readVfs(this.io, pf.dir)) {
      if (this.busy.has(vf.bdf) || recorded.has(vf.bdf) || this.current(vf.bdf) !== 0) continue;
      const types = parseCreatableTypes(this.readOptional(this.attrPath(vf.bdf, 'creatable_vgpu_types')) ?? '');
      this.catalog.learn(pf.bdf, types);
      out.push({ vf, ids: types.map((t) => t.id) });
    }
    return out;
  }

  /** Records vgpud manages now: in flight, or set and still what the VF holds (drift is reported, once). */
  private managedNow(): HostVfRecord[] {
    return this.o.journal.records().filter((r) => {
      if (!this.pfs.has(r.gpu)) return false;
      if (r.state !== 'set') return this.busy.has(r.vfBdf);
      const cur = this.current(r.vfBdf);
      if (cur === r.typeId) return true;
      const key = `${r.id}:${cur ?? 'gone'}`;
      if (!this.reportedDrift.has(key)) {
        this.reportedDrift.add(key);
        this.log.warn('a VF\'s vGPU type was changed behind vgpud\'s back; left alone', {
          vgpu: r.id, vf: r.vfBdf, expectedType: r.typeId, foundType: cur, hint: 'vgpuctl unmanaged shows it; vgpuctl adopt takes it over',
        });
      }
      return false;
    });
  }

  private changedVf(pf: HostPf, vf: HostVf, rec: HostVfRecord, cur: number): UnmanagedVf {
    return {
      gpu: pf.bdf, vf: vf.index, vfBdf: vf.bdf, typeId: cur, reason: 'changed', vgpuId: rec.id, expectedTypeId: rec.typeId, ...this.named(pf.bdf, cur),
    };
  }

  private named(gpu: string, typeId: number): { typeName?: string } {
    const n = typeId === 0 ? undefined : this.catalog.nameOf(gpu, typeId);
    return n === undefined ? {} : { typeName: n };
  }

  private infoOf(r: HostVfRecord): VgpuInfo {
    const state: VgpuState = r.state === 'setting' ? 'creating' : r.state === 'clearing' ? 'stopping' : 'ready';
    const profile = nominalProfileBytes(r.typeName);
    const placement = this.numberAttr(r.vfBdf, 'placement_id');
    const instance = this.numberAttr(r.vfBdf, 'gpu_instance_id');
    return {
      id: r.id, gpu: r.gpu, vf: r.vf, vfBdf: r.vfBdf, gfid: r.vf + 1, typeId: r.typeId, typeName: r.typeName, state, createdAt: r.createdAt,
      ...(profile !== undefined ? { profileFbBytes: profile } : {}),
      ...(placement !== undefined ? { placementId: placement } : {}),
      ...(instance !== undefined ? { gpuInstanceId: instance } : {}),
      ...(r.requestId !== undefined ? { requestId: r.requestId } : {}),
    };
  }

  /** NVIDIA's read-only numeric attributes (placement_id, gpu_instance_id) where the driver has them. */
  private numberAttr(vfBdf: string, attr: 'placement_id' | 'gpu_instance_id'): number | undefined {
    const t = this.readOptional(this.attrPath(vfBdf, attr))?.trim();
    return t !== undefined && /^\d+$/.test(t) ? Number(t) : undefined;
  }

  /** The VF's current_vgpu_type, or null when the VF or its nvidia/ group is gone. */
  private current(vfBdf: string): number | null {
    const t = this.readOptional(this.attrPath(vfBdf, 'current_vgpu_type'))?.trim();
    return t === undefined || !/^\d+$/.test(t) ? null : Number(t);
  }

  private readOptional(path: string): string | undefined {
    try {
      return this.io.readText(path);
    } catch (error) {
      throw readError(error, path);
    }
  }

  private readPfNow(pf: HostPf): HostPf | undefined {
    try {
      return readPf(this.io, this.o.config.root, pf.bdf, pf.index);
    } catch (error) {
      throw readError(error, pf.dir);
    }
  }

  private attrPath(vfBdf: string, attr: string): string {
    return join(devicesDir(this.o.config.root), vfBdf.toLowerCase(), NVIDIA_DRIVER, attr);
  }

  private pf(gpu: string): HostPf {
    const pf = this.pfs.get(gpu.toLowerCase());
    if (pf === undefined) {
      throw new VgpuError(ErrorCode.NotFound, `no GPU ${gpu} on the sysfs backend`, {
        hint: `GPUs found under ${this.o.config.root}: ${this.bdfs().join(', ') || '(none)'}`, details: { gpu },
      });
    }
    return pf;
  }

  private findVf(vfBdf: string): { pf: HostPf; vf: HostVf } {
    const want = vfBdf.toLowerCase();
    for (const pf of this.pfs.values()) {
      const vf = readVfs(this.io, pf.dir).find((v) => v.bdf === want);
      if (vf !== undefined) return { pf, vf };
    }
    throw new VgpuError(ErrorCode.NotFound, `no VF ${vfBdf} on a GPU the sysfs backend manages`, {
      hint: 'vgpuctl vfs <GPU> lists the VFs', details: { vfBdf, noSuchVf: true },
    });
  }

  private claim(vfBdf: string): void {
    if (this.busy.has(vfBdf)) throw this.inFlight(vfBdf);
    this.busy.add(vfBdf);
  }

  private inFlight(vfBdf: string): VgpuError {
    return new VgpuError(ErrorCode.Busy, `an operation on VF ${vfBdf} is in progress`, { hint: 'retry when it finished', details: { vfBdf } });
  }

  private noVgpu(id: string): VgpuError {
    return new VgpuError(ErrorCode.NotFound, `no vGPU ${id}`, { hint: 'list the vGPUs for their ids (vgpuctl unmanaged: VFs vgpud leaves alone)', details: { id } });
  }

  private note(id: string, line: string): void {
    const l = this.lines.get(id) ?? [];
    l.push(`${new Date().toISOString()} ${line}`);
    if (l.length > LOG_LINES) l.splice(0, l.length - LOG_LINES);
    this.lines.set(id, l);
  }

  private emit(r: HostVfRecord, from: VgpuState | null, to: VgpuState): void {
    this.o.bus?.emit('vgpu:state', { gpu: r.gpu, vgpuId: r.id, vf: r.vf, from, to });
  }
}

function hex4(n: number): string {
  return n.toString(16).padStart(4, '0');
}
