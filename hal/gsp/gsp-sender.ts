/**
 * Writes whole RPC messages into one side's TX ring, in order, waiting for space when the ring is full.
 *
 * Several callers may send at once; their messages are written one after the other (a split message's elements
 * must stay contiguous, §8.2), but nothing else is serialised: the replies are awaited concurrently. A message
 * that fits goes into the ring synchronously — no promise, no queue — which is the common case.
 */
import { ErrorCode, VgpuError } from '../../core/contracts/exceptions.js';
import { GspElementEncoder, elementsFor, encodeElement, type RpcFields } from './gsp-element.js';
import { GSP_ELEMENT_PAYLOAD_OFFSET, elementPages } from './gsp-layout.js';
import type { GspEndpoint } from './gsp-queue.js';

export interface OutgoingMessage extends RpcFields {
  payload: Uint8Array;
  /** Set by the owner (cancel/timeout) before the first element was written: the message is skipped. */
  cancelled?: boolean;
}

export interface GspSenderOptions {
  /** How long to wait for ring space per element (OpenRM: 1 s per element, h&p §3.3). */
  spaceTimeoutMs: number;
  /** Non-null when the peer is known dead: stop waiting for space. */
  deadReason: () => VgpuError | null;
  /** A message could not be written (one callback for all, so no closure per message). */
  onError: (msg: OutgoingMessage, error: VgpuError) => void;
}

export class GspSender {
  private readonly enc = new GspElementEncoder();
  private readonly backlog: OutgoingMessage[] = [];
  private draining = false;
  private elemSeq = 0;
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

  /** Queue a message; written now if the ring has room and nobody is ahead. Errors go to `opts.onError`. */
  send(msg: OutgoingMessage): void {
    if (!this.draining && this.backlog.length === 0 && this.tryWriteWhole(msg)) {
      this.ep.outbound.ring();
      return;
    }
    this.backlog.push(msg);
    if (!this.draining) void this.drain();
  }

  /** Fail every queued message (peer lost, endpoint closed). */
  failAll(error: VgpuError): void {
    const q = this.backlog.splice(0);
    for (const m of q) this.opts.onError(m, error);
  }

  private tryWriteWhole(msg: OutgoingMessage): boolean {
    const n = elementsFor(msg.payload.length);
    // Fast path only for single-element messages; split ones go through drain() element by element.
    if (n !== 1) return false;
    const pages = elementPages(GSP_ELEMENT_PAYLOAD_OFFSET + msg.payload.length);
    if (this.ep.tx.free() < pages) return false;
    const tx = this.ep.tx;
    const at = tx.contiguousSlot(pages);
    if (at !== null) {
      // Encode straight into the ring slot: no scratch copy.
      const v = this.ep.view;
      tx.commit(encodeElement(v.u8, v.u32, at, msg, msg.payload, 0, this.elemSeq, this.takeCorrupt()), pages);
    } else {
      tx.write(this.enc.scratch, 0, this.enc.encode(msg, msg.payload, 0, this.elemSeq, this.takeCorrupt()), pages);
    }
    this.elemSeq = (this.elemSeq + 1) >>> 0;
    this.messages++;
    this.elements++;
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
        if (msg.cancelled) {
          this.backlog.shift();
          continue;
        }
        const n = elementsFor(msg.payload.length);
        for (let i = 0; i < n; i++) {
          const corrupt = this.takeCorrupt();
          const used = this.enc.encode(msg, msg.payload, i, this.elemSeq, corrupt);
          const pages = elementPages(used);
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
          // The encoder's scratch is still this element: waitSpace does not encode.
          this.elemSeq = (this.elemSeq + 1) >>> 0;
          this.ep.tx.write(this.enc.scratch, 0, used, pages);
          this.elements++;
          this.ep.outbound.ring();
          if (i === n - 1) {
            this.messages++;
            this.backlog.shift();
          }
        }
      }
    } finally {
      this.draining = false;
    }
  }

  /** Wait until `pages` slots are free; null on success, the error otherwise. */
  private async waitSpace(pages: number): Promise<VgpuError | null> {
    const tx = this.ep.tx;
    if (tx.free() >= pages) return null;
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
