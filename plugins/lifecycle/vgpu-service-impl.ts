/**
 * VgpuService (core/contracts/vgpu-service.ts) over the core's manager pieces: GPUs come from GpuProbe, each gets
 * a PgpuManager (types, policy, VF ABI) and a GpuLifecycle (create/destroy/events). The 'manager' backend
 * (core/contracts/vgpu-backend.ts): bound to TOKENS.VgpuBackend by the lifecycle plugin, and presented with the
 * other backends as TOKENS.VgpuManager by the router; the control API and metrics call only that.
 *
 * This backend drives the GPU itself, so it knows every fact the contract leaves optional (FB offsets, channel ids,
 * in-use state, max instances): its own return types say so (Manager*), for callers that hold it directly.
 */
import { dirname, join } from 'node:path';
import { inject, injectable, optional } from 'inversify';
import type { VgpudConfig } from '../../core/config/config-schema.js';
import type { EventBus } from '../../core/contracts/events.js';
import { ErrorCode, VgpuError, type ExceptionRelay } from '../../core/contracts/exceptions.js';
import type { PciDeviceInfo, PhysicalGpu } from '../../core/contracts/hal.js';
import type { Logger } from '../../core/contracts/logger.js';
import type { FbScrubber } from '../../core/contracts/scrubber.js';
import type {
  CreateVgpuRequest, GpuSummary, QuarantinedVf, TypePolicy, UnmanagedGpu, VfAttribute, VfInfo, VfReleaseReport, VgpuInfo,
  VgpuTypeInfo,
} from '../../core/contracts/vgpu-service.js';
import type { VgpuBackend } from '../../core/contracts/vgpu-backend.js';
import { planNumVfs } from '../../core/manager/sriov-numvfs-abi.js';
import { VfAbiError } from '../../core/manager/vf-abi-error.js';
import type { JournalDamage, JournalGpu, ReconcileReport, VgpuJournal } from '../../core/contracts/vgpu-journal.js';
import type { HalRegistry } from '../../core/hal-registry.js';
import { GpuProbe, type ProbeFailure } from '../../core/manager/gpu-probe.js';
import { readFile } from 'node:fs/promises';
import { metadataFileName } from '../../core/metadata/metadata-format.js';
import type { GpuRegistry } from '../../core/gpu-registry.js';
import type { VgpuLogStore } from '../../core/contracts/vgpu-log-store.js';
import type { VgpuReleaser } from '../../core/contracts/vgpu-releaser.js';
import { PgpuManager, type PgpuManagerOptions } from '../../core/manager/pgpu-manager.js';
import { TOKENS } from '../../core/tokens.js';
import type { LifecycleTimeouts } from './create-steps.js';
import { GpuLifecycle } from './gpu-lifecycle.js';
import { JournalSequenceBlock } from '../../core/alloc/journal-sequence-block.js';
import { isDuplicateHandle, quarantineFromDamage, sequenceFloors } from './journal-damage.js';
import type { LifecycleConfig } from './lifecycle-config.js';
import { NO_PLACEMENT } from '../../core/manager/type-policy.js';
import { profileBytesOf, resolveType, typeDisplay } from './type-catalog.js';
import { dashedUuid, uuidBytes, type VgpuRecord } from './vgpu-record.js';

/** What this backend always knows of a GPU, a type and a vGPU (the contract leaves these optional). */
export type ManagerGpuSummary = GpuSummary & Required<Pick<GpuSummary, 'fb' | 'numVfs'>>;
export type ManagerTypeInfo = VgpuTypeInfo & Required<Pick<VgpuTypeInfo, 'fbBytes' | 'profileFbBytes' | 'guestFbBytes' | 'maxInstances' | 'heads' | 'maxResolution'>>;
export type ManagerVgpuInfo = VgpuInfo & Required<Pick<VgpuInfo, 'fb' | 'chids' | 'inUse'>>;

/** The backend name of the userspace manager (config `gpus[].backend`). */
export const MANAGER_BACKEND = 'manager';

export interface ServiceInitOptions extends Partial<LifecycleConfig> {
  /** Overrides for PgpuManager.create (tests: readFile, strategy). */
  manager?: (gpu: PhysicalGpu) => Partial<PgpuManagerOptions>;
}

@injectable()
export class VgpuServiceImpl implements VgpuBackend {
  readonly backend = MANAGER_BACKEND;
  private readonly gpusByBdf = new Map<string, GpuLifecycle>();
  private readonly log: Logger;
  private nextId = 1;
  private opts: ServiceInitOptions = {};
  private metadataDir = '';
  readonly probeFailures: ProbeFailure[] = [];
  private ids: JournalSequenceBlock | undefined;
  /** Per probed device: its PCI ids and its index as NVIDIA's tools number the host's GPUs. */
  private readonly hostIds = new Map<string, { index: number; device: PciDeviceInfo }>();
  private handles: JournalSequenceBlock | undefined;
  /** What the start-up reconcile with the journal did (empty without a journal). */
  readonly reconcileReport: ReconcileReport = { kept: [], rolledBack: [], dropped: [], staleClientsFreed: 0, quarantined: [], damaged: [], sequences: [] };

  constructor(
    @inject(TOKENS.HalRegistry) private readonly registry: HalRegistry,
    @inject(TOKENS.EventBus) private readonly bus: EventBus,
    @inject(TOKENS.ExceptionRelay) private readonly relay: ExceptionRelay,
    @inject(TOKENS.Logger) logger: Logger,
    @inject(TOKENS.Config) private readonly config: Readonly<VgpudConfig>,
    @inject(TOKENS.FbScrubber) @optional() private readonly scrubber: FbScrubber | undefined,
    @inject(TOKENS.VgpuJournal) @optional() private readonly journal?: VgpuJournal,
    @inject(TOKENS.GpuRegistry) @optional() private readonly gpuRegistry?: GpuRegistry,
    @inject(TOKENS.VgpuLogStore) @optional() private readonly logStore?: VgpuLogStore,
    @inject(TOKENS.VgpuReleaser) @optional() private readonly releaser?: VgpuReleaser,
  ) {
    this.log = logger.child({ component: 'lifecycle' });
  }

  /** Probe every GPU of every bound bus and bring up a manager and a lifecycle for each. One bad GPU is skipped. */
  async init(opts: ServiceInitOptions = {}): Promise<void> {
    this.opts = opts;
    if (this.scrubber === undefined) {
      if (opts.allowUnscrubbedFb === true) {
        this.log.error('FB SCRUBBING IS OFF: no scrubber is bound and plugins.lifecycle.allowUnscrubbedFb is true, so new vGPUs get guest FB '
          + 'that may hold an earlier tenant\'s data. Never run a host with tenants like this.', { allowUnscrubbedFb: true });
      } else {
        this.log.warn('no FB scrubber is bound (the scrub plugin is not loaded): creating and resetting vGPUs will be refused', {
          hint: "load the scrub plugin (plugins.enabled: ['*'], or list 'scrub')",
        });
      }
    }
    const probe = new GpuProbe(this.registry, this.bus, this.log, this.config, this.gpuRegistry);
    const result = await probe.probeAll({ rpcTimeoutMs: this.config.timeouts.rpcMs });
    this.probeFailures.push(...result.failed);
    this.indexHostGpus([...result.ready.map((r) => r.device), ...result.failed.map((f) => f.device)]);
    const metadataDir = opts.metadataDir ?? (await defaultMetadataDir());
    this.metadataDir = metadataDir;
    const j = this.journal;
    const damaged = j?.damaged().filter((d) => !d.unsafe && d.kind === 'vgpu') ?? [];
    if (j !== undefined) {
      this.reconcileReport.damaged.push(...j.damaged().map((d) => ({ file: d.file, reason: d.reason })));
      this.reconcileReport.sequences.push(...j.rebuiltSequences());
      // ids and RM handles continue above every one the journal still names (whatever a sequence file says): an
      // adopted vGPU's id or live client is never reused, even after the sequence file was lost or damaged.
      const floors = sequenceFloors(j, result.ready.map((p) => p.gpu.bdf), RM_HANDLE_NAMESPACE);
      this.ids = await JournalSequenceBlock.create(j, 'vgpu-id', 64, floors.vgpuId);
      this.handles = await JournalSequenceBlock.create(j, 'rm-handle', 64, floors.rmHandle);
    }
    for (const p of result.ready) {
      try {
        const prev = j?.gpu(p.gpu.bdf);
        let gpuForMgr = p.gpu;
        let managerClients: number[] = [];
        if (j !== undefined) {
          // Write-ahead for the manager's own client too: journal its handle before allocating it.
          const h = rmHandle(await this.handles!.takeAsync());
          managerClients = [...(prev?.managerClients ?? []), h];
          await j.putGpu({ bdf: p.gpu.bdf, managerClients, selections: prev?.selections ?? [], updatedAt: Date.now() });
          gpuForMgr = withClientHandle(p.gpu, h, async (taken) => {
            // The firmware already has that handle: a client only a lost record knew, maybe under a running
            // guest. It is not ours, so it must not be freed below as a stale manager client: journal the next one.
            const next = rmHandle(await this.handles!.takeAsync());
            managerClients.splice(managerClients.indexOf(taken), 1, next);
            await j.putGpu({ bdf: p.gpu.bdf, managerClients, selections: prev?.selections ?? [], updatedAt: Date.now() });
            this.log.warn('the firmware already holds the journalled manager RM handle; using the next one', { gpu: p.gpu.bdf, hClient: taken, next });
            return next;
          });
        }
        const mgr = await PgpuManager.create({
          gpu: gpuForMgr, logger: this.log, metadataDir, rpcTimeoutMs: this.config.timeouts.rpcMs, policy: this.policyFor(p.gpu.bdf),
          ...opts.manager?.(p.gpu),
        });
        const lc = this.attach(p.gpu, mgr);
        if (j !== undefined) await this.reconcileGpu(lc, j, prev, managerClients, damaged, p.firmware.attached === false);
      } catch (error) {
        this.log.error('vGPU manager init failed; this GPU will host no vGPUs', { gpu: p.gpu.bdf, error });
        try {
          await p.gpu.close();
        } catch (closeError) {
          this.log.error('closing the GPU failed too', { gpu: p.gpu.bdf, error: closeError });
        }
      }
    }
    if (j !== undefined) {
      const managed = new Set(this.gpusByBdf.keys());
      for (const r of j.vgpus()) if (!managed.has(r.gpu)) this.reconcileReport.dropped.push(r.id);
      // A damaged record no VF could be tied to is kept for a human in damaged/ (it was reported above); one of a
      // GPU this run does not manage stays in place for the start that manages it.
      for (const d of damaged) {
        const gpu = d.salvaged?.gpu;
        if (gpu !== undefined && d.salvaged?.vf !== undefined && !managed.has(gpu)) continue;
        if (gpu === undefined || d.salvaged?.vf === undefined) await this.setAside(j, d.file);
      }
      j.noteReconcile(this.reconcileReport);
      const rep = this.reconcileReport;
      this.log.info('journal reconciled', {
        kept: rep.kept, rolledBack: rep.rolledBack.map((r) => r.id), leftForAbsentGpus: rep.dropped, staleManagerClientsFreed: rep.staleClientsFreed,
        quarantined: rep.quarantined.map((q) => `${q.gpu} VF ${q.vf}`), damaged: rep.damaged.map((d) => d.file), rebuiltSequences: rep.sequences.map((x) => x.seq),
      });
    }
  }

  /**
   * Make one GPU match the journal after a (re)start: free the manager clients of earlier runs, adopt the vGPUs
   * journalled ready (same id, VF, FB), roll back the half-way ones, restore the VF type selections.
   */
  private async reconcileGpu(
    lc: GpuLifecycle, j: VgpuJournal, prev: JournalGpu | undefined, managerClients: number[], damaged: readonly JournalDamage[], freshFirmware: boolean,
  ): Promise<void> {
    const report = this.reconcileReport;
    const fw = lc.gpu.firmware;
    const mine = mgrClientOf(lc);
    for (const h of managerClients) {
      if (h === mine) continue;
      try {
        await fw.freeClient({ hClient: h, hDevice: 0, hSubdevice: 0 }, { timeoutMs: this.config.timeouts.rpcMs });
        report.staleClientsFreed++;
      } catch (error) {
        this.log.warn('could not free a stale manager RM client of an earlier run', { gpu: lc.bdf, hClient: h, error });
      }
    }
    lc.managerClients = [mine];
    const rolledBackAuto = new Set<number>();
    for (const r of j.vgpus().filter((x) => x.gpu === lc.bdf)) {
      if (r.state === 'ready' && freshFirmware) {
        // This run booted GSP-RM itself: whatever the journal says ran before died with the old one (the device was
        // restarted or reset meanwhile). No point asking a plugin task that cannot exist — report the vGPU lost.
        const why = 'GSP-RM was rebooted while the daemon was down (the device was restarted or reset): the vGPU did not survive';
        await lc.reportLost(r, why);
        report.rolledBack.push({ id: r.id, why });
        this.log.warn('a journalled vGPU did not survive a device restart; listed as lost', { gpu: lc.bdf, vgpu: r.id, vf: r.vf });
        await j.removeVgpu(r.id);
        continue;
      }
      if (r.state === 'ready') {
        try {
          await lc.adopt(r);
          report.kept.push(r.id);
          this.log.info('re-attached a running vGPU', { gpu: lc.bdf, vgpu: r.id, vf: r.vf, type: r.typeName });
          continue;
        } catch (error) {
          report.rolledBack.push({ id: r.id, why: (error as Error).message });
          this.log.warn('could not re-attach a journalled vGPU; rolled it back', { gpu: lc.bdf, vgpu: r.id, error });
        }
      } else {
        await lc.rollbackJournalled(r);
        report.rolledBack.push({ id: r.id, why: `caught half-way (${r.state})` });
        this.log.warn('rolled back a vGPU a crash caught half-way', { gpu: lc.bdf, vgpu: r.id, state: r.state });
      }
      if (r.autoSelected) rolledBackAuto.add(r.vf);
      await j.removeVgpu(r.id);
    }
    for (const s of prev?.selections ?? []) {
      if (rolledBackAuto.has(s.vf) || lc.mgr.selectionOf(s.vf) !== undefined) continue;
      try {
        // A selection that held no FB (NO_PLACEMENT: an ECC-incapable type) is re-taken wherever it now goes.
        lc.mgr.policy.select(s.vf, s.typeId, s.placementId === NO_PLACEMENT ? {} : { placementAt: s.placementId });
      } catch (error) {
        this.log.warn('could not restore a VF type selection', { gpu: lc.bdf, vf: s.vf, typeId: s.typeId, error });
      }
    }
    await this.quarantineGpu(lc, j, prev, damaged);
    lc.persistGpu();
  }

  /**
   * Take out of service every VF of this GPU whose state the journal lost: those an earlier run quarantined, the
   * VFs of damaged vGPU records, and — for a damaged record that no longer says its GPU and VF — every VF that has a
   * type selected but no vGPU (one of them may be its VF). Each is journalled before its damaged record is set aside.
   */
  private async quarantineGpu(lc: GpuLifecycle, j: VgpuJournal, prev: JournalGpu | undefined, damaged: readonly JournalDamage[]): Promise<void> {
    const report = this.reconcileReport;
    const hold = async (q: Parameters<GpuLifecycle['holdQuarantined']>[0]): Promise<void> => {
      const held = lc.holdQuarantined(q);
      await j.putQuarantine(held);
      report.quarantined.push({ gpu: lc.bdf, vf: q.vf, ...(q.vgpuId !== undefined ? { vgpuId: q.vgpuId } : {}), why: q.reason });
    };
    for (const q of j.quarantined().filter((x) => x.gpu === lc.bdf)) {
      const live = lc.byGfid(q.vf + 1);
      if (live !== undefined) {
        // An operator put a good record back and it was adopted: the VF's state is known again.
        this.log.info('a quarantined VF has its vGPU back (its record was restored); quarantine lifted', { gpu: lc.bdf, vf: q.vf, vgpu: live.id });
        await j.removeQuarantine(q.gpu, q.vf);
        continue;
      }
      await hold(q);
    }
    const unattributed = damaged.filter((d) => d.salvaged?.gpu === undefined || d.salvaged.vf === undefined);
    for (const d of damaged.filter((x) => x.salvaged?.gpu === lc.bdf && x.salvaged.vf !== undefined)) {
      const vf = d.salvaged!.vf!;
      if (lc.byGfid(vf + 1) !== undefined || lc.isQuarantined(vf)) {
        this.log.warn('a damaged vGPU record names a VF whose state is known from another record; set aside', { gpu: lc.bdf, vf, file: d.file });
      } else {
        await hold(quarantineFromDamage(d, lc.bdf, vf));
      }
      await this.setAside(j, d.file);
    }
    if (unattributed.length > 0) {
      const files = unattributed.map((d) => d.file).join(', ');
      for (const s of prev?.selections ?? []) {
        if (lc.byGfid(s.vf + 1) !== undefined || lc.isQuarantined(s.vf) || lc.mgr.selectionOf(s.vf)?.type.id !== s.typeId) continue;
        await hold({
          gpu: lc.bdf, vf: s.vf, reason: `it may be the VF of the unreadable record(s) ${files}`, since: Date.now(),
          typeId: s.typeId, placementId: s.placementId, unknown: ['heap', 'chids', 'rm-client'],
        });
      }
    }
  }

  private async setAside(j: VgpuJournal, file: string): Promise<void> {
    try {
      await j.setAside(file);
    } catch (error) {
      this.log.error('could not move a damaged journal record out of the way', { file, error: (error as Error).message });
    }
  }

  /**
   * Options for GPUs attached by hand with attach() (tests and benches wire a GPU without init(), which sets them
   * from the config section).
   */
  configure(opts: ServiceInitOptions): void {
    this.opts = opts;
  }

  /**
   * NVIDIA's GPU index (layouts' `devices: [0]`): the position among the host's NVIDIA display and 3D-controller
   * PFs sorted by PCI address, as go-nvlib's nvpci GetGPUs lists them (docs/reference/vgpu-device-manager-layouts.md).
   */
  private indexHostGpus(devices: readonly PciDeviceInfo[]): void {
    const key = (bdf: string): number => Number.parseInt(bdf.replace(/[:.]/g, ''), 16);
    const gpus = devices
      .filter((d) => d.vendorId === 0x10de && (d.classCode === 0x030000 || d.classCode === 0x030200))
      .sort((a, b) => key(a.bdf) - key(b.bdf));
    gpus.forEach((device, index) => this.hostIds.set(device.bdf.toLowerCase(), { index, device }));
  }

  /** Adopt an opened GPU with its manager (init does this for probed GPUs; tests call it directly). */
  attach(gpu: PhysicalGpu, mgr: PgpuManager): GpuLifecycle {
    if (this.gpusByBdf.has(gpu.bdf)) {
      throw new VgpuError(ErrorCode.Busy, `${gpu.bdf} is already managed`, { hint: 'detach it first' });
    }
    const t = this.config.timeouts;
    const timeouts: LifecycleTimeouts = {
      rpcMs: t.rpcMs, bootloadMs: t.bootloadMs, scrubMs: t.scrubMs,
      mailboxMs: this.opts.mailboxTimeoutMs ?? t.rpcMs, pollIntervalMs: this.opts.pollIntervalMs ?? 1,
    };
    const lc = new GpuLifecycle({
      gpu, mgr, bus: this.bus, relay: this.relay, logger: this.log, scrubber: this.scrubber, timeouts,
      verifyScrub: this.opts.verifyScrub ?? false, allowUnscrubbedFb: this.opts.allowUnscrubbedFb ?? false,
      newId: () => `vgpu-${this.ids !== undefined ? this.ids.take() : this.nextId++}`,
      journal: this.journal,
      releaser: this.releaser,
      newClientHandle: this.handles !== undefined ? async () => rmHandle(await this.handles!.takeAsync()) : undefined,
    });
    lc.start();
    this.gpusByBdf.set(gpu.bdf, lc);
    return lc;
  }

  /** The lifecycle of one GPU (tests, the vfio face). */
  lifecycle(bdf: string): GpuLifecycle {
    const lc = this.gpusByBdf.get(bdf);
    if (lc === undefined) {
      throw new VgpuError(ErrorCode.NotFound, `no GPU ${bdf}`, {
        hint: `managed GPUs: ${[...this.gpusByBdf.keys()].join(', ') || '(none)'}`, details: { gpu: bdf },
      });
    }
    return lc;
  }

  /** Stop managing every GPU but leave its vGPUs running (daemon restart, warm update). */
  detachAll(): void {
    for (const lc of this.gpusByBdf.values()) lc.detach();
    this.gpusByBdf.clear();
  }

  /** Resolves when no operation is running on any GPU. */
  async idle(): Promise<void> {
    await Promise.all([...this.gpusByBdf.values()].map((lc) => lc.idle()));
  }

  // ---- VgpuService ----

  bdfs(): string[] {
    return [...this.gpusByBdf.keys()].map((b) => b.toLowerCase());
  }

  gpus(): ManagerGpuSummary[] {
    return [...this.gpusByBdf.values()].map((lc) => {
      const g = lc.gpu;
      const s = g.memory.stats();
      const host = this.hostIds.get(g.bdf.toLowerCase());
      return {
        bdf: g.bdf, name: g.config.name, halId: g.halId, pciDeviceId: g.config.pci.deviceId, pciVendorId: g.config.pci.vendorId,
        ...(host !== undefined ? {
          index: host.index, pciSubsystem: { vendorId: host.device.subsystemVendorId, deviceId: host.device.subsystemId },
          pciClass: host.device.classCode,
          ...(host.device.numaNode !== undefined && host.device.numaNode >= 0 ? { numaNode: host.device.numaNode } : {}),
        } : {}),
        firmwareVersion: lc.mgr.firmwareVersion, state: lc.state, ...(lc.reason !== null ? { reason: lc.reason } : {}),
        policy: lc.mgr.policy.policy, totalVfs: g.config.totalVfs, numVfs: g.vfs().length,
        fb: { total: g.memory.totalBytes, used: s.used, free: s.free, stranded: lc.mgr.policy.strandedBytes(), largestFree: s.largestFree },
        vgpus: lc.records().length,
      };
    });
  }

  unmanaged(): UnmanagedGpu[] {
    const managed = new Set([...this.gpusByBdf.keys()].map((b) => b.toLowerCase()));
    const out = new Map<string, string>();
    for (const f of this.probeFailures) {
      const bdf = f.device.bdf.toLowerCase();
      if (!managed.has(bdf)) out.set(bdf, `its probe failed at step '${f.step}': ${f.error.message}`);
    }
    const configured = [
      ...(this.registry?.expectedDevices?.() ?? []),
      ...this.config.gpus.flatMap((g) => (g.bdf !== undefined ? [g.bdf.toLowerCase()] : [])),
    ];
    for (const bdf of configured) {
      if (!managed.has(bdf) && !out.has(bdf)) out.set(bdf, 'configured, but no bus lists it (is its device running?); restart the daemon once it is');
    }
    return [...out].sort(([a], [b]) => a.localeCompare(b)).map(([bdf, reason]) => ({ bdf, reason }));
  }

  types(gpu: string, opts: { all?: boolean } = {}): ManagerTypeInfo[] {
    const lc = this.lifecycle(gpu);
    const policy = lc.mgr.policy;
    const display = typeDisplay(lc.mgr);
    const freeVfs = lc.gpu.vfs().filter((v) => policy.selectionOf(v.index) === undefined && !lc.isQuarantined(v.index)).map((v) => v.index);
    const usable = lc.state === 'ready' && !lc.createsBlocked();
    const creatable = new Set(freeVfs.length > 0 && usable ? policy.creatable(freeVfs[0]!).map((t) => t.id) : []);
    const out = policy.types.map((t) => {
      let fbBytes = t.fbLength;
      try {
        fbBytes = policy.fbBytesFor(t);
      } catch {
        // ECC on and the type cannot do ECC: it shows its nominal size and 0 available.
      }
      const available = creatable.has(t.id)
        ? Math.max(0, Math.min(
          t.maxInstance - policy.countOf(t.id), freeVfs.length, policy.maxVgpus - policy.selections().length, policy.fitCount(t),
          // Each one needs a management heap below the guest-FB region and a CHID run too: the counts the create
          // path checks.
          lc.mgr.heapRoomFor(t), lc.mgr.chidRoomFor(t),
        ))
        : 0;
      const d = display.get(t.id);
      return {
        id: t.id, name: t.name, series: t.name.slice(-1), fbBytes, profileFbBytes: profileBytesOf(t, display), guestFbBytes: fbBytes,
        maxInstances: t.maxInstance, ...mixedMax(policy.maxInstanceMixed(t)), heads: d?.heads ?? 0, maxResolution: d?.maxResolution ?? '', available,
      };
    });
    return opts.all === true ? out : out.filter((t) => t.available > 0);
  }

  list(filter: { gpu?: string } = {}): ManagerVgpuInfo[] {
    const lcs = filter.gpu !== undefined ? [this.lifecycle(filter.gpu)] : [...this.gpusByBdf.values()];
    // The display facts come from decoding the GPU's whole type-upload payload: once per GPU, not once per vGPU (per
    // vGPU it made GET /v1/vgpus with 256 vGPUs take ~50 ms and churn the heap; bench:scale).
    return lcs.flatMap((lc) => {
      const display = typeDisplay(lc.mgr);
      return lc.records().map((r) => this.infoOf(lc, r, display));
    });
  }

  hasVgpu(id: string): boolean {
    return [...this.gpusByBdf.values()].some((lc) => lc.record(id) !== undefined || lc.retiredRecord(id) !== undefined);
  }

  get(id: string): ManagerVgpuInfo {
    const { lc, rec } = this.findRecord(id);
    return this.infoOf(lc, rec);
  }

  /**
   * A record's info with its type's profile size next to the guest FB (from the GSP records of the metadata), the
   * type's maxima in both modes and, in mixed-size mode, NVIDIA's placement id it holds.
   */
  private infoOf(lc: GpuLifecycle, rec: VgpuRecord, display: ReturnType<typeof typeDisplay> = typeDisplay(lc.mgr)): ManagerVgpuInfo {
    const info = rec.info();
    const policy = lc.mgr.policy;
    const type = policy.typeById(info.typeId);
    if (type === undefined) return info;
    const slot = policy.selectionOf(info.vf)?.mixedSlot;
    return {
      ...info, profileFbBytes: profileBytesOf(type, display), maxInstances: type.maxInstance, ...mixedMax(policy.maxInstanceMixed(type)),
      ...(slot !== undefined ? { mixedPlacementId: slot } : {}),
    };
  }

  async create(req: CreateVgpuRequest): Promise<ManagerVgpuInfo> {
    const lc = this.lifecycle(req.gpu);
    const type = req.type === undefined ? undefined : resolveType(lc.mgr.policy.types, req.type, req.gpu);
    const uuid = req.uuid === undefined ? undefined : this.freeUuid(req.uuid);
    const vf = req.vf ?? this.firstFreeVf(lc, type?.id);
    const rec = await lc.create(vf, type, {
      ...(req.signal !== undefined ? { signal: req.signal } : {}), ...(req.requestId !== undefined ? { requestId: req.requestId } : {}),
      ...(uuid !== undefined ? { uuid } : {}),
    });
    return this.infoOf(lc, rec);
  }

  /** A caller's UUID as bytes, refused when malformed or held by a vGPU of this daemon. */
  private freeUuid(text: string): Uint8Array {
    if (!/^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i.test(text)) {
      throw new VgpuError(ErrorCode.InvalidArgument, `'${text}' is not a UUID`, { hint: 'write it as 8-4-4-4-12 hex digits, or leave it out for a random one' });
    }
    const bytes = uuidBytes(text);
    const dashed = dashedUuid(bytes);
    const holder = this.list().find((v) => v.uuid === dashed);
    if (holder !== undefined) {
      throw new VgpuError(ErrorCode.Busy, `UUID ${dashed} is already vGPU ${holder.id}'s`, { hint: 'pick another UUID', details: { uuid: dashed, vgpu: holder.id } });
    }
    return bytes;
  }

  async destroy(id: string, opts: { force?: boolean; signal?: AbortSignal } = {}): Promise<void> {
    const { lc } = this.findRecord(id);
    await lc.destroy(id, opts.force !== undefined ? { force: opts.force } : {});
  }

  /** A VMM opened (true) or closed (false) the vGPU's device: an in-use vGPU needs `force` to destroy. */
  setInUse(id: string, inUse: boolean): void {
    this.findRecord(id).lc.setInUse(id, inUse);
  }

  /** VFIO_DEVICE_RESET of the vGPU (or an operator's VF reset): RPC RESET, then scrub. */
  reset(id: string, opts: { force?: boolean } = {}): Promise<void> {
    const { lc, rec } = this.findRecord(id);
    if (rec.inUse && opts.force !== true) {
      throw new VgpuError(ErrorCode.Busy, `vGPU ${id} is in use by a VM: a reset would pull its GPU state away under it`, {
        hint: 'reset it from the VM, or pass force', details: { vgpu: id },
      });
    }
    return lc.reset(id);
  }

  setBme(id: string, enable: boolean): Promise<void> {
    return this.findRecord(id).lc.setBme(id, enable);
  }

  readVfAttribute(vfBdf: string, attr: VfAttribute): string {
    const { lc, vf } = this.findVf(vfBdf);
    if (attr === 'creatable_vgpu_types') return lc.mgr.abi.readCreatable(vf);
    if (attr === 'current_vgpu_type') return lc.mgr.abi.readCurrent(vf);
    throw badAttr(attr);
  }

  vfs(gpu: string): VfInfo[] {
    const lc = this.lifecycle(gpu);
    return lc.gpu.vfs().map((v) => {
      const rec = lc.byGfid(v.gfid);
      return {
        index: v.index, bdf: v.bdf, deviceId: v.deviceId, typeId: lc.mgr.selectionOf(v.index)?.type.id ?? 0,
        ...(rec !== undefined ? { vgpuId: rec.id } : {}),
      };
    });
  }

  /** A GPU a layout is about to give vGPUs gets all its VFs when it has none (as sriov-manage -e would). */
  async prepareGpus(gpus: readonly string[]): Promise<void> {
    for (const bdf of gpus) {
      const g = this.lifecycle(bdf).gpu;
      if (g.vfs().length === 0 && g.setNumVfs !== undefined) await this.configureVfs(bdf, g.config.totalVfs);
    }
  }

  /**
   * `sriov_numvfs` for a GPU this daemon drives: the kernel's checks (core/manager/sriov-numvfs-abi.ts), then the
   * HAL's sriov_configure (PhysicalGpu.setNumVfs). Disabling while any VF holds a vGPU is refused with EBUSY: the
   * upstream RFC has no answer for it (its core driver tears the VFs down under running VMs), so vgpud keeps the
   * VMs' devices and says why [inference].
   */
  async configureVfs(gpu: string, numVfs: number): Promise<void> {
    const lc = this.lifecycle(gpu);
    const g = lc.gpu;
    const action = planNumVfs({
      gpu, requested: numVfs, current: g.vfs().length, total: g.config.totalVfs, driverCanConfigure: g.setNumVfs !== undefined,
    });
    if (action === 'none') return;
    if (action === 'disable' && lc.records().length > 0) {
      throw new VfAbiError('EBUSY', `${lc.records().length} VF(s) of ${gpu} hold a vGPU; the VFs cannot be disabled under them`, {
        hint: 'destroy the vGPUs first (vgpuctl list)', details: { gpu, vgpus: lc.records().map((r) => r.id) },
      });
    }
    const held = lc.quarantinedVfs().filter((q) => q.vf >= (action === 'disable' ? 0 : numVfs));
    if (held.length > 0) {
      // A quarantined VF may still hold FB, channels or a firmware task nobody has a record of: removing it would
      // leave those behind for good. Its release tears them down first.
      throw new VfAbiError('EBUSY', `${held.length} VF(s) of ${gpu} are quarantined; the VFs cannot be disabled before they are released`, {
        hint: `vgpuctl vf ${held[0]!.vfBdf} release (see vgpuctl status)`, details: { gpu, quarantined: held.map((q) => q.vfBdf) },
      });
    }
    await g.setNumVfs!(numVfs);
    // The VFs past the new count are gone, and with them their type selections (the host-event handler does the
    // same once its teardown settles; doing it here makes the write's effect visible when it returns).
    for (const s of lc.mgr.policy.selections()) if (s.vf >= numVfs) lc.mgr.policy.deselect(s.vf);
    this.log.info('SR-IOV reconfigured', { gpu, numVfs });
    lc.persistGpu();
  }

  writeVfAttribute(vfBdf: string, attr: VfAttribute, value: string): void {
    const { lc, vf } = this.findVf(vfBdf);
    if (attr !== 'current_vgpu_type') {
      if (attr === 'creatable_vgpu_types') {
        throw new VgpuError(ErrorCode.InvalidArgument, 'creatable_vgpu_types is read-only', { hint: 'write current_vgpu_type' });
      }
      throw badAttr(attr);
    }
    if (lc.isQuarantined(vf)) {
      throw new VgpuError(ErrorCode.Busy, `VF ${vfBdf} is quarantined (its journal record was lost): its type cannot change`, {
        hint: `see \`vgpuctl status\`; release it first: vgpuctl vf ${vfBdf} release`, details: { vfBdf, quarantined: true },
      });
    }
    // The ABI refuses a change while the VF has a vGPU (EBUSY: the lifecycle marks it open).
    lc.mgr.abi.writeCurrent(vf, value);
    lc.persistGpu();
    this.bus.emit('vf:type', { gpu: lc.bdf, vf, vfBdf: lc.vfOf(vf)!.bdf, typeId: lc.mgr.selectionOf(vf)?.type.id ?? 0 });
    // A type written by the operator is theirs: a vGPU created on this VF later does not deselect it on destroy.
  }

  async reloadMetadata(): Promise<{ gpu: string; ok: boolean; reason?: string }[]> {
    // The default file is rebuilt first when its YAML source changed (an operator edited metadata/*.yaml).
    if (this.opts.metadataDir === undefined) this.metadataDir = await defaultMetadataDir();
    const out: { gpu: string; ok: boolean; reason?: string }[] = [];
    for (const [bdf, lc] of this.gpusByBdf) {
      const path = join(this.metadataDir, metadataFileName(lc.mgr.firmwareVersion));
      try {
        const bytes = await (this.opts.manager?.(lc.gpu).readFile ?? readFile)(path);
        await lc.mgr.reloadMetadata(bytes);
        out.push({ gpu: bdf, ok: true });
        this.log.info('vGPU metadata reloaded', { gpu: bdf, path });
      } catch (error) {
        const reason = error instanceof Error ? error.message : String(error);
        out.push({ gpu: bdf, ok: false, reason });
        this.log.warn('vGPU metadata reload refused; the GPU keeps its types', { gpu: bdf, path, error });
      }
    }
    return out;
  }

  setPolicy(gpu: string, policy: TypePolicy): void {
    this.lifecycle(gpu).mgr.setPolicy(policy);
  }

  logs(id: string, lines = 100): string[] {
    const { rec, lc } = this.findRecord(id, true);
    // The logging plugin keeps what it drained, also after destroy (the live areas are gone with the heap then).
    const kept = this.logStore?.lines(id, lines);
    if (kept !== undefined && kept.length > 0) return [...rec.logLines(), ...kept].slice(-Math.max(0, lines));
    const out = rec.logLines();
    for (const ctx of ['init-task', 'vgpu-task', 'kernel'] as const) {
      try {
        const text = Buffer.from(lc.gpu.firmware.readLog(ctx, rec.gfid)).toString('utf8').replace(/\0+$/, '');
        for (const l of text.split('\n')) if (l.trim() !== '') out.push(`[${ctx}] ${l}`);
      } catch {
        // A firmware without that log (or a lost one) simply has nothing to add.
      }
    }
    return lines >= out.length ? out : out.slice(out.length - Math.max(0, lines));
  }

  quarantined(): QuarantinedVf[] {
    return [...this.gpusByBdf.values()].flatMap((lc) => lc.quarantinedVfs());
  }

  releaseVf(vfBdf: string): Promise<VfReleaseReport> {
    const { lc, vf } = this.findVf(vfBdf);
    return lc.releaseVf(vf);
  }

  // ---- helpers ----

  private firstFreeVf(lc: GpuLifecycle, typeId: number | undefined): number {
    const vfs = lc.gpu.vfs();
    const free = vfs.filter((v) => lc.byGfid(v.gfid) === undefined && !lc.isQuarantined(v.index));
    // Prefer a VF the operator already gave this type, then a VF with no type.
    const pick = free.find((v) => typeId !== undefined && lc.mgr.selectionOf(v.index)?.type.id === typeId)
      ?? free.find((v) => lc.mgr.selectionOf(v.index) === undefined);
    if (pick === undefined) {
      throw new VgpuError(ErrorCode.NoSpace, `no free VF on ${lc.bdf} (${vfs.length} VFs, ${vfs.length - free.length} with a vGPU)`, {
        hint: 'destroy a vGPU, or deselect a VF type (write 0 to current_vgpu_type)', details: { gpu: lc.bdf },
      });
    }
    return pick.index;
  }

  private findRecord(id: string, includeRetired = false): { lc: GpuLifecycle; rec: VgpuRecord } {
    for (const lc of this.gpusByBdf.values()) {
      const rec = lc.record(id) ?? (includeRetired ? lc.retiredRecord(id) : undefined);
      if (rec !== undefined) return { lc, rec };
    }
    throw new VgpuError(ErrorCode.NotFound, `no vGPU ${id}`, { hint: 'list the vGPUs for their ids', details: { id } });
  }

  private findVf(vfBdf: string): { lc: GpuLifecycle; vf: number } {
    for (const lc of this.gpusByBdf.values()) {
      const vf = lc.gpu.vfs().find((v) => v.bdf.toLowerCase() === vfBdf.toLowerCase());
      if (vf !== undefined) return { lc, vf: vf.index };
    }
    throw new VgpuError(ErrorCode.NotFound, `no VF ${vfBdf} on a managed GPU`, { hint: 'list the GPUs and their VFs', details: { vfBdf, noSuchVf: true } });
  }

  private policyFor(bdf: string): TypePolicy {
    const gpus = this.config.gpus;
    return (gpus.find((g) => g.bdf?.toLowerCase() === bdf.toLowerCase()) ?? gpus.find((g) => g.bdf === undefined))?.policy ?? 'homogeneous';
  }
}

/**
 * RM client handles from the journal's sequence: namespace 0xc2 in the top byte (the Ada HAL picks its own in 0xc1),
 * the sequence in the low 24 bits.
 */
const RM_HANDLE_NAMESPACE = 0xc2;

function rmHandle(n: number): number {
  return ((RM_HANDLE_NAMESPACE << 24) | (n & 0xffffff)) >>> 0;
}

function mgrClientOf(lc: GpuLifecycle): number {
  return lc.mgr.client.hClient;
}

/**
 * The GPU as PgpuManager.create sees it: its first allocClient uses `hClient` (journalled before the call), so a
 * crash while the manager comes up cannot leak its client. Everything else is the GPU itself.
 */
function withClientHandle(gpu: PhysicalGpu, hClient: number, nextHandle: (taken: number) => Promise<number>): PhysicalGpu {
  const fw = gpu.firmware;
  let used = false;
  const firmware = new Proxy(fw, {
    get(target, prop) {
      if (prop === 'allocClient') {
        return async (opts: Parameters<typeof fw.allocClient>[0] = {}) => {
          if (used) return target.allocClient(opts);
          used = true;
          // A handle the firmware already has belongs to a client the journal lost track of: skip it (journalled).
          for (let h = hClient, tries = 1; ; h = await nextHandle(h), tries++) {
            try {
              return await target.allocClient({ ...opts, hClient: h });
            } catch (e) {
              if (!isDuplicateHandle(e) || tries >= MAX_HANDLE_TRIES) throw e;
            }
          }
        };
      }
      const v = Reflect.get(target, prop, target) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
  return new Proxy(gpu, {
    get(target, prop) {
      if (prop === 'firmware') return firmware;
      const v = Reflect.get(target, prop, target) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

/** How many journalled handles a client allocation tries before giving up on duplicates. */
const MAX_HANDLE_TRIES = 8;

function badAttr(attr: string): VgpuError {
  // NVIDIA's further attributes (vgpu_params, placement_id, gpu_instance_id) exist on real hosts only; the upstream
  // ABI this manager serves has the two, so for it they are files that do not exist.
  return new VfAbiError('ENOENT', `VF attribute '${attr}' does not exist on a GPU vgpud drives (the upstream ABI has creatable_vgpu_types and current_vgpu_type)`, {
    hint: 'read creatable_vgpu_types or current_vgpu_type', details: { attr },
  });
}

async function defaultMetadataDir(): Promise<string> {
  // Imported lazily: building the default metadata compiles the YAML catalogue, which only the daemon needs.
  const { ensureDefaultMetadata } = await import('../../metadata/default-metadata.js');
  return dirname(ensureDefaultMetadata());
}

/** `maxInstancesMixed` only where the type table has NVIDIA's mixed-size rules (an absent key, not `undefined`). */
function mixedMax(n: number | undefined): { maxInstancesMixed?: number } {
  return n === undefined ? {} : { maxInstancesMixed: n };
}
