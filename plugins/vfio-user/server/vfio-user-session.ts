/**
 * One vfio-user client connection: VERSION first, then commands handled strictly in the order they arrive
 * (vfio-user.rst "Command Concurrency"), replies with the command's msg_id, error replies with an errno and no
 * payload, nothing at all for a command sent with No_reply (QEMU's posted writes — QEMU treats any reply to them,
 * even an error, as an unexpected message). Server-to-client commands (DMA_READ/DMA_WRITE for guest memory sent
 * without a descriptor) go out on the same socket and their replies are matched by msg_id while commands keep
 * queueing behind the one that waits.
 *
 * Every descriptor that arrives is either taken by the command it came with or closed after it ran; a command
 * that takes none and came with some is refused (EINVAL). A refused command leaves the connection and the device
 * as they were. What cannot be resynchronised — a size below the header, a broken socket — ends this connection
 * only. The device is detached when the connection ends (its interrupt descriptors and DMA map go with the client,
 * its state stays, as the spec's "Client Disconnection" asks).
 */
import type { FdOps, PeerCred } from '../../../native/fd-ops.js';
import type { Logger } from '../../../core/contracts/logger.js';
import { Command, Errno, Flags, HEADER_SIZE, commandName, errnoName } from '../protocol/constants.js';
import { buildMessage, encodeHeader, isCommand, isReply } from '../protocol/header.js';
import type { InboundMessage, ReaderEvent } from '../protocol/message-reader.js';
import { errnoFor, refuse } from '../protocol/protocol-error.js';
import { SocketChannel } from '../protocol/socket-channel.js';
import { DEFAULT_SERVER_CAPS, MAX_VERSION_JSON, maxInboundMessage, negotiateVersion, type NegotiatedCaps, type ServerCaps } from '../protocol/version.js';
import { DmaDirtyLog } from '../dma/dma-dirty-log.js';
import { DmaMapTable } from '../dma/dma-map-table.js';
import { handleDmaMap, handleDmaUnmap } from './handlers/dma-handlers.js';
import { handleDeviceInfo, handleReset } from './handlers/device-handlers.js';
import { handleFeature, handleMigRead, handleMigWrite } from './handlers/feature-handlers.js';
import { handleIrqInfo, handleSetIrqs } from './handlers/irq-handlers.js';
import { handleRegionInfo, handleRegionIoFds, handleRegionRead, handleRegionWrite, handleWriteMulti } from './handlers/region-handlers.js';
import { FastRegionRead } from './fast-region-read.js';
import { SessionDmaPort } from './session-dma-port.js';
import type { VfioUserDevice } from './vfio-user-device.js';

export interface Reply {
  payload?: Buffer;
  /**
   * Instead of `payload`: the whole reply with its first HEADER_SIZE bytes left for the header, which the session
   * writes in place — a 1 MiB MIG_DATA_READ reply is then built once instead of copied again behind a header.
   */
  message?: Buffer;
  /** Descriptors to send with the reply (not closed: they stay the device's). */
  fds?: number[];
}

/** What a command handler sees. */
export interface SessionContext {
  readonly device: VfioUserDevice;
  readonly caps: NegotiatedCaps;
  readonly dma: DmaMapTable;
  readonly dirty: DmaDirtyLog;
  readonly counters: SessionCounters;
}

export type Handler = (ctx: SessionContext, msg: InboundMessage) => Reply | Promise<Reply>;

export interface SessionCounters {
  messages: number;
  errors: number;
  /** Trapped accesses (REGION_READ/WRITE) per region index. */
  regionReads: number[];
  regionWrites: number[];
  dmaBytesRead: number;
  dmaBytesWritten: number;
}

const HANDLERS: Partial<Record<number, Handler>> = {
  [Command.DMA_MAP]: handleDmaMap,
  [Command.DMA_UNMAP]: handleDmaUnmap,
  [Command.DEVICE_GET_INFO]: handleDeviceInfo,
  [Command.DEVICE_GET_REGION_INFO]: handleRegionInfo,
  [Command.DEVICE_GET_REGION_IO_FDS]: handleRegionIoFds,
  [Command.DEVICE_GET_IRQ_INFO]: handleIrqInfo,
  [Command.DEVICE_SET_IRQS]: handleSetIrqs,
  [Command.REGION_READ]: handleRegionRead,
  [Command.REGION_WRITE]: handleRegionWrite,
  [Command.DEVICE_RESET]: handleReset,
  [Command.REGION_WRITE_MULTI]: handleWriteMulti,
  [Command.DEVICE_FEATURE]: handleFeature,
  [Command.MIG_DATA_READ]: handleMigRead,
  [Command.MIG_DATA_WRITE]: handleMigWrite,
};

/** Commands whose message may carry descriptors. */
const TAKES_FDS = new Set<number>([Command.DMA_MAP, Command.DEVICE_SET_IRQS]);

/** Stop reading a client that has this many bytes of commands waiting behind a slow one. */
const MAX_QUEUED_BYTES = 8 << 20;
/** Commands handled in one go before yielding to the other connections of the process. */
const BATCH = 64;
/** How long the device waits for the client to answer a DMA_READ/DMA_WRITE (QEMU's own reply wait is 5 s). */
const CLIENT_REPLY_MS = 5000;

export interface SessionOptions {
  ops: FdOps;
  fd: number;
  device: VfioUserDevice;
  logger: Logger;
  caps?: Partial<ServerCaps>;
  onClose?: (reason: string) => void;
}

interface Waiting {
  command: number;
  resolve: (m: InboundMessage) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

export class VfioUserSession {
  readonly peer: PeerCred;
  readonly counters: SessionCounters = {
    messages: 0, errors: 0, regionReads: new Array(16).fill(0), regionWrites: new Array(16).fill(0), dmaBytesRead: 0, dmaBytesWritten: 0,
  };
  private readonly channel: SocketChannel;
  private readonly ours: ServerCaps;
  private caps: NegotiatedCaps | null = null;
  private readonly dma: DmaMapTable;
  private readonly dirty = new DmaDirtyLog();
  private readonly queue: InboundMessage[] = [];
  private queuedBytes = 0;
  private busy = false;
  private scheduled = false;
  private closed = false;
  private readonly waiting = new Map<number, Waiting>();
  private nextId = 1;
  private readonly log: Logger;
  private readonly fastRead: FastRegionRead;

  constructor(private readonly o: SessionOptions) {
    this.ours = { ...DEFAULT_SERVER_CAPS, ...o.caps };
    this.log = o.logger;
    this.peer = o.ops.peerCred(o.fd);
    this.dma = new DmaMapTable(o.ops, { maxMaps: () => this.caps?.maxDmaMaps ?? this.ours.maxDmaMaps, pageSize: () => 4096 });
    // Until VERSION: one descriptor (the protocol's default) and a message no bigger than a VERSION.
    this.fastRead = new FastRegionRead(o.device, this.counters);
    this.channel = new SocketChannel(o.ops, o.fd, {
      fast: (b, at, size) => this.fast(b, at, size),
      onEvents: (events) => this.onEvents(events),
      onClose: (reason) => this.onChannelClose(reason),
      onDrain: () => this.pump(),
    }, { maxFds: 1, maxMessageSize: HEADER_SIZE + 4 + MAX_VERSION_JSON });
  }

  get negotiated(): NegotiatedCaps | null {
    return this.caps;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  get dmaMaps(): number {
    return this.dma.count;
  }

  /** End the connection (the device is detached). */
  close(reason = 'closed by the server'): void {
    this.channel.close(reason);
  }

  // ---- inbound ----

  /**
   * A trapped register read answered as it arrives (fast-region-read.ts), when nothing is ahead of it: the
   * connection negotiated, no command running or queued, replies flowing. Anything else waits its turn below.
   */
  private fast(b: Buffer, at: number, size: number): boolean {
    if (this.caps === null || this.busy || this.queue.length > 0 || this.closed || this.channel.outputBlocked) return false;
    const reply = this.fastRead.answer(b, at, size, this.caps.inMaxDataXfer);
    if (reply === null) return false;
    this.channel.sendTransient(reply);
    return true;
  }

  private onEvents(events: ReaderEvent[]): void {
    for (const e of events) {
      if (e.kind === 'fatal') {
        this.log.warn('vfio-user framing error; closing the connection', { reason: e.reason, pid: this.peer.pid });
        continue; // the channel closes itself after delivering this
      }
      if (e.kind === 'oversize') {
        this.counters.errors++;
        if (isCommand(e.header.flags) && (e.header.flags & Flags.NO_REPLY) === 0) {
          this.sendError(e.header.msgId, e.header.command, Errno.E2BIG);
        }
        continue;
      }
      const m = e.message;
      if (isReply(m.header.flags)) {
        this.onReply(m);
        continue;
      }
      if (!isCommand(m.header.flags)) {
        // Neither command nor reply: refuse it (it has a size, so the stream is still in step).
        this.closeFds(m.fds);
        this.counters.errors++;
        if ((m.header.flags & Flags.NO_REPLY) === 0) this.sendError(m.header.msgId, m.header.command, Errno.EINVAL);
        continue;
      }
      this.queue.push(m);
      this.queuedBytes += HEADER_SIZE + m.payload.length;
    }
    if (this.queuedBytes > MAX_QUEUED_BYTES) this.channel.pause();
    this.pump();
  }

  private pump(): void {
    if (this.busy || this.scheduled || this.closed) return;
    let n = 0;
    // A client that does not read its replies gets no more of them (a 32-byte REGION_READ asks for up to
    // max_data_xfer_size): its commands wait until the socket drains.
    while (this.queue.length > 0 && !this.busy && !this.closed && !this.channel.outputBlocked) {
      if (n++ >= BATCH) {
        this.scheduled = true;
        setImmediate(() => {
          this.scheduled = false;
          this.pump();
        });
        return;
      }
      const m = this.queue.shift()!;
      this.queuedBytes -= HEADER_SIZE + m.payload.length;
      const done = this.handle(m);
      if (done instanceof Promise) {
        this.busy = true;
        void done.finally(() => {
          this.busy = false;
          this.pump();
        });
      }
    }
    if (this.queuedBytes <= MAX_QUEUED_BYTES / 2 && !this.closed) this.channel.resume();
  }

  /** Run one command; returns a promise only when the handler is asynchronous. */
  private handle(m: InboundMessage): void | Promise<void> {
    this.counters.messages++;
    const h = m.header;
    const noReply = (h.flags & Flags.NO_REPLY) !== 0;
    let result: Reply | Promise<Reply>;
    try {
      result = this.dispatch(m);
    } catch (e) {
      this.finish(m, noReply, e);
      return;
    }
    if (result instanceof Promise) {
      return result.then((r) => this.finish(m, noReply, undefined, r), (e: unknown) => this.finish(m, noReply, e));
    }
    this.finish(m, noReply, undefined, result);
  }

  private dispatch(m: InboundMessage): Reply | Promise<Reply> {
    const h = m.header;
    if (m.tooManyFds === true) throw refuse(Errno.EINVAL, `${commandName(h.command)} came with more descriptors than max_msg_fds (${this.caps?.inMaxFds ?? 1})`);
    if (m.fdsMisplaced === true) throw refuse(Errno.EINVAL, `${commandName(h.command)}: descriptors arrived in the middle of the message`);
    if (m.fds.length > 0 && !TAKES_FDS.has(h.command)) {
      throw refuse(Errno.EINVAL, `${commandName(h.command)} takes no descriptors but came with ${m.fds.length}`);
    }
    if (this.caps === null) {
      if (h.command !== Command.VERSION) throw refuse(Errno.EINVAL, `${commandName(h.command)} before VERSION`, 'send VFIO_USER_VERSION first');
      return this.version(m);
    }
    if (h.command === Command.VERSION) throw refuse(Errno.EINVAL, 'VERSION was already negotiated on this connection');
    if (h.command === Command.DIRTY_PAGES) {
      throw refuse(Errno.ENOTSUP, 'DIRTY_PAGES (14) was removed from the protocol', 'use DEVICE_FEATURE DMA_LOGGING_START/REPORT');
    }
    if (h.command === Command.DMA_READ || h.command === Command.DMA_WRITE) {
      throw refuse(Errno.EINVAL, `${commandName(h.command)} goes from the server to the client, not the other way`);
    }
    const handler = HANDLERS[h.command];
    if (handler === undefined) throw refuse(Errno.ENOTSUP, `unknown command ${h.command}`);
    return handler(this.ctx(), m);
  }

  private ctx(): SessionContext {
    return { device: this.o.device, caps: this.caps!, dma: this.dma, dirty: this.dirty, counters: this.counters };
  }

  private version(m: InboundMessage): Reply {
    let outcome;
    try {
      outcome = negotiateVersion(m.payload, this.ours);
    } catch (e) {
      // A client we cannot talk to: answer, then end the connection (the spec has the client close it; we do not
      // keep a half-negotiated connection either).
      setImmediate(() => this.close('VERSION negotiation failed'));
      throw e;
    }
    this.caps = outcome.caps;
    this.channel.setLimits({ maxFds: outcome.caps.inMaxFds, maxMessageSize: maxInboundMessage(outcome.caps) });
    this.o.device.attach({ pid: this.peer.pid, uid: this.peer.uid, gid: this.peer.gid },
      new SessionDmaPort(this.dma, this.dirty, this.counters, () => this.caps!.outMaxDataXfer, (cmd, payload) => this.request(cmd, payload)));
    this.log.info('vfio-user client negotiated', { pid: this.peer.pid, version: `${outcome.caps.major}.${outcome.caps.minor}`, caps: outcome.caps });
    return { payload: outcome.reply };
  }

  private finish(m: InboundMessage, noReply: boolean, error: unknown, reply?: Reply): void {
    this.closeFds(m.fds); // whatever the handler did not take
    if (error !== undefined) {
      this.counters.errors++;
      const errno = errnoFor(error);
      if (errno === Errno.EIO) this.log.warn('vfio-user command failed unexpectedly', { command: commandName(m.header.command), error });
      else this.log.debug('vfio-user command refused', { command: commandName(m.header.command), errno: errnoName(errno), error: (error as Error).message });
      if (!noReply) this.sendError(m.header.msgId, m.header.command, errno);
      return;
    }
    if (noReply) return;
    if (reply?.message !== undefined) {
      encodeHeader({ msgId: m.header.msgId, command: m.header.command, size: reply.message.length, flags: Flags.TYPE_REPLY, errorNo: 0 }, reply.message);
      this.channel.send(reply.message, reply.fds ?? []);
      return;
    }
    this.channel.send(buildMessage(m.header.msgId, m.header.command, Flags.TYPE_REPLY, reply?.payload), reply?.fds ?? []);
  }

  private sendError(msgId: number, command: number, errno: number): void {
    this.channel.send(buildMessage(msgId, command, Flags.TYPE_REPLY | Flags.ERROR, undefined, errno));
  }

  // ---- server → client commands ----

  /** Send a command to the client and wait for its reply (DMA_READ/DMA_WRITE). */
  request(command: number, payload: Buffer): Promise<InboundMessage> {
    if (this.closed) return Promise.reject(refuse(Errno.EIO, 'the client is gone'));
    let id = this.nextId;
    while (this.waiting.has(id)) id = (id + 1) & 0xffff;
    this.nextId = (id + 1) & 0xffff;
    return new Promise<InboundMessage>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(refuse(Errno.EIO, `the client did not answer ${commandName(command)} within ${CLIENT_REPLY_MS} ms`));
      }, CLIENT_REPLY_MS);
      this.waiting.set(id, { command, resolve, reject, timer });
      this.channel.send(buildMessage(id, command, Flags.TYPE_COMMAND, payload));
    });
  }

  private onReply(m: InboundMessage): void {
    this.closeFds(m.fds); // no reply we ask for carries descriptors
    const w = this.waiting.get(m.header.msgId);
    if (w === undefined || w.command !== m.header.command) {
      this.counters.errors++;
      this.log.debug('vfio-user reply to no pending request dropped', { msgId: m.header.msgId, command: commandName(m.header.command) });
      return;
    }
    this.waiting.delete(m.header.msgId);
    clearTimeout(w.timer);
    if ((m.header.flags & Flags.ERROR) !== 0) w.reject(refuse(m.header.errorNo || Errno.EIO, `client refused ${commandName(w.command)}`));
    else w.resolve(m);
  }

  // ---- teardown ----

  private onChannelClose(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    for (const m of this.queue.splice(0)) this.closeFds(m.fds);
    for (const w of this.waiting.values()) {
      clearTimeout(w.timer);
      w.reject(refuse(Errno.EIO, 'the client disconnected'));
    }
    this.waiting.clear();
    this.dma.removeAll();
    this.dirty.stop();
    if (this.caps !== null) this.o.device.detach();
    this.log.info('vfio-user client disconnected', { pid: this.peer.pid, reason });
    this.o.onClose?.(reason);
  }

  private closeFds(fds: number[]): void {
    for (const fd of fds.splice(0)) {
      try {
        this.o.ops.closeFd(fd);
      } catch {
        // already closed
      }
    }
  }
}
