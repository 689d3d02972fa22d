/**
 * A device front: the vfio-user sockets of every VF of ONE physical GPU, served from one process (256 vGPUs do not
 * mean 256 Node processes). It opens the GPU's guest side itself from the HAL's locator, so it does not depend on
 * the daemon's process: killing or restarting vgpud leaves its VMMs connected, their FB mapped, their doorbells and
 * interrupts working. The daemon tells it which VFs to serve (attach/detach) and answers what only the manager can
 * do (reset, migration) through a FrontManager.
 *
 * Interrupts and DMA requests of all VFs arrive through one wait per GPU (GuestPort.watch), no per-VF timer.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { GuestPort, GuestPortLocator, GuestPortModule } from '../../../core/contracts/guest-port.js';
import type { Logger } from '../../../core/contracts/logger.js';
import type { FdOps } from '../../../native/fd-ops.js';
import type { ServerCaps } from '../protocol/version.js';
import type { FrontManager } from './front-manager.js';
import { VfEndpoint, type EndpointCounters } from './vf-endpoint.js';

export interface FrontAccess {
  /** Socket mode (default 0o660), owner uid and group gid (default: the front's own). */
  mode: number;
  owner?: number;
  group?: number;
}

export interface DeviceFrontOptions {
  gpu: string;
  locator: GuestPortLocator;
  /** Socket directory. */
  dir: string;
  ops: FdOps;
  manager: FrontManager;
  logger: Logger;
  access: FrontAccess;
  caps?: Partial<ServerCaps>;
  /** A VMM attached to or left one of the VFs. */
  onClientChange?: () => void;
}

export interface AttachRequest {
  /** The vGPU on the VF, or null for a VF with only a type selected (created when a VMM connects). */
  vgpuId: string | null;
  vf: number;
  vfBdf: string;
  migrationFlags: number;
  /** The migration plugin's FbStreamModule (MigrationPort.fbStreamModule): the front then moves FB pages itself. */
  fbStreamModule?: string | null;
}

export interface EndpointInfo extends EndpointCounters {
  vf: number;
  vgpuId: string | null;
  socket: string;
  onDemand: boolean;
}

/** The socket of a VF: `<dir>/<VF BDF>.sock`. */
export function socketPath(dir: string, vfBdf: string): string {
  return join(dir, `${vfBdf}.sock`);
}

export class DeviceFront {
  readonly gpu: string;
  private port: GuestPort | null = null;
  private fbFd: number | null = null;
  private stopWatch: (() => void) | null = null;
  private readonly endpoints = new Map<number, VfEndpoint>();
  private readonly log: Logger;
  /** Latest FbStreamModule path the daemon named (null: migration data goes through the daemon). */
  private fbStreamModule: string | null = null;

  constructor(private readonly o: DeviceFrontOptions) {
    this.gpu = o.gpu;
    this.log = o.logger.child({ gpu: o.gpu });
  }

  async open(): Promise<void> {
    const mod = (await import(pathToFileURL(this.o.locator.module).href)) as GuestPortModule;
    this.port = mod.openGuestPort(this.o.locator.options);
    mkdirSync(this.o.dir, { recursive: true });
    this.stopWatch = this.port.watch((vf) => this.endpoints.get(vf)?.deviceEvent());
    this.log.info('device front serving', { dir: this.o.dir, vfs: this.port.numVfs });
  }

  private fb(vf: number): number | null {
    if (this.fbFd !== null) return this.fbFd;
    const file = this.port!.vf(vf).fbFile();
    if (file === null) return null;
    this.fbFd = this.o.ops.openFile(file.path, true);
    return this.fbFd;
  }

  /** Serve a VF (idempotent: a VF already served keeps its socket and client; a vGPU id given now is recorded). */
  attach(r: AttachRequest): EndpointInfo {
    if (this.port === null) throw new Error('device front is not open');
    if (r.fbStreamModule !== undefined) this.fbStreamModule = r.fbStreamModule;
    const existing = this.endpoints.get(r.vf);
    if (existing !== undefined) {
      if (r.vgpuId !== null && existing.vgpuId !== r.vgpuId) existing.bind(r.vgpuId, r.migrationFlags);
      return this.info(existing);
    }
    this.port.vf(r.vf); // checks the index
    const ep = new VfEndpoint({
      ops: this.o.ops, port: this.port, vf: r.vf, socket: socketPath(this.o.dir, r.vfBdf), manager: this.o.manager,
      logger: this.log, fbFd: this.fb(r.vf), vgpuId: r.vgpuId, migrationFlags: r.migrationFlags,
      mode: this.o.access.mode, fbStreamModule: () => this.fbStreamModule,
      ...(this.o.access.owner !== undefined ? { owner: this.o.access.owner } : {}),
      ...(this.o.access.group !== undefined ? { group: this.o.access.group } : {}),
      ...(this.o.caps !== undefined ? { caps: this.o.caps } : {}),
      ...(this.o.onClientChange !== undefined ? { onClientChange: this.o.onClientChange } : {}),
    });
    this.endpoints.set(r.vf, ep);
    this.log.info('VF served', { vf: r.vf, vgpu: r.vgpuId, socket: ep.socket, onDemand: r.vgpuId === null });
    return this.info(ep);
  }

  /** Stop serving a VF: its client is disconnected (REQ signalled first) and its socket removed. */
  async detach(vf: number, reason = 'VF no longer served'): Promise<void> {
    const ep = this.endpoints.get(vf);
    if (ep === undefined) return;
    this.endpoints.delete(vf);
    await ep.close(reason);
    this.log.info('VF no longer served', { vf, reason });
  }

  /** Disconnect the VF's client but keep serving the socket (forced destroy asks this first). */
  async disconnect(vf: number, reason: string): Promise<void> {
    await this.endpoints.get(vf)?.disconnect(reason);
  }

  /** The GPU failed: signal ERR to every attached VMM. */
  signalError(): void {
    for (const ep of this.endpoints.values()) ep.signalError();
  }

  list(): EndpointInfo[] {
    return [...this.endpoints.values()].sort((a, b) => a.vf - b.vf).map((ep) => this.info(ep));
  }

  /** Some VF has a VMM attached (or one is being opened). */
  hasClients(): boolean {
    for (const ep of this.endpoints.values()) if (ep.attached) return true;
    return false;
  }

  get size(): number {
    return this.endpoints.size;
  }

  private info(ep: VfEndpoint): EndpointInfo {
    return { vf: ep.vf, vgpuId: ep.vgpuId, socket: ep.socket, onDemand: ep.onDemand, ...ep.counters() };
  }

  async close(reason = 'device front stopping'): Promise<void> {
    for (const vf of [...this.endpoints.keys()]) await this.detach(vf, reason);
    this.stopWatch?.();
    this.stopWatch = null;
    this.port?.close();
    this.port = null;
    if (this.fbFd !== null) {
      try {
        this.o.ops.closeFd(this.fbFd);
      } catch {
        // already closed
      }
      this.fbFd = null;
    }
  }
}
