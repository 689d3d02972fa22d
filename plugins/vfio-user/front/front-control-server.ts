/**
 * The device front's end of the control channel: the daemon connects to `<dir>/front-<GPU>.ctl` (mode 0600; a newer
 * connection replaces an older one — a restarted daemon takes over) and asks the front to serve or stop serving VFs,
 * lists what it serves, and answers what the front asks of the manager (front-manager.ts). While no daemon is
 * connected the front keeps serving its VMMs; its questions fail with EAGAIN.
 */
import { chmodSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { OwnedPath } from './owned-path.js';
import type { Logger } from '../../../core/contracts/logger.js';
import { ControlChannel, type ControlMessage } from '../control/control-channel.js';
import { Errno } from '../protocol/constants.js';
import { refuse } from '../protocol/protocol-error.js';
import type { AttachRequest, DeviceFront } from './device-front.js';
import type { FrontManager } from './front-manager.js';

/** The front's FrontManager: every call goes to whichever daemon is connected. */
export class ChannelManager implements FrontManager {
  channel: ControlChannel | null = null;

  private ch(): ControlChannel {
    if (this.channel === null || this.channel.isClosed) {
      throw refuse(Errno.EAGAIN, 'vgpud is not connected to this device front', 'retry once vgpud runs again');
    }
    return this.channel;
  }

  async reset(vgpuId: string): Promise<void> {
    await this.ch().request('reset', { vgpuId });
  }
  async migrationState(vgpuId: string): Promise<number> {
    return Number((await this.ch().request('mig-state', { vgpuId })).msg.state);
  }
  async setMigrationState(vgpuId: string, state: number, fbByCaller = false): Promise<void> {
    await this.ch().request('mig-set', { vgpuId, state, fbByCaller });
  }
  async migrationCompat(vgpuId: string): Promise<string> {
    return String((await this.ch().request('mig-compat', { vgpuId })).msg.compat);
  }
  async migrationRead(vgpuId: string, max: number): Promise<Buffer> {
    return (await this.ch().request('mig-read', { vgpuId, max })).data;
  }
  async migrationWrite(vgpuId: string, data: Buffer): Promise<void> {
    await this.ch().request('mig-write', { vgpuId }, data);
  }
  busMaster(vgpuId: string, on: boolean): void {
    this.channel?.notify('bme', { vgpuId, on });
  }
  client(vgpuId: string, pid: number | null): void {
    this.channel?.notify('client', { vgpuId, pid });
  }
  async open(vf: number): Promise<{ vgpuId: string; migrationFlags: number }> {
    const r = await this.ch().request('open', { vf });
    return { vgpuId: String(r.msg.vgpuId), migrationFlags: Number(r.msg.migrationFlags ?? 0) };
  }
  close(vgpuId: string): void {
    this.channel?.notify('close', { vgpuId });
  }
}

export class FrontControlServer {
  private server: Server | null = null;
  private file: OwnedPath | null = null;

  constructor(
    private readonly front: DeviceFront,
    private readonly manager: ChannelManager,
    private readonly path: string,
    private readonly log: Logger,
    private readonly onShutdown: () => void,
    /** The connected daemon went away (stopped, crashed, or let go of the front). */
    private readonly onDaemonGone: () => void = () => undefined,
  ) {}

  async start(): Promise<void> {
    rmSync(this.path, { force: true });
    const server = createServer((sock) => this.accept(sock));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.path, () => resolve());
    });
    chmodSync(this.path, 0o600);
    this.file = new OwnedPath(this.path);
    this.server = server;
  }

  private accept(sock: Socket): void {
    const previous = this.manager.channel;
    const ch = new ControlChannel(sock, (m, data) => this.handle(m, data));
    this.manager.channel = ch;
    previous?.close(); // the newest daemon wins: an old connection is a daemon that died without closing it
    ch.onClosed(() => {
      if (this.manager.channel !== ch) return; // replaced by a newer daemon's connection
      this.manager.channel = null;
      this.log.info('vgpud disconnected from the device front');
      this.onDaemonGone();
    });
    this.log.info('vgpud connected to the device front');
  }

  private async handle(m: ControlMessage, _data: Buffer): Promise<{ reply?: Record<string, unknown> } | void> {
    switch (m.op) {
      case 'hello':
        return { reply: { gpu: this.front.gpu, pid: process.pid, endpoints: this.front.list() } };
      case 'attach':
        return { reply: { endpoint: this.front.attach(m.request as AttachRequest) } };
      case 'detach':
        await this.front.detach(Number(m.vf), String(m.reason ?? 'detached by vgpud'));
        return;
      case 'disconnect':
        await this.front.disconnect(Number(m.vf), String(m.reason ?? 'disconnected by vgpud'));
        return;
      case 'list':
        return { reply: { endpoints: this.front.list() } };
      case 'error':
        this.front.signalError();
        return;
      case 'shutdown':
        setImmediate(() => this.onShutdown());
        return;
      default:
        throw refuse(Errno.ENOTSUP, `unknown control request ${String(m.op)}`);
    }
  }

  close(): void {
    this.manager.channel?.close();
    this.server?.close();
    this.file?.remove();
  }
}
