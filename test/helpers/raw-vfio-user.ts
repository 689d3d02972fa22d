// The smallest possible vfio-user peer for the server's own tests: hand-built messages on a raw socket, replies
// matched by msg_id, server-to-client commands collected. Deliberately NOT a client library (the guest model is
// written apart from the server); every payload a test sends is packed in the test itself.
import { loadFdOps, WATCH_READABLE, WATCH_WRITABLE, type FdOps, type FdWatcher } from '../../native/fd-ops.js';

export interface RawMessage {
  msgId: number;
  command: number;
  size: number;
  flags: number;
  errorNo: number;
  payload: Buffer;
  fds: number[];
}

export const REPLY = 0x1;
export const NO_REPLY = 0x10;
export const ERROR = 0x20;

export function packHeader(msgId: number, command: number, size: number, flags = 0, errorNo = 0): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt16LE(msgId, 0);
  b.writeUInt16LE(command, 2);
  b.writeUInt32LE(size, 4);
  b.writeUInt32LE(flags, 8);
  b.writeUInt32LE(errorNo, 12);
  return b;
}

export class RawPeer {
  readonly ops: FdOps;
  private pendingFds: number[] = [];
  private readonly replies = new Map<number, (m: RawMessage) => void>();
  readonly commands: RawMessage[] = [];
  private commandWaiters: Array<(m: RawMessage) => void> = [];
  private readonly watcher: FdWatcher;
  private nextId = 1;
  closed = false;
  private closeWaiters: Array<() => void> = [];
  /** Every reply received, in order (for tests that count them). */
  readonly allReplies: RawMessage[] = [];
  /** Keep every reply in allReplies (a benchmark moving gigabytes turns it off). */
  keepReplies = true;

  constructor(readonly fd: number) {
    this.ops = loadFdOps();
    this.watcher = this.ops.watch(fd, (flags) => {
      if ((flags & WATCH_WRITABLE) !== 0) this.flush();
      if ((flags & WATCH_READABLE) !== 0) this.read();
    });
    this.watcher.start(true, false);
  }

  static connect(path: string): RawPeer {
    return new RawPeer(loadFdOps().unixConnect(path));
  }

  /** One receive buffer for the peer's life, and the message being assembled (its own buffer, sized from its header). */
  private readonly rbuf = Buffer.allocUnsafe(1 << 20);
  private readonly head = Buffer.alloc(16);
  private headFill = 0;
  private msg: Buffer | null = null;
  private msgFill = 0;

  private read(): void {
    for (;;) {
      if (this.closed) return;
      const r = this.ops.recvMsg(this.fd, this.rbuf, 64);
      if (r === null) break;
      if (r.bytes === 0) {
        this.shut();
        return;
      }
      this.pendingFds.push(...r.fds);
      // Each byte is copied once, into the message it belongs to (appending every chunk to one growing buffer cost a
      // copy of the whole message per chunk: a 1 MiB reply in 64 KiB reads was copied ~8 MiB over).
      let pos = 0;
      while (pos < r.bytes) {
        if (this.msg === null) {
          const n = Math.min(16 - this.headFill, r.bytes - pos);
          this.rbuf.copy(this.head, this.headFill, pos, pos + n);
          this.headFill += n;
          pos += n;
          if (this.headFill < 16) break;
          this.headFill = 0;
          const size = this.head.readUInt32LE(4);
          if (size < 16) { this.shut(); return; } // no server sends that: nothing says where the next message starts
          this.msg = Buffer.allocUnsafe(size);
          this.head.copy(this.msg, 0);
          this.msgFill = 16;
        }
        const n = Math.min(this.msg.length - this.msgFill, r.bytes - pos);
        this.rbuf.copy(this.msg, this.msgFill, pos, pos + n);
        this.msgFill += n;
        pos += n;
        if (this.msgFill === this.msg.length) {
          const b = this.msg;
          this.msg = null;
          this.dispatch({
            msgId: b.readUInt16LE(0), command: b.readUInt16LE(2), size: b.length, flags: b.readUInt32LE(8),
            errorNo: b.readUInt32LE(12), payload: b.subarray(16), fds: this.pendingFds.splice(0),
          });
        }
      }
    }
  }

  private dispatch(m: RawMessage): void {
    if ((m.flags & 0xf) === REPLY) {
      if (this.keepReplies) this.allReplies.push(m);
      const w = this.replies.get(m.msgId);
      this.replies.delete(m.msgId);
      w?.(m);
    } else {
      const w = this.commandWaiters.shift();
      if (w !== undefined) w(m);
      else this.commands.push(m);
    }
  }

  private shut(): void {
    if (this.closed) return;
    this.closed = true;
    this.watcher.close();
    this.ops.closeFd(this.fd);
    for (const fd of this.pendingFds.splice(0)) this.ops.closeFd(fd);
    for (const w of this.closeWaiters.splice(0)) w();
  }

  /** Resolves when the server closes the connection. */
  closedByServer(): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((r) => this.closeWaiters.push(r));
  }

  private readonly outq: Array<{ bytes: Buffer; fds: number[] }> = [];

  /** Send raw bytes (possibly malformed) with descriptors; what the socket cannot take now goes when it can. */
  sendRaw(bytes: Buffer, fds: number[] = []): void {
    this.outq.push({ bytes, fds });
    this.flush();
  }

  private flush(): void {
    while (this.outq.length > 0 && !this.closed) {
      const item = this.outq[0]!;
      const n = this.ops.sendMsg(this.fd, item.bytes, item.fds);
      if (n < 0) {
        this.watcher.start(true, true);
        return;
      }
      item.fds = [];
      item.bytes = item.bytes.subarray(n);
      if (item.bytes.length === 0) this.outq.shift();
    }
    if (!this.closed) this.watcher.start(true, false);
  }

  /** Send a command and wait for its reply. */
  call(command: number, payload: Buffer = Buffer.alloc(0), fds: number[] = [], flags = 0): Promise<RawMessage> {
    const id = this.nextId++ & 0xffff;
    const p = new Promise<RawMessage>((resolve) => this.replies.set(id, resolve));
    this.sendRaw(Buffer.concat([packHeader(id, command, 16 + payload.length, flags), payload]), fds);
    return p;
  }

  /** Wait for the reply to msg_id `id` (a message sent with sendRaw). */
  expect(id: number): Promise<RawMessage> {
    const done = this.allReplies.find((m) => m.msgId === id);
    if (done !== undefined) return Promise.resolve(done);
    return new Promise((resolve) => this.replies.set(id, resolve));
  }

  /** Send a command with No_reply (nothing comes back). */
  post(command: number, payload: Buffer): number {
    const id = this.nextId++ & 0xffff;
    this.sendRaw(Buffer.concat([packHeader(id, command, 16 + payload.length, NO_REPLY), payload]));
    return id;
  }

  /** The next server-to-client command (DMA_READ/DMA_WRITE). */
  nextCommand(): Promise<RawMessage> {
    const m = this.commands.shift();
    if (m !== undefined) return Promise.resolve(m);
    return new Promise((r) => this.commandWaiters.push(r));
  }

  reply(to: RawMessage, payload: Buffer = Buffer.alloc(0), errorNo = 0): void {
    this.sendRaw(Buffer.concat([packHeader(to.msgId, to.command, 16 + (errorNo ? 0 : payload.length), REPLY | (errorNo ? ERROR : 0), errorNo), errorNo ? Buffer.alloc(0) : payload]));
  }

  /** VERSION 0.1 with the given capabilities JSON object. */
  async version(caps: Record<string, unknown> = { max_msg_fds: 16, max_data_xfer_size: 1 << 20, write_multiple: true }, minor = 1): Promise<RawMessage> {
    const json = Buffer.from(JSON.stringify({ capabilities: caps }) + '\0');
    const p = Buffer.alloc(4 + json.length);
    p.writeUInt16LE(0, 0);
    p.writeUInt16LE(minor, 2);
    json.copy(p, 4);
    return this.call(1, p);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.watcher.close();
    this.ops.closeFd(this.fd);
    for (const fd of this.pendingFds.splice(0)) this.ops.closeFd(fd);
  }
}

export function u32s(...v: number[]): Buffer {
  const b = Buffer.alloc(4 * v.length);
  v.forEach((x, i) => b.writeUInt32LE(x >>> 0, 4 * i));
  return b;
}

export function u64(v: bigint | number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(v), 0);
  return b;
}

/** REGION_READ/WRITE header: u64 offset, u32 region, u32 count. */
export function regionAccess(offset: bigint | number, region: number, count: number, data?: Buffer): Buffer {
  return Buffer.concat([u64(offset), u32s(region, count), data ?? Buffer.alloc(0)]);
}
