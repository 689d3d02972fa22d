/**
 * One connected Unix stream socket that moves whole vfio-user messages with their descriptors: reads are driven by
 * the event loop's readiness of the socket (an FdWatcher), writes go straight to the socket and queue (with their
 * descriptors) only when its buffer is full.
 *
 * Fairness: one readiness event reads at most READ_BUDGET bytes; the rest waits for the next loop turn (the poll
 * fires again while data is pending), so one client that floods its socket cannot keep the other vGPUs of the same
 * front process from being served. `pause()`/`resume()` stop reading while the owner has too much queued; the
 * channel itself stops reading while more than OUT_HIGH bytes of replies wait for a client that does not read them
 * (and reads again below OUT_LOW), so a client cannot make the server buffer without bound.
 */
import type { FdOps, FdWatcher } from '../../../native/fd-ops.js';
import { WATCH_ERROR, WATCH_READABLE, WATCH_WRITABLE } from '../../../native/fd-ops.js';
import { HEADER_SIZE } from './constants.js';
import { MessageReader, type ReaderEvent } from './message-reader.js';

/** Bytes read per readiness event before yielding to other sockets. */
const READ_BUDGET = 1 << 20;
const READ_CHUNK = 64 << 10;
/** Outbound bytes queued (the socket buffer full) above which reading stops, and below which it starts again. */
const OUT_HIGH = 8 << 20;
const OUT_LOW = 1 << 20;
const NO_FDS: readonly number[] = [];

export interface ChannelHandlers {
  onEvents(events: ReaderEvent[]): void;
  /**
   * Offered each whole message of a chunk that came with no descriptors while no message is half-read, before the
   * framing: `data[at, at + size)` is the message (header included), valid only during the call. Returns true when
   * it answered the message itself; on false that message and every one after it in the chunk take the general path
   * (so order is kept).
   */
  fast?(data: Buffer, at: number, size: number): boolean;
  /** The peer closed, the socket failed, or close() was called; `reason` says which. Called once. */
  onClose(reason: string): void;
  /** The outbound backlog fell below OUT_LOW again (after `outputBlocked` was true). */
  onDrain?(): void;
}

interface Outgoing {
  data: Buffer;
  sent: number;
  fds: readonly number[];
  /** Descriptors to close once they are on the wire (ours to give away, e.g. a dup). */
  closeAfter: readonly number[];
}

export interface ChannelOptions {
  /** Largest descriptor count one inbound message may carry (extra ones are closed and refused). */
  maxFds: number;
  maxMessageSize: number;
}

export class SocketChannel {
  private readonly watcher: FdWatcher;
  private readonly reader: MessageReader;
  private readonly rbuf = Buffer.allocUnsafe(READ_CHUNK);
  private readonly queue: Outgoing[] = [];
  private closed = false;
  private paused = false;
  /** Bytes waiting in `queue`; reading stops while above OUT_HIGH (until below OUT_LOW). */
  private outQueued = 0;
  private outBlocked = false;
  /** What the watcher is armed for now (re-arming a libuv poll handle costs epoll_ctl calls: only on a change). */
  private armedRead = false;
  private armedWrite = false;
  private maxFds: number;
  bytesIn = 0;
  bytesOut = 0;

  constructor(private readonly ops: FdOps, readonly fd: number, private readonly h: ChannelHandlers, o: ChannelOptions) {
    this.maxFds = o.maxFds;
    this.reader = new MessageReader(o.maxMessageSize, (x) => this.safeClose(x));
    this.watcher = ops.watch(fd, (flags) => this.ready(flags));
    this.arm();
  }

  get isClosed(): boolean {
    return this.closed;
  }

  setLimits(o: Partial<ChannelOptions>): void {
    if (o.maxFds !== undefined) this.maxFds = o.maxFds;
    if (o.maxMessageSize !== undefined) this.reader.setMaxSize(o.maxMessageSize);
  }

  /** Send one whole message; descriptors ride with its first byte. Returns false when the channel is closed. */
  send(data: Buffer, fds: readonly number[] = [], closeAfter: readonly number[] = []): boolean {
    return this.enqueue({ data, sent: 0, fds, closeAfter }, false);
  }

  /**
   * Send one whole message from a buffer the caller reuses as soon as this returns (a preallocated reply): what the
   * socket does not take at once is copied into the queue.
   */
  sendTransient(data: Buffer): boolean {
    return this.enqueue({ data, sent: 0, fds: NO_FDS, closeAfter: NO_FDS }, true);
  }

  private enqueue(item: Outgoing, transient: boolean): boolean {
    if (this.closed) {
      for (const fd of item.closeAfter) this.safeClose(fd);
      return false;
    }
    if (this.queue.length === 0) this.flushOne(item);
    if (item.sent < item.data.length && !this.closed) {
      if (transient) {
        item.data = Buffer.from(item.data.subarray(item.sent));
        item.sent = 0;
      }
      this.queue.push(item);
      this.outQueued += item.data.length - item.sent;
      if (this.outQueued > OUT_HIGH) this.outBlocked = true;
      this.arm();
    }
    return !this.closed;
  }

  /** Stop reading (the owner is behind); resume() reads again. */
  pause(): void {
    this.paused = true;
    this.arm();
  }

  resume(): void {
    this.paused = false;
    this.arm();
  }

  /** Bytes of outbound messages waiting for the client to read. */
  get queuedOut(): number {
    return this.outQueued;
  }

  /** More than OUT_HIGH bytes wait for the client: produce no more replies until onDrain. */
  get outputBlocked(): boolean {
    return this.outBlocked;
  }

  /** Let the process exit while only this channel is open (the front keeps its listeners ref'd instead). */
  unref(): void {
    this.watcher.unref();
  }

  close(reason = 'closed by the server'): void {
    if (this.closed) return;
    this.closed = true;
    this.watcher.close();
    for (const q of this.queue.splice(0)) for (const fd of q.closeAfter) this.safeClose(fd);
    this.outQueued = 0;
    this.reader.discard();
    try {
      this.ops.shutdown(this.fd);
    } catch {
      // already gone
    }
    this.safeClose(this.fd);
    this.h.onClose(reason);
  }

  private arm(): void {
    if (this.closed) return;
    const read = !this.paused && !this.outBlocked;
    const write = this.queue.length > 0;
    if (read === this.armedRead && write === this.armedWrite) return;
    this.armedRead = read;
    this.armedWrite = write;
    this.watcher.start(read, write);
  }

  private ready(flags: number): void {
    if (this.closed) return;
    if ((flags & WATCH_WRITABLE) !== 0 || (flags & WATCH_ERROR) !== 0) this.flush();
    if (this.closed) return;
    if ((flags & WATCH_READABLE) !== 0 || (flags & WATCH_ERROR) !== 0) this.read();
  }

  private read(): void {
    let budget = READ_BUDGET;
    while (budget > 0 && !this.closed && !this.paused && !this.outBlocked) {
      let r;
      try {
        r = this.ops.recvMsg(this.fd, this.rbuf, this.maxFds);
      } catch (e) {
        this.close(`read failed: ${(e as Error).message}`);
        return;
      }
      if (r === null) return;
      if (r.bytes === 0) {
        for (const fd of r.fds) this.safeClose(fd);
        this.close('peer closed the connection');
        return;
      }
      this.bytesIn += r.bytes;
      budget -= r.bytes;
      let at = 0;
      if (this.h.fast !== undefined && r.fds.length === 0 && !r.fdsTruncated && this.reader.idle) {
        // Whole messages at the front of the chunk go to the fast path until it declines one.
        while (r.bytes - at >= HEADER_SIZE) {
          const size = this.rbuf.readUInt32LE(at + 4);
          if (size < HEADER_SIZE || size > r.bytes - at || !this.h.fast(this.rbuf, at, size)) break;
          at += size;
          if (this.closed) return;
        }
        if (at === r.bytes) continue;
      }
      const events = this.reader.push(this.rbuf.subarray(at, r.bytes), r.fds, r.fdsTruncated);
      if (events.length > 0) this.h.onEvents(events);
      if (events.some((e) => e.kind === 'fatal')) {
        this.close('framing error');
        return;
      }
    }
  }

  private flush(): void {
    while (this.queue.length > 0 && !this.closed) {
      const item = this.queue[0]!;
      const before = item.sent;
      this.flushOne(item);
      this.outQueued -= item.sent - before;
      if (item.sent < item.data.length) break;
      this.queue.shift();
    }
    const drained = this.outBlocked && this.outQueued < OUT_LOW;
    if (drained) this.outBlocked = false;
    this.arm();
    if (drained && !this.closed) this.h.onDrain?.();
  }

  private flushOne(item: Outgoing): void {
    while (item.sent < item.data.length) {
      let n: number;
      try {
        n = this.ops.sendMsg(this.fd, item.sent === 0 ? item.data : item.data.subarray(item.sent), item.sent === 0 ? item.fds : []);
      } catch (e) {
        this.close(`write failed: ${(e as Error).message}`);
        return;
      }
      if (n < 0) return; // socket buffer full: the writable event continues
      if (item.sent === 0) for (const fd of item.closeAfter) this.safeClose(fd);
      item.sent += n;
      this.bytesOut += n;
    }
  }

  private safeClose(fd: number): void {
    try {
      this.ops.closeFd(fd);
    } catch {
      // a descriptor already closed: nothing to release
    }
  }
}
