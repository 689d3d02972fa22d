/**
 * Writes whole RPC messages into one side's TX ring, in order, waiting for space when the ring is full.
 *
 * Messages are written one after the other, a split message's elements back to back (docs/reference/gsp-queues.md).
 * Which messages may be outstanding is the owner's business (the host client keeps one call in flight; the GSP
 * side writes replies and events). A message that fits goes into the ring synchronously — encoded straight into
 * its slot, no promise, no queue — which is the common case.
 *
 * Doorbell coalescing: a written element is NOT published at once. Everything written in the same tick is
 * published with one store of the write pointer and one doorbell, by a microtask queued at the first write (or
 * earlier, by an owner that calls flush() at the end of a batch it knows about). Thirty callers resuming from one
 * batch of replies thus cost the peer one wake-up and one look at our write pointer, not thirty.
 */
import { ErrorCode, VgpuError } from '../../core/contracts/exceptions.js';
import { GspElementEncoder, elementsFor, encodeElement } from './gsp-element.js';
import type { RpcFields } from './gsp-element.js';
import { GSP_ELEMENT_PAYLOAD_OFFSET, GSP_MAX_ELEMENT_PAYLOAD, GSP_PAGE_SHIFT, GSP_PAGE_SIZE } from './gsp-layout.js';
import type { GspEndpoint } from './gsp-queue.js';

export interface OutgoingMessage extends RpcFields {
  payload: Uint8Array;
  /** Set by the owner (cancel/timeout) before the first element was written: the message is skipped. */
  cancelled?: boolean;
}

export interface GspSenderOptions {
  /** How long to wait for ring space per element (OpenRM `message_queue_cpu.c`: 1 s per element). */
  spaceTimeoutMs: number;
  /** Non-null when the peer is known dead: stop waiting for space. */
  deadReason: () => VgpuError | null;
  /** A message could not be written (one callback for all, so no closure per message). */
  onError: (msg: OutgoingMessage, error: VgpuError) => void;
  /** A message that had to wait for space is now wholly in the ring (not for those send() wrote at once). */
  onWritten?: (msg: OutgoingMessage) => void;
}

export class GspSender {
  private readonly enc = new GspElementEncoder();
  private readonly backlog: OutgoingMessage[] = [];
  private draining = false;
  private elemSeq = 0;
  private flushQueued = false;
  private readonly flushTask = (): void => {
    this.flushQueued = false;
    this.flush();
  };
  /** Fault injection: corrupt the next element written (after its checksum). */
  corruptNext = false;
  /** Messages and elements written, for stats. */
  messages = 0;
  elements = 0;

  constructor(
    private readonly ep: GspEndpoint,
    private readonly opts: GspSenderOptions,
  ) {}

  /** Messages waiting for ring space. */
  get backlogLength(): number {
    return this.backlog.length;
  }

  /**
   * Queue a message; written now if the ring has room and nobody is ahead. Errors go to `opts.onError`. Returns
   * true when the message was written at once (the sender then keeps no reference to it).
   */
  send(msg: OutgoingMessage): boolean {
    if (!this.draining && this.backlog.length === 0 &&
        this.tryWrite(msg.fn, msg.sequence, msg.result, msg.resultPrivate, msg.gfid, msg.payload)) {
      return true;
    }
    this.enqueue(msg);
    return false;
  }

  /** send() for a caller that has the fields at hand (a firmware reply): no message object unless it must wait. */
  sendFields(fn: number, sequence: number, result: number, resultPrivate: number, gfid: number, payload: Uint8Array): void {
    if (!this.draining && this.backlog.length === 0 && this.tryWrite(fn, sequence, result, resultPrivate, gfid, payload)) return;
    this.enqueue({ fn, sequence, result, resultPrivate, gfid, payload });
  }

  /** Publish everything written so far and ring the peer once. Cheap when there is nothing to publish. */
  flush(): void {
    if (this.ep.tx.publish()) this.ep.outbound.ring();
  }

  /** Fail every queued message (peer lost, endpoint closed). */
  failAll(error: VgpuError): void {
    const q = this.backlog.splice(0);
    for (const m of q) this.opts.onError(m, error);
  }

  private enqueue(msg: OutgoingMessage): void {
    this.backlog.push(msg);
    if (!this.draining) void this.drain();
  }

  private queueFlush(): void {
    if (!this.flushQueued) {
      this.flushQueued = true;
      queueMicrotask(this.flushTask);
    }
  }

  /** Write a one-element message if the ring has room; false leaves it to the backlog. */
  private tryWrite(fn: number, sequence: number, result: number, resultPrivate: number, gfid: number, payload: Uint8Array): boolean {
    // Only single-element messages; split ones go through drain() element by element.
    if (payload.length > GSP_MAX_ELEMENT_PAYLOAD) return false;
    const pages = (GSP_ELEMENT_PAYLOAD_OFFSET + payload.length + GSP_PAGE_SIZE - 1) >>> GSP_PAGE_SHIFT;
    const tx = this.ep.tx;
    if (!tx.hasRoom(pages)) return false;
    const corrupt = this.corruptNext;
    this.corruptNext = false;
    const at = tx.contiguousSlot(pages);
    if (at !== null) {
      // Encode straight into the ring slot: no scratch copy.
      const v = this.ep.view;
      tx.commit(encodeElement(v.u8, v.u32, at, fn, sequence, result, resultPrivate, gfid, payload, 0, this.elemSeq, corrupt), pages);
    } else {
      const s = this.enc.scratch;
      const used = encodeElement(s, this.enc.scratch32, 0, fn, sequence, result, resultPrivate, gfid, payload, 0, this.elemSeq, corrupt);
      tx.write(s, 0, used, pages);
    }
    this.elemSeq = (this.elemSeq + 1) >>> 0;
    this.messages++;
    this.elements++;
    this.queueFlush();
    return true;
  }

  private takeCorrupt(): boolean {
    const c = this.corruptNext;
    this.corruptNext = false;
    return c;
  }

  private async drain(): Promise<void> {
    this.draining = true;
    try {
      while (this.backlog.length > 0) {
        const msg = this.backlog[0] as OutgoingMessage;
        if (msg.cancelled === true) {
          this.backlog.shift();
          continue;
        }
        const n = elementsFor(msg.payload.length);
        for (let i = 0; i < n; i++) {
          const pages = (GSP_ELEMENT_PAYLOAD_OFFSET + Math.min(GSP_MAX_ELEMENT_PAYLOAD, msg.payload.length - i * GSP_MAX_ELEMENT_PAYLOAD) +
            GSP_PAGE_SIZE - 1) >>> GSP_PAGE_SHIFT;
          const err = await this.waitSpace(pages);
          if (err !== null) {
            this.backlog.shift();
            if (i > 0) {
              // Elements of this message are already in the ring; the peer will drop the incomplete message
              // when the next one starts. Nothing better exists: a ring cannot take elements back.
              err.details.partial = true;
            }
            this.opts.onError(msg, err);
            break;
          }
          // Encode after the wait: the scratch run is shared with tryWrite(), which may have run meanwhile.
          const used = this.enc.encode(msg, msg.payload, i, this.elemSeq, this.takeCorrupt());
          this.elemSeq = (this.elemSeq + 1) >>> 0;
          this.ep.tx.write(this.enc.scratch, 0, used, pages);
          this.elements++;
          this.queueFlush();
          if (i === n - 1) {
            this.messages++;
            this.backlog.shift();
            this.opts.onWritten?.(msg);
          }
        }
      }
    } finally {
      this.draining = false;
      this.flush();
    }
  }

  /** Wait until `pages` slots are free; null on success, the error otherwise. */
  private async waitSpace(pages: number): Promise<VgpuError | null> {
    const tx = this.ep.tx;
    if (tx.free() >= pages) return null;
    // The peer can only free what it can see: publish our writes before we sleep on its progress.
    this.flush();
    const deadline = Date.now() + this.opts.spaceTimeoutMs;
    for (;;) {
      const dead = this.opts.deadReason();
      if (dead !== null) return dead;
      const left = deadline - Date.now();
      if (left <= 0) break;
      await this.ep.txSpace.sleep(() => tx.free() >= pages, Math.min(left, 100));
      if (tx.free() >= pages) return null;
    }
    return new VgpuError(ErrorCode.Busy, `GSP queue full: no room for ${pages} page(s) within ${this.opts.spaceTimeoutMs} ms`, {
      hint: 'the peer is not draining its queue (hung or overloaded firmware); retry later or reset the GPU',
      details: { pages, free: tx.free(), timeoutMs: this.opts.spaceTimeoutMs },
    });
  }
}
