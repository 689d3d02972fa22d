/**
 * One vfio-user connection from the client's end: framing, descriptors, matching replies to commands, and
 * answering the commands the server sends (DMA_READ/DMA_WRITE).
 *
 * Framing follows QEMU docs/interop/vfio-user.rst ("Header"): every message is a 16-byte header whose size field
 * counts the whole message. Descriptors travel as SCM_RIGHTS with the message they belong to. To attribute them
 * without guessing, the reader takes exactly one header, then exactly the rest of that message, never more — as
 * QEMU's client does (hw/vfio-user/proxy.c vfio_user_recv_one reads the header with its descriptors, then the
 * body). Linux ends a stream read at the boundary of a sendmsg that carried descriptors
 * (net/unix/af_unix.c unix_stream_read_generic), so descriptors sent with a message's first byte arrive with its
 * header read.
 *
 * Everything the server does that the spec does not allow — a reply with an unknown id or the wrong command, an
 * error reply with a payload, descriptors in the middle of a message or beyond our max_msg_fds, an undersized
 * header — is recorded in `violations` (and, where the stream cannot be trusted, ends the connection), so a test
 * can assert there were none.
 */
import { loadFdOps, WATCH_READABLE, WATCH_WRITABLE, type FdOps, type FdWatcher } from './fd-ops.js';
import { Header } from './spec-structs.js';
import { cmdName, HDR_ERROR, HDR_NO_REPLY, HDR_TYPE_COMMAND, HDR_TYPE_MASK, HDR_TYPE_REPLY, HEADER_BYTES } from './spec-constants.js';
import { VfioUserClosedError, VfioUserErrnoError } from './errors.js';

export interface VfioUserMessage {
  msgId: number;
  command: number;
  flags: number;
  /** errno of an error reply (0 otherwise). */
  error: number;
  payload: Buffer;
  /** Descriptors that came with the message; the receiver owns them (close them). */
  fds: number[];
}

/** A reply for the server's command: a payload, or an errno for an error reply. */
export type CommandAnswer = { payload: Buffer } | { errno: number };
export type ServerCommandHandler = (msg: VfioUserMessage) => CommandAnswer | Promise<CommandAnswer>;

export interface ConnectionOptions {
  /** Descriptors we accept per message: the max_msg_fds we propose (QEMU spec default 1; QEMU proposes 16). */
  maxRecvFds?: number;
  /** The largest message we accept from the server (header included); larger ones end the connection. */
  maxRecvBytes?: number;
  /** Anti-hang guard for a reply (not a timing assertion: generous, and only so a broken server fails a test). */
  replyGuardMs?: number;
}

interface Pending {
  command: number;
  resolve(m: VfioUserMessage): void;
  reject(e: Error): void;
  timer: NodeJS.Timeout | undefined;
}

interface Outgoing {
  buf: Buffer;
  fds: readonly number[];
  sent: number;
}

const DEFAULT_GUARD_MS = 120_000;

export class VfioUserConnection {
  /** Rules the server broke, in the order seen. */
  readonly violations: string[] = [];
  readonly closed: Promise<void>;
  /** Why the connection closed: 'peer' (EOF from the server), 'local' (close()), or the error. */
  closeReason: string | undefined;

  private readonly ops: FdOps;
  private readonly watcher: FdWatcher;
  private readonly pending = new Map<number, Pending>();
  private readonly outgoing: Outgoing[] = [];
  private readonly maxRecvFds: number;
  private readonly maxRecvBytes: number;
  private readonly guardMs: number;
  private nextId = 1;
  private resolveClosed!: () => void;
  private handler: ServerCommandHandler | undefined;
  // receive state: a header being read, then its body
  private readonly head = Buffer.alloc(HEADER_BYTES);
  private headGot = 0;
  private body: Buffer | undefined;
  private bodyGot = 0;
  private rxFds: number[] = [];
  private wantWrite = false;
  private isOpen = true;
  private held = false;

  private constructor(readonly fd: number, opts: ConnectionOptions) {
    this.ops = loadFdOps();
    this.maxRecvFds = opts.maxRecvFds ?? 16;
    this.maxRecvBytes = opts.maxRecvBytes ?? 64 * 1024 * 1024 + 64;
    this.guardMs = opts.replyGuardMs ?? DEFAULT_GUARD_MS;
    this.closed = new Promise((r) => { this.resolveClosed = r; });
    this.watcher = this.ops.watch(fd, (flags) => this.onReady(flags));
    this.watcher.start(true, false);
    this.watcher.unref();
  }

  /** Speak vfio-user on an already connected stream socket (unit tests use one end of a socketpair). */
  static fromFd(fd: number, opts: ConnectionOptions = {}): VfioUserConnection {
    return new VfioUserConnection(fd, opts);
  }

  /** Connect to a vfio-user socket (throws the addon's typed error when nobody listens there). */
  static connect(path: string, opts: ConnectionOptions = {}): VfioUserConnection {
    const ops = loadFdOps();
    return new VfioUserConnection(ops.unixConnect(path), opts);
  }

  get open(): boolean {
    return this.isOpen;
  }

  /**
   * Keep the process alive while the connection is open (a VMM process lives as long as its device). By default an
   * idle connection does not hold the event loop, so a test file ends when its tests do.
   */
  hold(): void {
    this.held = true;
    this.updateRef();
  }

  /** Handle the commands the server sends (DMA_READ, DMA_WRITE). Without a handler they are refused ENOTSUP. */
  onServerCommand(handler: ServerCommandHandler): void {
    this.handler = handler;
  }

  /** A fresh message id (ids belong to the sender and may wrap: QEMU spec "Header"). */
  allocId(): number {
    const id = this.nextId;
    this.nextId = (this.nextId + 1) & 0xffff;
    return id;
  }

  /**
   * Send a command and resolve with its reply, error replies included (check `flags & HDR_ERROR`, or use
   * `call()`). The descriptors go with the message's first byte; they stay the caller's.
   */
  request(command: number, payload: Buffer = Buffer.alloc(0), fds: readonly number[] = []): Promise<VfioUserMessage> {
    const msgId = this.allocId();
    const reply = this.expectReply(msgId, command);
    this.sendRaw(frame(msgId, command, HDR_TYPE_COMMAND, payload), fds);
    return reply;
  }

  /** Like request(), but an error reply rejects with VfioUserErrnoError. */
  async call(command: number, payload: Buffer = Buffer.alloc(0), fds: readonly number[] = []): Promise<VfioUserMessage> {
    const r = await this.request(command, payload, fds);
    if ((r.flags & HDR_ERROR) !== 0) {
      closeAll(this.ops, r.fds);
      throw new VfioUserErrnoError(command, r.error);
    }
    return r;
  }

  /** Send a command with No_reply set (QEMU spec "Header": no reply is sent for it). */
  post(command: number, payload: Buffer = Buffer.alloc(0), fds: readonly number[] = []): void {
    this.sendRaw(frame(this.allocId(), command, HDR_TYPE_COMMAND | HDR_NO_REPLY, payload), fds);
  }

  /** Register interest in the reply with `msgId` (for hand-built messages sent with sendRaw). */
  expectReply(msgId: number, command: number): Promise<VfioUserMessage> {
    if (!this.isOpen) return Promise.reject(new VfioUserClosedError(`connection closed (${this.closeReason}) before ${cmdName(command)}`));
    return new Promise<VfioUserMessage>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(msgId);
        this.updateRef();
        reject(new Error(`no reply to ${cmdName(command)} (id ${msgId}) within the ${this.guardMs} ms anti-hang guard`));
      }, this.guardMs);
      this.pending.set(msgId, { command, resolve, reject, timer });
      this.updateRef();
    });
  }

  /** Queue bytes as they are (well-formed or not) with descriptors on their first byte. */
  sendRaw(bytes: Buffer, fds: readonly number[] = []): void {
    if (!this.isOpen) throw new VfioUserClosedError(`connection closed (${this.closeReason})`);
    this.outgoing.push({ buf: bytes, fds, sent: 0 });
    this.flush();
  }

  /** Close our end (the server sees EOF). Pending replies reject. Idempotent. */
  close(): void {
    this.shut('local');
  }

  // --- internals -------------------------------------------------------------------------------------------------

  private updateRef(): void {
    if (!this.isOpen) return;
    if (this.held || this.pending.size > 0 || this.outgoing.length > 0) this.watcher.ref();
    else this.watcher.unref();
  }

  private flush(): void {
    while (this.isOpen && this.outgoing.length > 0) {
      const o = this.outgoing[0]!;
      let n: number;
      try {
        n = this.ops.sendMsg(this.fd, o.buf.subarray(o.sent), o.sent === 0 ? o.fds : undefined);
      } catch (e) {
        this.shut(`send failed: ${(e as Error).message}`);
        return;
      }
      if (n < 0) {
        this.setWantWrite(true);
        this.updateRef();
        return;
      }
      o.sent += n;
      if (o.sent === o.buf.length) this.outgoing.shift();
    }
    this.setWantWrite(false);
    this.updateRef();
  }

  private setWantWrite(on: boolean): void {
    if (on === this.wantWrite || !this.isOpen) return;
    this.wantWrite = on;
    this.watcher.start(true, on);
  }

  private onReady(flags: number): void {
    if (!this.isOpen) return;
    if ((flags & WATCH_WRITABLE) !== 0) this.flush();
    // Readable, or an error/hang-up (the read below sees it).
    if ((flags & WATCH_READABLE) !== 0 || (flags & ~WATCH_WRITABLE) !== 0) this.drain();
  }

  /** Read until the socket is empty, one header or one body at a time. */
  private drain(): void {
    while (this.isOpen) {
      const reading = this.body === undefined ? this.head.subarray(this.headGot) : this.body.subarray(this.bodyGot);
      let r;
      try {
        r = this.ops.recvMsg(this.fd, reading, this.maxRecvFds);
      } catch (e) {
        this.shut(`receive failed: ${(e as Error).message}`);
        return;
      }
      if (r === null) return;
      if (r.fdsTruncated) this.violations.push(`server sent more than max_msg_fds=${this.maxRecvFds} descriptors on one message`);
      if (r.fds.length > 0 && (this.body !== undefined || this.headGot > 0)) {
        this.violations.push('descriptors arrived in the middle of a message (they must ride on its first byte)');
      }
      this.rxFds.push(...r.fds);
      if (r.bytes === 0) {
        closeAll(this.ops, this.rxFds);
        this.rxFds = [];
        if (this.headGot > 0 || this.body !== undefined) this.violations.push('the server closed the socket in the middle of a message');
        this.shut('peer');
        return;
      }
      if (this.body === undefined) {
        this.headGot += r.bytes;
        if (this.headGot < HEADER_BYTES) continue;
        const h = Header.unpack(this.head);
        if (h.size < HEADER_BYTES || h.size > this.maxRecvBytes) {
          this.violations.push(`message size ${h.size} outside [${HEADER_BYTES}, ${this.maxRecvBytes}]: the stream cannot be resynchronised`);
          closeAll(this.ops, this.rxFds);
          this.rxFds = [];
          this.shut('unframeable message from the server');
          return;
        }
        this.body = Buffer.alloc(h.size - HEADER_BYTES);
        this.bodyGot = 0;
      } else {
        this.bodyGot += r.bytes;
      }
      if (this.bodyGot === this.body.length) {
        const h = Header.unpack(this.head);
        const msg: VfioUserMessage = { msgId: h.msgId, command: h.command, flags: h.flags, error: h.error, payload: this.body, fds: this.rxFds };
        this.headGot = 0;
        this.body = undefined;
        this.rxFds = [];
        this.dispatch(msg);
      }
    }
  }

  private dispatch(msg: VfioUserMessage): void {
    const type = msg.flags & HDR_TYPE_MASK;
    if (type === HDR_TYPE_REPLY) {
      const p = this.pending.get(msg.msgId);
      if (p === undefined) {
        this.violations.push(`reply id ${msg.msgId} (${cmdName(msg.command)}) matches no outstanding command`);
        closeAll(this.ops, msg.fds);
        return;
      }
      if (msg.command !== p.command) this.violations.push(`reply to ${cmdName(p.command)} carries command ${msg.command} (the spec sets the command in the reply header)`);
      if ((msg.flags & HDR_ERROR) !== 0 && msg.payload.length > 0) {
        this.violations.push(`error reply to ${cmdName(p.command)} has ${msg.payload.length} payload bytes (an error reply is the header only)`);
      }
      this.pending.delete(msg.msgId);
      clearTimeout(p.timer);
      this.updateRef();
      p.resolve(msg);
      return;
    }
    if (type !== HDR_TYPE_COMMAND) {
      this.violations.push(`message type ${type} is neither command (0) nor reply (1)`);
      closeAll(this.ops, msg.fds);
      return;
    }
    void this.answer(msg);
  }

  private async answer(msg: VfioUserMessage): Promise<void> {
    let a: CommandAnswer;
    try {
      a = this.handler ? await this.handler(msg) : { errno: 95 /* ENOTSUP */ };
    } catch (e) {
      this.violations.push(`server command ${cmdName(msg.command)} could not be served: ${(e as Error).message}`);
      a = { errno: 22 /* EINVAL */ };
    } finally {
      closeAll(this.ops, msg.fds);
    }
    if ((msg.flags & HDR_NO_REPLY) !== 0 || !this.isOpen) return;
    const reply = 'errno' in a
      ? frame(msg.msgId, msg.command, HDR_TYPE_REPLY | HDR_ERROR, Buffer.alloc(0), a.errno)
      : frame(msg.msgId, msg.command, HDR_TYPE_REPLY, a.payload);
    this.sendRaw(reply);
  }

  private shut(reason: string): void {
    if (!this.isOpen) return;
    this.isOpen = false;
    this.closeReason = reason;
    this.watcher.close();
    this.ops.closeFd(this.fd);
    closeAll(this.ops, this.rxFds);
    this.rxFds = [];
    this.outgoing.length = 0;
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(new VfioUserClosedError(`connection closed (${reason}) before the reply to ${cmdName(p.command)} (id ${id})`));
    }
    this.pending.clear();
    this.resolveClosed();
  }
}

/** A whole message: header (size = 16 + payload) then payload. */
export function frame(msgId: number, command: number, flags: number, payload: Buffer, error = 0): Buffer {
  const b = Buffer.alloc(HEADER_BYTES + payload.length);
  Header.packInto(b, 0, { msgId, command, size: b.length, flags, error });
  payload.copy(b, HEADER_BYTES);
  return b;
}

function closeAll(ops: FdOps, fds: number[]): void {
  for (const fd of fds) {
    try {
      ops.closeFd(fd);
    } catch {
      // already closed by its owner
    }
  }
}
