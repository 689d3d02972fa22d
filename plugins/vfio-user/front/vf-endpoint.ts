/**
 * One VF's vfio-user socket in a device front: listening at `<dir>/<VF BDF>.sock` (mode 0660, owner/group as
 * configured), one client at a time — a second connection while one is attached is accepted and closed at once, so
 * it fails cleanly instead of hanging in the backlog — and the session that serves it.
 *
 * Two kinds: a VF with a running vGPU ('vgpu'), and a VF with only a type selected ('on-demand'): its vGPU is created
 * when a VMM connects and destroyed when it leaves (upstream's VFIO open/close), through the manager.
 */
import { chmodSync, chownSync, rmSync } from 'node:fs';
import { OwnedPath } from './owned-path.js';
import type { GuestPort } from '../../../core/contracts/guest-port.js';
import type { Logger } from '../../../core/contracts/logger.js';
import type { FdOps, FdWatcher } from '../../../native/fd-ops.js';
import { WATCH_READABLE } from '../../../native/fd-ops.js';
import { Errno } from '../protocol/constants.js';
import { refuse } from '../protocol/protocol-error.js';
import type { ServerCaps } from '../protocol/version.js';
import { VfioUserSession } from '../server/vfio-user-session.js';
import type { ManagerLink } from '../device/manager-link.js';
import { VgpuPciDevice } from '../device/vgpu-pci-device.js';
import { FbStreamLink } from './fb-stream-link.js';
import type { FrontManager } from './front-manager.js';

export interface EndpointOptions {
  ops: FdOps;
  port: GuestPort;
  vf: number;
  socket: string;
  manager: FrontManager;
  logger: Logger;
  fbFd: number | null;
  /** The vGPU served, or null for an on-demand VF. */
  vgpuId: string | null;
  migrationFlags: number;
  owner?: number;
  group?: number;
  mode: number;
  caps?: Partial<ServerCaps>;
  /** A client attached or left. */
  onClientChange?: () => void;
  /** The migration plugin's FbStreamModule path, when the daemon named one (fb-stream-link.ts). */
  fbStreamModule?: () => string | null;
}

export interface EndpointCounters {
  attached: boolean;
  clientPid: number | null;
  mmioReads: number;
  mmioWrites: number;
  interrupts: number;
  dmaBytes: number;
  messages: number;
  errors: number;
  connections: number;
  refusedConnections: number;
}

export class VfEndpoint {
  readonly vf: number;
  readonly socket: string;
  vgpuId: string | null;
  onDemand: boolean;
  private migrationFlags: number;
  private listenFd: number;
  private readonly file: OwnedPath;
  private readonly watcher: FdWatcher;
  private session: VfioUserSession | null = null;
  private device: VgpuPciDevice | null = null;
  private opening = false;
  private closed = false;
  private readonly totals = { mmioReads: 0, mmioWrites: 0, interrupts: 0, dmaBytes: 0, messages: 0, errors: 0, connections: 0, refused: 0 };
  private readonly log: Logger;
  private clientGone: Array<() => void> = [];

  constructor(private readonly o: EndpointOptions) {
    this.vf = o.vf;
    this.socket = o.socket;
    this.vgpuId = o.vgpuId;
    this.onDemand = o.vgpuId === null;
    this.migrationFlags = o.migrationFlags;
    this.log = o.logger.child({ vf: o.vf });
    rmSync(o.socket, { force: true }); // a stale socket of an earlier front: nobody listens on it any more
    this.listenFd = o.ops.unixListen(o.socket, 4);
    this.file = new OwnedPath(o.socket);
    try {
      chmodSync(o.socket, o.mode);
      if (o.owner !== undefined || o.group !== undefined) chownSync(o.socket, o.owner ?? -1, o.group ?? -1);
    } catch (e) {
      o.ops.closeFd(this.listenFd);
      rmSync(o.socket, { force: true });
      throw e;
    }
    this.watcher = o.ops.watch(this.listenFd, (flags) => {
      if ((flags & WATCH_READABLE) !== 0) this.accept();
    });
    this.watcher.start(true, false);
  }

  get attached(): boolean {
    return this.session !== null && !this.session.isClosed;
  }

  get clientPid(): number | null {
    return this.attached ? this.session!.peer.pid : null;
  }

  /**
   * The daemon says `vgpuId` runs on this VF. On an on-demand VF with no vGPU of its own (none being opened) it is
   * one made by `create`: the VF is served for it from now on, and it stays when its VMM leaves.
   */
  bind(vgpuId: string, migrationFlags: number): void {
    if (this.onDemand && this.vgpuId === null && !this.opening) this.onDemand = false;
    this.setVgpu(vgpuId, migrationFlags);
  }

  private setVgpu(vgpuId: string, migrationFlags: number): void {
    this.vgpuId = vgpuId;
    this.migrationFlags = migrationFlags;
  }

  counters(): EndpointCounters {
    const s = this.session;
    const live = s !== null && !s.isClosed;
    const c = s?.counters;
    return {
      attached: live,
      clientPid: live ? s.peer.pid : null,
      mmioReads: this.totals.mmioReads + (c?.regionReads[0] ?? 0),
      mmioWrites: this.totals.mmioWrites + (c?.regionWrites[0] ?? 0),
      interrupts: this.totals.interrupts + (this.device?.irqs.delivered ?? 0),
      dmaBytes: this.totals.dmaBytes + (c === undefined ? 0 : c.dmaBytesRead + c.dmaBytesWritten),
      messages: this.totals.messages + (c?.messages ?? 0),
      errors: this.totals.errors + (c?.errors ?? 0),
      connections: this.totals.connections,
      refusedConnections: this.totals.refused,
    };
  }

  /** The device had news for this VF (interrupts, DMA). */
  deviceEvent(): void {
    this.device?.deliverInterrupts();
    void this.o.port.pumpDma(this.vf).catch((error: unknown) => this.log.warn('DMA for the device failed', { error }));
  }

  private accept(): void {
    for (;;) {
      let fd: number | null;
      try {
        fd = this.o.ops.accept(this.listenFd);
      } catch (error) {
        this.log.warn('accept failed', { error });
        return;
      }
      if (fd === null) return;
      this.totals.connections++;
      if (this.attached || this.opening || this.closed) {
        // One client per device: refuse cleanly (the connection closes at once).
        this.totals.refused++;
        let pid = 0;
        try { pid = this.o.ops.peerCred(fd).pid; } catch { /* gone already */ }
        this.log.warn('second vfio-user client refused: the device already has one', { socket: this.socket, pid, attachedPid: this.clientPid });
        this.closeFd(fd);
        continue;
      }
      if (this.vgpuId === null) void this.openOnDemand(fd);
      else this.serve(fd);
    }
  }

  private async openOnDemand(fd: number): Promise<void> {
    this.opening = true;
    try {
      const r = await this.o.manager.open(this.vf);
      this.setVgpu(r.vgpuId, r.migrationFlags);
      this.log.info('vGPU created for the VMM that opened the VF', { vgpu: r.vgpuId });
      if (this.closed) throw refuse(Errno.ENODEV, 'the VF stopped being served');
      this.serve(fd);
    } catch (error) {
      this.log.warn('could not open the VF for the VMM (vGPU create failed); connection closed', { error });
      this.closeFd(fd);
    } finally {
      this.opening = false;
    }
  }

  private serve(fd: number): void {
    const vgpuId = this.vgpuId!;
    const m = this.o.manager;
    const fbStream = new FbStreamLink(m, vgpuId, () => this.o.port.vf(this.vf), this.o.fbStreamModule ?? (() => null), this.log);
    this.clientGone.push(() => fbStream.close());
    const link: ManagerLink = {
      reset: async () => { fbStream.close(); await m.reset(vgpuId); },
      migrationFlags: () => this.migrationFlags,
      migrationState: () => m.migrationState(vgpuId),
      setMigrationState: (s) => fbStream.setState(s),
      migrationRead: (max, alloc) => fbStream.read(max, alloc),
      migrationWrite: (d) => fbStream.write(d),
      busMaster: (on) => m.busMaster(vgpuId, on),
    };
    this.foldCounters();
    let device: VgpuPciDevice;
    try {
      device = new VgpuPciDevice({
        ops: this.o.ops, guest: this.o.port.vf(this.vf), link, logger: this.log, fbFd: this.o.fbFd,
        onClient: (c) => m.client(vgpuId, c?.pid ?? null),
      });
      this.device = device;
      this.session = new VfioUserSession({
        ops: this.o.ops, fd, device, logger: this.log, ...(this.o.caps !== undefined ? { caps: this.o.caps } : {}),
        onClose: () => this.onClientGone(vgpuId),
      });
    } catch (error) {
      this.log.warn('could not serve the vfio-user client', { error });
      this.closeFd(fd);
      return;
    }
    this.log.info('vfio-user client connected', { vgpu: vgpuId, pid: this.session.peer.pid });
    this.o.onClientChange?.();
  }

  private onClientGone(vgpuId: string): void {
    for (const w of this.clientGone.splice(0)) w();
    if (this.onDemand && !this.closed) {
      // Upstream's VFIO close: the vGPU made for this VMM goes with it.
      this.o.manager.close(vgpuId);
      this.vgpuId = null;
    }
    this.o.onClientChange?.();
  }

  /** Disconnect the client (REQ first when `request`: the host wants the device back). Resolves once it is gone. */
  disconnect(reason: string, request = true): Promise<void> {
    const s = this.session;
    if (s === null || s.isClosed) return Promise.resolve();
    if (request) this.device?.signalRequest();
    const gone = new Promise<void>((r) => this.clientGone.push(r));
    s.close(reason);
    return gone;
  }

  /** The GPU failed: tell the VMM through ERR. */
  signalError(): void {
    this.device?.signalError();
  }

  private foldCounters(): void {
    const c = this.counters();
    this.totals.mmioReads = c.mmioReads;
    this.totals.mmioWrites = c.mmioWrites;
    this.totals.interrupts = c.interrupts;
    this.totals.dmaBytes = c.dmaBytes;
    this.totals.messages = c.messages;
    this.totals.errors = c.errors;
  }

  /** Stop serving: disconnect the client, stop listening, remove the socket file. */
  async close(reason = 'VF no longer served'): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.watcher.close();
    this.closeFd(this.listenFd);
    this.file.remove();
    await this.disconnect(reason);
  }

  private closeFd(fd: number): void {
    try {
      this.o.ops.closeFd(fd);
    } catch {
      // already closed
    }
  }
}
