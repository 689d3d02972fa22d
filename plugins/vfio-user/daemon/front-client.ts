/**
 * The daemon's handle on one GPU's device front, whether the front is its own process (reached over the control
 * channel) or, in worker mode, a DeviceFront inside the daemon (the simulator is in this process too, so nothing
 * would outlive the daemon anyway).
 */
import type { Logger } from '../../../core/contracts/logger.js';
import type { ControlChannel } from '../control/control-channel.js';
import type { AttachRequest, DeviceFront, EndpointInfo } from '../front/device-front.js';

export interface FrontClient {
  readonly gpu: string;
  /** Process id of the front (the daemon's own in worker mode). */
  readonly pid: number;
  readonly inProcess: boolean;
  attach(r: AttachRequest): Promise<EndpointInfo>;
  detach(vf: number, reason: string): Promise<void>;
  /** Disconnect the VF's client (REQ signalled first), keep serving the socket. */
  disconnect(vf: number, reason: string): Promise<void>;
  list(): Promise<EndpointInfo[]>;
  signalError(): Promise<void>;
  /** Let go of the front; a process front keeps running (and serving its VMMs). */
  release(): Promise<void>;
  /** Stop the front: its VMMs are disconnected. */
  shutdown(): Promise<void>;
  /** Called when the front went away unexpectedly (its process died). */
  onLost(fn: () => void): void;
}

export class ProcessFrontClient implements FrontClient {
  readonly inProcess = false;
  private lostFns: Array<() => void> = [];
  private released = false;

  constructor(readonly gpu: string, readonly pid: number, private readonly ch: ControlChannel, log: Logger) {
    ch.onClosed(() => {
      if (this.released) return;
      log.warn('lost the device front (its process died or closed the channel)', { gpu, pid });
      for (const f of this.lostFns.splice(0)) f();
    });
  }

  async attach(r: AttachRequest): Promise<EndpointInfo> {
    return (await this.ch.request('attach', { request: r })).msg.endpoint as EndpointInfo;
  }
  async detach(vf: number, reason: string): Promise<void> {
    await this.ch.request('detach', { vf, reason });
  }
  async disconnect(vf: number, reason: string): Promise<void> {
    await this.ch.request('disconnect', { vf, reason });
  }
  async list(): Promise<EndpointInfo[]> {
    return (await this.ch.request('list')).msg.endpoints as EndpointInfo[];
  }
  async signalError(): Promise<void> {
    await this.ch.request('error');
  }
  async release(): Promise<void> {
    this.released = true;
    this.ch.close();
  }
  async shutdown(): Promise<void> {
    this.released = true;
    try {
      await this.ch.request('shutdown', {}, undefined, 10_000);
    } finally {
      this.ch.close();
    }
  }
  onLost(fn: () => void): void {
    this.lostFns.push(fn);
  }
}

export class InProcessFrontClient implements FrontClient {
  readonly inProcess = true;
  readonly pid = process.pid;

  constructor(readonly gpu: string, private readonly front: DeviceFront) {}

  async attach(r: AttachRequest): Promise<EndpointInfo> {
    return this.front.attach(r);
  }
  async detach(vf: number, reason: string): Promise<void> {
    await this.front.detach(vf, reason);
  }
  async disconnect(vf: number, reason: string): Promise<void> {
    await this.front.disconnect(vf, reason);
  }
  async list(): Promise<EndpointInfo[]> {
    return this.front.list();
  }
  async signalError(): Promise<void> {
    this.front.signalError();
  }
  async release(): Promise<void> {
    await this.front.close('vgpud stopping (worker mode: the front lives in the daemon)');
  }
  async shutdown(): Promise<void> {
    await this.front.close('device front stopped');
  }
  onLost(): void {
    // it cannot be lost separately from the daemon
  }
}
