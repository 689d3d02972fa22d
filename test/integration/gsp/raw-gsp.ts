/**
 * A hand-driven firmware end for transport tests: the real host GspRpcClient on one side, and on the other the
 * test itself, reading commands and writing exactly the elements it wants (well-formed or not) into the message
 * queue. Waits are on the queues' own doorbells, never on time.
 */
import { fallbackOps } from '../../../native/fallback.js';
import type { SharedArena } from '../../../native/native-ops.js';
import { encodeElement, type GspDrop, type GspReceiverSink } from '../../../hal/gsp/gsp-element.js';
import { GSP_MAX_ELEMENT_PAYLOAD, GSP_MAX_ELEMENT_SIZE, GspControl, GspFwState, GspRegion, elementPages } from '../../../hal/gsp/gsp-layout.js';
import { GspRegionView, openEndpoint, writeQueueHeader, type GspEndpoint } from '../../../hal/gsp/gsp-queue.js';
import { GspReceiver } from '../../../hal/gsp/gsp-receiver.js';
import { GspRpcClient, type GspRpcClientOptions } from '../../../hal/gsp/gsp-rpc-client.js';

export interface RawCommand {
  fn: number;
  sequence: number;
  payload: Uint8Array;
}

/** One element to write: `payload` is what this element carries; `fn` defaults to the message's. */
export interface RawElement {
  fn: number;
  sequence: number;
  payload: Uint8Array;
  result?: number;
}

export class RawGsp {
  readonly arena: SharedArena;
  readonly view: GspRegionView;
  readonly client: GspRpcClient;
  readonly gsp: GspEndpoint;
  private readonly rx: GspReceiver;
  private readonly inbox: RawCommand[] = [];
  private readonly sink: GspReceiverSink;
  readonly drops: GspDrop[] = [];
  /** How large a split command is (a test that sends one whose size nothing else tells sets this). */
  expectedBytes: ((fn: number, sequence: number, head: Uint8Array) => number | null) | null = null;
  private elemSeq = 0;
  private readonly scratch = new Uint8Array(GSP_MAX_ELEMENT_SIZE);
  private readonly scratch32 = new Uint32Array(this.scratch.buffer);

  constructor(client: Omit<GspRpcClientOptions, 'arena'> = {}) {
    this.arena = fallbackOps.createArena({ size: BigInt(GspRegion.SIZE), backing: 'sab' });
    // A heartbeat nobody bumps: keep the client from declaring us dead while a test holds a call open.
    this.client = new GspRpcClient({ arena: this.arena, heartbeatTimeoutMs: 3_600_000, ...client });
    this.view = new GspRegionView(this.arena, 0n);
    writeQueueHeader(this.view, GspRegion.MSGQ);
    this.gsp = openEndpoint(this.view, 'gsp');
    this.rx = new GspReceiver(this.gsp);
    this.sink = {
      message: (fn, sequence, _r, _rp, _g, payload) => this.inbox.push({ fn, sequence, payload }),
      drop: (d) => this.drops.push(d),
      fatal: (e) => { throw e; },
      expectedBytes: (fn, sequence, head) => this.expectedBytes?.(fn, sequence, head) ?? null,
    };
    this.view.setControl(GspControl.FW_STATE, GspFwState.Running);
    this.gsp.outbound.ring(true);
  }

  /** The next command the host wrote (waits for the host's doorbell). */
  async command(): Promise<RawCommand> {
    for (;;) {
      this.rx.drain(this.sink);
      const c = this.inbox.shift();
      if (c !== undefined) return c;
      await this.gsp.inbound.sleep(() => this.rx.hasInput(), Infinity);
    }
  }

  /** Pages the host has written into the command queue and we have not read. */
  commandPagesWaiting(): number {
    return this.gsp.rx.used();
  }

  /** Write these elements, one after the other (waiting for the host to free room), and ring the host. */
  async write(elements: RawElement[]): Promise<void> {
    const tx = this.gsp.tx;
    for (const e of elements) {
      if (e.payload.length > GSP_MAX_ELEMENT_PAYLOAD) throw new Error('one raw element carries at most one element of payload');
      const used = encodeElement(this.scratch, this.scratch32, 0, e.fn, e.sequence, e.result ?? 0, e.result ?? 0, 0, e.payload, 0, this.elemSeq++, false);
      const pages = elementPages(used);
      while (tx.free() < pages) {
        if (tx.publish()) this.gsp.outbound.ring();
        await this.gsp.txSpace.sleep(() => tx.free() >= pages, Infinity);
      }
      tx.write(this.scratch, 0, used, pages);
    }
    tx.publish();
    this.gsp.outbound.ring();
  }

  /**
   * The elements a well-formed split message of `payload` is made of (first one `fn`, then CONTINUATION_RECORDs),
   * each carrying what nouveau's rule puts in it.
   */
  static split(fn: number, sequence: number, payload: Uint8Array, continuationFn = 71): RawElement[] {
    const out: RawElement[] = [];
    for (let off = 0, i = 0; off < payload.length || i === 0; off += GSP_MAX_ELEMENT_PAYLOAD, i++) {
      out.push({ fn: i === 0 ? fn : continuationFn, sequence, payload: payload.subarray(off, Math.min(payload.length, off + GSP_MAX_ELEMENT_PAYLOAD)) });
    }
    return out;
  }

  async close(): Promise<void> {
    await this.client.close();
    this.arena.close();
  }
}
