/**
 * The small control channel between the daemon and a device front (a Unix socket, mode 0600): requests and replies
 * both ways, each frame `u32 json length, u32 binary length, JSON, binary` (the binary part carries migration data
 * without base64). A request is `{id, op, ...}`; its reply `{id, ok: true, ...}` or `{id, ok: false, errno,
 * message}`; a notification is a request without `id` (no reply).
 *
 * Either side may go away at any time (a daemon restart): pending requests fail with EAGAIN, and nothing the other
 * side serves depends on the channel being up. A frame larger than MAX_FRAME or a JSON that does not parse ends the
 * connection (the peer is broken; the front keeps serving its VMMs).
 */
import type { Socket } from 'node:net';
import { Errno } from '../protocol/constants.js';
import { refuse } from '../protocol/protocol-error.js';

export const MAX_FRAME = 64 << 20;
/** How long a request waits for its reply before failing (the daemon's reset of a vGPU can take seconds). */
export const REQUEST_TIMEOUT_MS = 120_000;

export interface ControlMessage {
  id?: number;
  op?: string;
  ok?: boolean;
  errno?: number;
  message?: string;
  [key: string]: unknown;
}

export type RequestHandler = (msg: ControlMessage, data: Buffer) => Promise<{ reply?: Record<string, unknown>; data?: Buffer } | void>;

interface Pending {
  resolve: (r: { msg: ControlMessage; data: Buffer }) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

export class ControlChannel {
  private buf: Buffer = Buffer.alloc(0);
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private closed = false;
  private readonly closeListeners: Array<() => void> = [];

  constructor(private readonly sock: Socket, private readonly handler: RequestHandler) {
    sock.on('data', (chunk: Buffer) => this.onData(chunk));
    sock.on('close', () => this.onClose());
    sock.on('error', () => sock.destroy());
  }

  get isClosed(): boolean {
    return this.closed;
  }

  onClosed(fn: () => void): void {
    if (this.closed) fn();
    else this.closeListeners.push(fn);
  }

  /** Send a request and wait for its reply (rejects with a refusal carrying the peer's errno). */
  request(op: string, body: Record<string, unknown> = {}, data?: Buffer, timeoutMs = REQUEST_TIMEOUT_MS): Promise<{ msg: ControlMessage; data: Buffer }> {
    if (this.closed) return Promise.reject(refuse(Errno.EAGAIN, `control channel closed (${op})`, 'retry once the other side is back'));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(refuse(Errno.EAGAIN, `no answer to ${op} within ${timeoutMs} ms`, 'retry; check that the other side runs'));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      this.write({ ...body, id, op }, data);
    });
  }

  /** A message without reply. */
  notify(op: string, body: Record<string, unknown> = {}): void {
    if (!this.closed) this.write({ ...body, op });
  }

  close(): void {
    this.sock.destroy();
  }

  private write(msg: ControlMessage, data?: Buffer): void {
    const json = Buffer.from(JSON.stringify(msg), 'utf8');
    const head = Buffer.alloc(8);
    head.writeUInt32LE(json.length, 0);
    head.writeUInt32LE(data?.length ?? 0, 4);
    this.sock.write(data !== undefined && data.length > 0 ? Buffer.concat([head, json, data]) : Buffer.concat([head, json]));
  }

  private onData(chunk: Buffer): void {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    while (this.buf.length >= 8) {
      const jl = this.buf.readUInt32LE(0);
      const bl = this.buf.readUInt32LE(4);
      if (jl + bl > MAX_FRAME) {
        this.sock.destroy();
        return;
      }
      if (this.buf.length < 8 + jl + bl) return;
      let msg: ControlMessage;
      try {
        msg = JSON.parse(this.buf.subarray(8, 8 + jl).toString('utf8')) as ControlMessage;
      } catch {
        this.sock.destroy();
        return;
      }
      const data = Buffer.from(this.buf.subarray(8 + jl, 8 + jl + bl));
      this.buf = this.buf.subarray(8 + jl + bl);
      this.dispatch(msg, data);
    }
  }

  private dispatch(msg: ControlMessage, data: Buffer): void {
    if (msg.ok !== undefined && typeof msg.id === 'number') {
      const p = this.pending.get(msg.id);
      if (p === undefined) return;
      this.pending.delete(msg.id);
      clearTimeout(p.timer);
      if (msg.ok) p.resolve({ msg, data });
      else p.reject(refuse(typeof msg.errno === 'number' ? msg.errno : Errno.EIO, msg.message ?? 'refused by the peer'));
      return;
    }
    const id = msg.id;
    void this.handler(msg, data).then((r) => {
      if (typeof id === 'number') this.write({ ...(r?.reply ?? {}), id, ok: true }, r?.data);
    }, (e: unknown) => {
      if (typeof id !== 'number') return;
      const errno = (e as { details?: { errno?: unknown } }).details?.errno;
      this.write({ id, ok: false, errno: typeof errno === 'number' ? errno : Errno.EIO, message: (e as Error).message ?? String(e) });
    });
  }

  private onClose(): void {
    if (this.closed) return;
    this.closed = true;
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(refuse(Errno.EAGAIN, 'control channel closed', 'retry once the other side is back'));
    }
    this.pending.clear();
    for (const fn of this.closeListeners.splice(0)) fn();
  }
}
