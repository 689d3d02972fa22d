/**
 * The daemon's side of the vfio-user face: which VF of which GPU is served by which device front, kept in step with
 * the vGPUs' lifecycle, and the answers to what fronts ask of the manager.
 *
 *   vGPU ready                 → the VF is served (its socket exists; an attached VMM makes the vGPU "in use")
 *   vGPU stopping              → the VF's socket goes (its VMM, if any, is told with REQ and disconnected)
 *   vGPU destroyed / failed    → a VF that still has a type selected through current_vgpu_type is served again
 *                                "on demand": the next VMM that connects gets a vGPU created (upstream's VFIO open),
 *                                and the vGPU goes when that VMM leaves (upstream's close)
 *   vGPU lost                  → ERR is signalled to its VMM, then as stopping
 *
 * Fronts run as their own processes (one per GPU) and outlive the daemon; at start the daemon re-attaches to the
 * ones running and re-reads which VMMs are attached. A front whose process dies is started again and given its VFs.
 * In worker mode (the simulated GPU inside the daemon) the front runs in-process with the same code.
 *
 * It reaches vGPUs only through core contracts: VgpuService (TOKENS.VgpuManager), VgpuDeviceAccess, GpuRegistry,
 * MigrationPort (optional), the event bus. It provides VgpuReleaser (forced destroy) and VgpuAttachments (metrics).
 */
import { injectable } from 'inversify';
import type { EventBus } from '../../../core/contracts/events.js';
import { ErrorCode, VgpuError } from '../../../core/contracts/exceptions.js';
import type { GuestPortLocator } from '../../../core/contracts/guest-port.js';
import type { Logger } from '../../../core/contracts/logger.js';
import type { MigrationPort } from '../../../core/contracts/migration-port.js';
import type { VgpuAttachment, VgpuAttachments } from '../../../core/contracts/vgpu-attachments.js';
import type { VgpuDeviceAccess } from '../../../core/contracts/vgpu-device-access.js';
import type { VgpuReleaser } from '../../../core/contracts/vgpu-releaser.js';
import type { VgpuInfo, VgpuService } from '../../../core/contracts/vgpu-service.js';
import type { GpuRegistry } from '../../../core/gpu-registry.js';
import { loadFdOps } from '../../../native/fd-ops.js';
import type { ControlMessage, RequestHandler } from '../control/control-channel.js';
import { Errno } from '../protocol/constants.js';
import { refuse } from '../protocol/protocol-error.js';
import { DeviceFront, socketPath, type EndpointInfo } from '../front/device-front.js';
import type { FrontManager } from '../front/front-manager.js';
import { InProcessFrontClient, type FrontClient } from './front-client.js';
import { launchFront } from './front-launcher.js';
import type { VfioUserConfig } from './vfio-user-config.js';

export interface VfioUserDeps {
  svc: VgpuService;
  access: VgpuDeviceAccess;
  registry: GpuRegistry;
  bus: EventBus;
  migration?: MigrationPort | undefined;
  logger: Logger;
  config: VfioUserConfig;
}

interface Served {
  gpu: string;
  vf: number;
  socket: string;
}

/** JSON-serialisable all the way down (a locator the front process can receive on its command line). */
function isPortable(v: unknown): boolean {
  if (v === null || ['string', 'number', 'boolean'].includes(typeof v)) return true;
  if (Array.isArray(v)) return v.every(isPortable);
  if (typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype) return Object.values(v as object).every(isPortable);
  return false;
}

@injectable()
export class VfioUserService implements VgpuReleaser, VgpuAttachments {
  private d: VfioUserDeps | null = null;
  private readonly fronts = new Map<string, FrontClient>();
  private readonly starting = new Map<string, Promise<FrontClient>>();
  private readonly served = new Map<string, Served>();
  /** Per-VF chain: attach/detach of one VF never interleave. */
  private readonly chains = new Map<string, Promise<void>>();
  private readonly unsubscribe: Array<() => void> = [];
  private stopped = false;

  private get deps(): VfioUserDeps {
    if (this.d === null) throw new VgpuError(ErrorCode.IllegalState, 'the vfio-user face is not started', { hint: 'start the vfio-user plugin' });
    return this.d;
  }

  /** Serve every vGPU and type-selected VF there is, and follow the lifecycle from now on. */
  async start(deps: VfioUserDeps): Promise<void> {
    this.d = deps;
    const bus = deps.bus;
    this.unsubscribe.push(bus.on('vgpu:state', (e) => this.onState(e.gpu, e.vgpuId, e.vf, e.to)));
    this.unsubscribe.push(bus.on('vf:type', (e) => this.onVfType(e.gpu, e.vf, e.vfBdf, e.typeId)));
    for (const g of deps.svc.gpus()) {
      if (deps.registry.find(g.bdf)?.guestPort === undefined) continue;
      try {
        await this.syncGpu(g.bdf);
      } catch (error) {
        deps.logger.error('could not serve the VFs of a GPU through vfio-user', { gpu: g.bdf, error });
      }
    }
  }

  /** Let go of the fronts: process fronts keep serving their VMMs; in-process ones stop. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const u of this.unsubscribe.splice(0)) u();
    await Promise.allSettled([...this.chains.values()]);
    for (const f of this.fronts.values()) await f.release().catch(() => undefined);
    this.fronts.clear();
  }

  // ---- keeping VFs served ----

  /** At start or after a front came back: its endpoints reconciled with the vGPUs and selections there are. */
  private async syncGpu(gpu: string): Promise<void> {
    const d = this.deps;
    const front = await this.frontFor(gpu);
    const vgpus = d.svc.list({ gpu });
    const known = new Map(vgpus.map((v) => [v.vf, v]));
    for (const ep of await front.list()) {
      const v = known.get(ep.vf);
      if (ep.onDemand && ep.vgpuId === null && !ep.attached && v !== undefined && v.state === 'ready' && !this.served.has(v.id)) {
        // The VMM this vGPU was made for left while no daemon was connected (the front's "close" went nowhere).
        d.logger.info('destroying the on-demand vGPU whose VMM left while vgpud was away', { vgpu: v.id, vf: ep.vf });
        await d.svc.destroy(v.id).catch((error: unknown) => d.logger.warn('could not destroy it', { vgpu: v.id, error }));
        known.delete(ep.vf);
        continue;
      }
      if (ep.vgpuId !== null && (v === undefined || v.id !== ep.vgpuId)) {
        await front.detach(ep.vf, 'the vGPU it served is gone');
      } else if (v !== undefined && ep.clientPid !== null) {
        this.expose(v.id, { socket: ep.socket, pid: ep.clientPid });
      }
    }
    for (const v of known.values()) if (v.state === 'ready') await this.attachVgpu(v);
    for (const vf of d.svc.vfs?.(gpu) ?? []) {
      if (vf.typeId !== 0 && vf.vgpuId === undefined) await this.attachOnDemand(gpu, vf.index, vf.bdf);
    }
  }

  private chain(key: string, job: () => Promise<void>): Promise<void> {
    const prev = this.chains.get(key) ?? Promise.resolve();
    const next = prev.then(job, job).catch((error: unknown) => this.d?.logger.warn('vfio-user: a VF update failed', { vf: key, error }));
    this.chains.set(key, next);
    void next.finally(() => { if (this.chains.get(key) === next) this.chains.delete(key); });
    return next;
  }

  private onState(gpu: string, vgpuId: string, vf: number, to: string): void {
    if (this.stopped || this.d?.registry.find(gpu)?.guestPort === undefined) return;
    const key = `${gpu}/${vf}`;
    if (to === 'ready') {
      void this.chain(key, async () => {
        const info = this.tryGet(vgpuId);
        if (info !== undefined && info.state === 'ready') await this.attachVgpu(info);
      });
    } else if (to === 'stopping' || to === 'lost') {
      void this.chain(key, async () => {
        const front = this.fronts.get(gpu);
        if (to === 'lost') await front?.signalError().catch(() => undefined);
        await front?.detach(vf, to === 'lost' ? 'the GPU is lost' : 'the vGPU is being destroyed');
        this.served.delete(vgpuId);
      });
    } else if (to === 'destroyed' || to === 'failed') {
      void this.chain(key, async () => {
        this.served.delete(vgpuId);
        const v = this.d!.svc.vfs?.(gpu).find((x) => x.index === vf);
        if (v !== undefined && v.typeId !== 0 && v.vgpuId === undefined) await this.attachOnDemand(gpu, vf, v.bdf);
      });
    }
  }

  private onVfType(gpu: string, vf: number, vfBdf: string, typeId: number): void {
    if (this.stopped || this.d?.registry.find(gpu)?.guestPort === undefined) return;
    void this.chain(`${gpu}/${vf}`, async () => {
      const v = this.d!.svc.vfs?.(gpu).find((x) => x.index === vf);
      if (v?.vgpuId !== undefined) return; // a running vGPU's VF is served already
      if (typeId !== 0) await this.attachOnDemand(gpu, vf, vfBdf);
      else await this.fronts.get(gpu)?.detach(vf, 'the VF\'s type was deselected');
    });
  }

  private async attachVgpu(v: VgpuInfo): Promise<void> {
    const front = await this.frontFor(v.gpu);
    const ep = await front.attach({ vgpuId: v.id, vf: v.vf, vfBdf: v.vfBdf, migrationFlags: this.migrationFlags(v.id), fbStreamModule: this.fbStreamModule() });
    this.served.set(v.id, { gpu: v.gpu, vf: v.vf, socket: ep.socket });
    this.expose(v.id, { socket: ep.socket, pid: ep.clientPid });
  }

  private async attachOnDemand(gpu: string, vf: number, vfBdf: string): Promise<void> {
    const front = await this.frontFor(gpu);
    await front.attach({ vgpuId: null, vf, vfBdf, migrationFlags: 0, fbStreamModule: this.fbStreamModule() });
    this.d!.logger.info('VF with a selected type served on demand (its vGPU is created when a VMM connects)', {
      gpu, vf, socket: socketPath(this.d!.config.dir, vfBdf),
    });
  }

  /** Where a process front finds the FB half of the migration stream (it then moves FB pages itself). */
  private fbStreamModule(): string | null {
    return this.d?.migration?.fbStreamModule?.() ?? null;
  }

  private migrationFlags(vgpuId: string): number {
    try {
      return this.d?.migration?.flags(vgpuId) ?? 0;
    } catch {
      return 0;
    }
  }

  private expose(vgpuId: string, e: { socket: string; pid: number | null } | null): void {
    try {
      this.deps.access.device(vgpuId).setExposure(e);
    } catch {
      // the vGPU is gone (destroyed meanwhile): nothing to record
    }
  }

  private tryGet(id: string): VgpuInfo | undefined {
    try {
      return this.deps.svc.get(id);
    } catch {
      return undefined;
    }
  }

  // ---- fronts ----

  private frontFor(gpu: string): Promise<FrontClient> {
    const have = this.fronts.get(gpu);
    if (have !== undefined) return Promise.resolve(have);
    let p = this.starting.get(gpu);
    if (p === undefined) {
      p = this.openFront(gpu).finally(() => this.starting.delete(gpu));
      this.starting.set(gpu, p);
    }
    return p;
  }

  private async openFront(gpu: string): Promise<FrontClient> {
    const d = this.deps;
    const locator = d.registry.get(gpu).guestPort;
    if (locator === undefined) throw refuse(Errno.ENODEV, `${gpu} has no guest side to serve`, 'a HAL without guestPort cannot be used through vfio-user');
    const inProcess = d.config.front === 'in-process' || (d.config.front === 'auto' && !isPortable(locator.options));
    if (d.config.front === 'process' && !isPortable(locator.options)) {
      d.logger.warn('this GPU\'s device lives in the daemon (worker mode): its front runs in-process too', { gpu });
    }
    const log = d.logger.child({ gpu });
    let front: FrontClient;
    if (inProcess || !isPortable(locator.options)) {
      const df = new DeviceFront({
        gpu, locator, dir: d.config.dir, ops: loadFdOps(), manager: this.localManager(gpu), logger: log,
        access: { mode: d.config.mode, ...(d.config.owner !== undefined ? { owner: d.config.owner } : {}), ...(d.config.group !== undefined ? { group: d.config.group } : {}) },
        ...(d.config.maxDmaMaps !== undefined ? { caps: { maxDmaMaps: d.config.maxDmaMaps } } : {}),
      });
      await df.open();
      front = new InProcessFrontClient(gpu, df);
    } else {
      front = await launchFront({
        gpu, locator: locator as GuestPortLocator, dir: d.config.dir, mode: d.config.mode, logger: log, handler: this.controlHandler(gpu),
        ...(d.config.owner !== undefined ? { owner: d.config.owner } : {}),
        ...(d.config.group !== undefined ? { group: d.config.group } : {}),
        ...(d.config.maxDmaMaps !== undefined ? { maxDmaMaps: d.config.maxDmaMaps } : {}),
      });
      front.onLost(() => this.onFrontLost(gpu, front));
    }
    this.fronts.set(gpu, front);
    return front;
  }

  /** A front process died: its VMMs are gone with it. Start it again and give it its VFs. */
  private onFrontLost(gpu: string, front: FrontClient): void {
    if (this.fronts.get(gpu) !== front) return;
    this.fronts.delete(gpu);
    for (const [id, s] of this.served) if (s.gpu === gpu) this.expose(id, { socket: s.socket, pid: null });
    if (this.stopped) return;
    void this.chain(`${gpu}/front`, () => this.syncGpu(gpu)).catch(() => undefined);
  }

  // ---- what fronts ask ----

  /** The same answers for a process front (control channel) and an in-process one. */
  private async answer(gpu: string, op: string, m: ControlMessage, data: Buffer): Promise<{ reply?: Record<string, unknown>; data?: Buffer } | void> {
    const d = this.deps;
    const id = String(m.vgpuId ?? '');
    const mig = (): MigrationPort => {
      if (d.migration === undefined) throw refuse(Errno.ENOTTY, 'migration is not loaded', 'enable the migration plugin');
      return d.migration;
    };
    switch (op) {
      case 'reset':
        if (d.migration !== undefined) await d.migration.reset(id);
        else await d.access.device(id).reset();
        return;
      case 'mig-state':
        return { reply: { state: mig().state(id) } };
      case 'mig-set':
        await mig().setState(id, Number(m.state), m.fbByCaller === true ? { fbByCaller: true } : {});
        return;
      case 'mig-compat': {
        const port = mig();
        if (port.compat === undefined) throw refuse(Errno.ENOTSUP, 'this migration plugin cannot name its compatibility data', 'update vgpud');
        return { reply: { compat: port.compat(id) } };
      }
      case 'mig-read':
        return { data: await mig().read(id, Number(m.max)) };
      case 'mig-write':
        await mig().write(id, data);
        return;
      case 'bme':
        await d.access.device(id).setBme(m.on === true).catch((error: unknown) => d.logger.warn('UPDATE_BME_STATE failed', { vgpu: id, error }));
        return;
      case 'client': {
        const s = this.served.get(id);
        if (s !== undefined) this.expose(id, { socket: s.socket, pid: typeof m.pid === 'number' ? m.pid : null });
        return;
      }
      case 'open': {
        const vf = Number(m.vf);
        const info = await d.svc.create({ gpu, vf });
        const socket = socketPath(d.config.dir, info.vfBdf);
        this.served.set(info.id, { gpu, vf, socket });
        this.expose(info.id, { socket, pid: null });
        return { reply: { vgpuId: info.id, migrationFlags: this.migrationFlags(info.id) } };
      }
      case 'close':
        await d.svc.destroy(id).catch((error: unknown) => d.logger.warn('could not destroy the vGPU its VMM closed', { vgpu: id, error }));
        return;
      default:
        throw refuse(Errno.ENOTSUP, `unknown front request ${op}`);
    }
  }

  private controlHandler(gpu: string): RequestHandler {
    return (m, data) => this.answer(gpu, String(m.op), m, data);
  }

  private localManager(gpu: string): FrontManager {
    const ask = (op: string, m: ControlMessage, data: Buffer = Buffer.alloc(0)): Promise<{ reply?: Record<string, unknown>; data?: Buffer } | void> =>
      this.answer(gpu, op, m, data);
    const log = (op: string) => (error: unknown): void => this.d?.logger.warn(`vfio-user ${op} failed`, { gpu, error });
    return {
      reset: async (vgpuId) => { await ask('reset', { vgpuId }); },
      migrationState: async (vgpuId) => Number(((await ask('mig-state', { vgpuId })) as { reply: { state: number } }).reply.state),
      setMigrationState: async (vgpuId, state, fbByCaller) => { await ask('mig-set', { vgpuId, state, fbByCaller: fbByCaller === true }); },
      migrationCompat: async (vgpuId) => String(((await ask('mig-compat', { vgpuId })) as { reply: { compat: string } }).reply.compat),
      migrationRead: async (vgpuId, max) => ((await ask('mig-read', { vgpuId, max })) as { data: Buffer }).data,
      migrationWrite: async (vgpuId, d) => { await ask('mig-write', { vgpuId }, d); },
      busMaster: (vgpuId, on) => { void ask('bme', { vgpuId, on }).catch(log('bme')); },
      client: (vgpuId, pid) => { void ask('client', { vgpuId, pid }).catch(log('client')); },
      open: async (vf) => {
        const r = (await ask('open', { vf })) as { reply: { vgpuId: string; migrationFlags: number } };
        return { vgpuId: r.reply.vgpuId, migrationFlags: r.reply.migrationFlags };
      },
      close: (vgpuId) => { void ask('close', { vgpuId }).catch(log('close')); },
    };
  }

  // ---- VgpuReleaser ----

  async release(vgpuId: string, reason: string): Promise<void> {
    const s = this.served.get(vgpuId);
    if (s === undefined) return;
    await this.fronts.get(s.gpu)?.disconnect(s.vf, reason);
    this.expose(vgpuId, { socket: s.socket, pid: null });
  }

  // ---- VgpuAttachments ----

  async snapshot(): Promise<VgpuAttachment[]> {
    const out: VgpuAttachment[] = [];
    for (const [gpu, f] of this.fronts) {
      let eps: EndpointInfo[];
      try {
        eps = await f.list();
      } catch {
        continue;
      }
      for (const e of eps) {
        if (e.vgpuId === null) continue;
        out.push({
          vgpuId: e.vgpuId, gpu, vf: e.vf, socket: e.socket, attached: e.attached, clientPid: e.clientPid,
          mmioReads: e.mmioReads, mmioWrites: e.mmioWrites, interrupts: e.interrupts, dmaBytes: e.dmaBytes,
        });
      }
    }
    return out;
  }

  /** Stop every front (the VMMs are disconnected): for tests and an operator's explicit request. */
  async shutdownFronts(): Promise<void> {
    for (const f of this.fronts.values()) await f.shutdown().catch(() => undefined);
    this.fronts.clear();
  }

  frontPid(gpu: string): number | undefined {
    return this.fronts.get(gpu)?.pid;
  }
}
