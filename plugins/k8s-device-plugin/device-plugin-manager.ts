/**
 * Keeps the kubelet's view of the node's vGPUs right: one ResourceServer per resource the inventory holds,
 * registered with whichever kubelet runs now.
 *
 * Everything funnels into one serial `sync` pass, started by events only (the inventory changed, the device-plugin
 * directory changed, a registration retry came due), never by a timer loop:
 *  - resources that appeared get a server; gone ones send an empty list and stop; changed lists are streamed;
 *  - a server whose socket file was deleted (what a restarting kubelet does to every plugin socket) serves again
 *    on a fresh socket and registers again;
 *  - when kubelet.sock exists and is not the one a resource registered with (compared by inode, so a kubelet that
 *    recreated its socket is a new kubelet), the resource registers. A failure retries that resource with
 *    exponential backoff and logs why; the api.proto advice to terminate on a failed registration is not followed —
 *    the daemon holds the node's VMs and must not exit because the kubelet is restarting.
 * With no kubelet.sock the plugin serves its sockets and waits quietly for the directory event.
 */
import { existsSync } from 'node:fs';
import { lstat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Backoff } from '../../core/backoff.js';
import type { EventBus } from '../../core/contracts/events.js';
import type { Logger } from '../../core/contracts/logger.js';
import type { AdvertisedDevice, DeviceInventory } from './device-inventory.js';
import { DP_API, type DevicePluginConfig } from './device-plugin-config.js';
import { registerWithKubelet, type PendingRegistration } from './kubelet-registrar.js';
import { DirWatcher } from './dir-watcher.js';
import { ResourceServer } from './resource-server.js';
import { socketFileFor } from './resource-names.js';

interface Entry {
  server: ResourceServer;
  socketFile: string;
  /** JSON of the device list last streamed. */
  sent: string;
  /** Inode of the kubelet.sock this resource registered with. */
  registeredWith: number | undefined;
  registering: PendingRegistration | undefined;
  retry: NodeJS.Timeout | undefined;
  backoff: Backoff;
  lastFailure: string | undefined;
}

/** What the plugin reports about itself (tests and status). */
export interface ResourceStatus {
  resource: string;
  socket: string;
  listening: boolean;
  registered: boolean;
  devices: number;
  watchers: number;
  lastFailure?: string;
}

export class DevicePluginManager {
  private readonly dir: string;
  private readonly kubeletSocket: string;
  private readonly entries = new Map<string, Entry>();
  private readonly watcher: DirWatcher;
  private chain: Promise<void> = Promise.resolve();
  private pending = false;
  private stopped = true;
  private detach: (() => void) | undefined;
  private kubeletSeen: boolean | undefined;
  /**
   * The directory changed (or nothing was looked at yet): the next sync checks the sockets on disk. A sync for a
   * device-list change alone touches no file, so a ListAndWatch update never waits behind the libuv threadpool
   * (busy with the journal's fsyncs while vGPUs are created).
   */
  private dirDirty = true;
  private dirSeen = false;
  private kubeletIno: number | undefined;

  constructor(
    private readonly cfg: DevicePluginConfig,
    private readonly inventory: DeviceInventory,
    private readonly bus: EventBus,
    private readonly log: Logger,
  ) {
    this.dir = resolve(cfg.devicePluginDir);
    this.kubeletSocket = join(this.dir, DP_API.kubeletSocket);
    this.watcher = new DirWatcher(this.dir, (name) => this.onDirEvent(name), log);
  }

  async start(): Promise<void> {
    this.stopped = false;
    const detachBus = this.inventory.attach(this.bus);
    const onChange = (): void => this.requestSync();
    this.inventory.on('change', onChange);
    this.detach = () => { detachBus(); this.inventory.off('change', onChange); };
    this.watcher.start();
    this.requestSync();
    await this.settled();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.detach?.();
    this.detach = undefined;
    this.watcher.stop();
    await this.chain;
    for (const e of this.entries.values()) {
      clearTimeout(e.retry);
      e.registering?.cancel();
      await e.server.stop();
    }
    this.entries.clear();
  }

  /** Resolves when every sync asked for so far has run. */
  async settled(): Promise<void> {
    let last: Promise<void>;
    do {
      last = this.chain;
      await last;
    } while (last !== this.chain);
  }

  status(): ResourceStatus[] {
    return [...this.entries.entries()].map(([resource, e]) => ({
      resource, socket: join(this.dir, e.socketFile), listening: e.server.listening, registered: e.registeredWith !== undefined,
      devices: (JSON.parse(e.sent || '[]') as unknown[]).length, watchers: e.server.streamCount,
      ...(e.lastFailure !== undefined ? { lastFailure: e.lastFailure } : {}),
    }));
  }

  private onDirEvent(name: string | null): void {
    if (name === null || name === DP_API.kubeletSocket || [...this.entries.values()].some((e) => e.socketFile === name)) {
      this.dirDirty = true;
      this.requestSync();
    }
  }

  private requestSync(): void {
    if (this.pending || this.stopped) return;
    this.pending = true;
    this.chain = this.chain.then(async () => {
      this.pending = false;
      if (this.stopped) return;
      try {
        await this.sync();
      } catch (error) {
        this.log.error('device plugin sync failed', { error });
      }
    });
  }

  private async sync(): Promise<void> {
    const checkDisk = this.dirDirty;
    this.dirDirty = false;
    const wanted = this.inventory.resources();
    for (const [resource, e] of this.entries) {
      if (wanted.has(resource)) continue;
      // The kubelet drops the count to 0 at once on an empty list; it would keep the old one until its grace period
      // ended had the stream just closed.
      e.server.update([]);
      clearTimeout(e.retry);
      e.registering?.cancel();
      await e.server.stop();
      this.entries.delete(resource);
      this.log.info('no vGPU of this type left: resource withdrawn', { resource });
    }
    const dirExists = !checkDisk && this.dirSeen ? true : existsSync(this.dir);
    this.dirSeen = dirExists;
    for (const [resource, devices] of wanted) {
      let e = this.entries.get(resource);
      if (e === undefined) {
        const socketFile = socketFileFor(this.cfg.socketPrefix, resource);
        e = {
          server: new ResourceServer({
            resource, socketPath: join(this.dir, socketFile), policy: this.cfg.allocationPolicy, maxMessageBytes: this.cfg.maxMessageBytes,
            bus: this.bus, log: this.log,
          }),
          socketFile, sent: '', registeredWith: undefined, registering: undefined, retry: undefined, lastFailure: undefined,
          backoff: new Backoff({ initialMs: this.cfg.registerBackoff.initialMs, maxMs: this.cfg.registerBackoff.maxMs }),
        };
        this.entries.set(resource, e);
      }
      if (dirExists && (checkDisk || !e.server.listening)) await this.ensureListening(e, checkDisk);
      this.stream(e, devices);
    }
    await this.reconcileRegistrations(checkDisk);
  }

  private async ensureListening(e: Entry, checkDisk: boolean): Promise<void> {
    if (e.server.listening) {
      if (!checkDisk) return;
      const st = await lstat(e.server.o.socketPath).catch(() => undefined);
      if (st !== undefined && st.ino === e.server.socketIno) return;
      this.log.info('the resource\'s socket was removed (a restarting kubelet removes every plugin socket); serving it again', {
        resource: e.server.resource, socket: e.server.o.socketPath,
      });
      e.registering?.cancel();
      await e.server.stop();
      e.registeredWith = undefined;
    }
    try {
      await e.server.start();
      e.sent = ''; // a new server has no devices yet
      this.log.info('serving the resource', { resource: e.server.resource, socket: e.server.o.socketPath });
    } catch (error) {
      this.log.error('cannot serve the resource', { resource: e.server.resource, error });
    }
  }

  private stream(e: Entry, devices: AdvertisedDevice[]): void {
    const json = JSON.stringify(devices);
    if (json === e.sent) return;
    e.sent = json;
    e.server.update(devices);
  }

  private async reconcileRegistrations(checkDisk: boolean): Promise<void> {
    const due = [...this.entries.values()].filter((e) => e.server.listening && e.registering === undefined && e.retry === undefined);
    if (checkDisk || (due.some((e) => e.registeredWith === undefined || e.registeredWith !== this.kubeletIno))) {
      const st = await lstat(this.kubeletSocket).catch(() => undefined);
      const present = st !== undefined && st.isSocket();
      this.kubeletIno = present ? st.ino : undefined;
      if (present !== this.kubeletSeen) {
        this.kubeletSeen = present;
        if (!present) this.log.info('no kubelet socket; the device plugin waits for the kubelet', { socket: this.kubeletSocket });
      }
    }
    const ino = this.kubeletIno;
    if (ino === undefined) return;
    for (const e of due) if (e.registeredWith !== ino) this.register(e, ino);
  }

  private register(e: Entry, kubeletIno: number): void {
    const resource = e.server.resource;
    const pending = registerWithKubelet(this.kubeletSocket, e.socketFile, resource, this.cfg.registerTimeoutMs);
    e.registering = pending;
    pending.done.then(() => {
      if (e.registering !== pending) return;
      e.registering = undefined;
      e.registeredWith = kubeletIno;
      const failures = e.backoff.failures;
      e.backoff.reset();
      e.lastFailure = undefined;
      this.log.info('registered with the kubelet', { resource, endpoint: e.socketFile, ...(failures > 0 ? { afterFailures: failures } : {}) });
      // The kubelet may have restarted during the call: look at the sockets again (one lstat per registration).
      this.dirDirty = true;
      this.requestSync();
    }, (error: unknown) => {
      if (e.registering !== pending) return;
      e.registering = undefined;
      if (this.stopped) return;
      const delay = e.backoff.next();
      const reason = (error as Error).message;
      // Every failure is logged the first time and when the reason changes; a repeat only at powers of two.
      const n = e.backoff.failures;
      if (reason !== e.lastFailure || (n & (n - 1)) === 0) {
        this.log.warn('registration with the kubelet failed; retrying', { resource, attempt: n, retryInMs: delay, reason });
      }
      e.lastFailure = reason;
      e.retry = setTimeout(() => { e.retry = undefined; this.requestSync(); }, delay);
      e.retry.unref();
    });
  }
}
