/**
 * The simulated GSP reading split commands written by hand on the host side: a command whose size only its RM
 * control header gives is reassembled, and a broken one (continuation records missing, or one with no command in
 * progress) is refused or dropped cleanly — the command after it is served as usual.
 */
import { afterEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fallbackOps } from '../../../native/fallback.js';
import type { SharedArena } from '../../../native/native-ops.js';
import { encodeElement, type GspReceiverSink } from '../../../hal/gsp/gsp-element.js';
import { GSP_MAX_ELEMENT_PAYLOAD, GSP_MAX_ELEMENT_SIZE, GspFunction, GspRegion, RmStatus, elementPages } from '../../../hal/gsp/gsp-layout.js';
import { GspRegionView, initGspRegion, openEndpoint, type GspEndpoint } from '../../../hal/gsp/gsp-queue.js';
import { GspReceiver } from '../../../hal/gsp/gsp-receiver.js';
import { RM_CONTROL_HEADER_SIZE, declaredRmPayloadBytes, encodeRmControl } from '../../../hal/gsp/rm-payload.js';
import { GspRpcServer } from '../../../hal/sim/gsp/gsp-rpc-server.js';
import { pattern } from './gsp-harness.js';

interface Reply { fn: number; sequence: number; result: number; payload: Uint8Array }

/** Host end written by hand against a real GspRpcServer (echo handler) on the same thread. */
class RawHost {
  readonly arena: SharedArena;
  readonly server: GspRpcServer;
  private readonly host: GspEndpoint;
  private readonly rx: GspReceiver;
  private readonly replies: Reply[] = [];
  private readonly sink: GspReceiverSink;
  private readonly scratch = new Uint8Array(GSP_MAX_ELEMENT_SIZE);
  private readonly scratch32 = new Uint32Array(this.scratch.buffer);
  private elemSeq = 0;

  constructor() {
    this.arena = fallbackOps.createArena({ size: BigInt(GspRegion.SIZE), backing: 'sab' });
    const view = new GspRegionView(this.arena, 0n);
    initGspRegion(view);
    this.host = openEndpoint(view, 'host');
    this.rx = new GspReceiver(this.host);
    this.sink = {
      message: (fn, sequence, result, _rp, _g, payload) => this.replies.push({ fn, sequence, result, payload }),
      drop: (d) => assert.fail(`host dropped a reply: ${d.error.message}`),
      fatal: (e) => assert.fail(`host queue unreadable: ${e.message}`),
      expectedBytes: (fn, _seq, head) => declaredRmPayloadBytes(fn, head),
    };
    this.server = new GspRpcServer({ arena: this.arena, handler: (_fn, payload) => ({ result: 0, payload }) });
    this.server.start();
  }

  /** Write elements (`index` picks the chunk of `payload` and makes 1+ a CONTINUATION_RECORD), ring the GSP. */
  write(elements: Array<{ fn: number; sequence: number; payload: Uint8Array; index: number }>): void {
    for (const e of elements) {
      const used = encodeElement(this.scratch, this.scratch32, 0, e.fn, e.sequence, 0xffffffff, 0xffffffff, 0, e.payload, e.index, this.elemSeq++, false);
      this.host.tx.write(this.scratch, 0, used, elementPages(used));
    }
    this.host.tx.publish();
    this.host.outbound.ring();
  }

  async reply(): Promise<Reply> {
    for (;;) {
      this.rx.drain(this.sink);
      const r = this.replies.shift();
      if (r !== undefined) return r;
      await this.host.inbound.sleep(() => this.rx.hasInput(), Infinity);
    }
  }

  async close(): Promise<void> {
    await this.server.stop();
    this.arena.close();
  }
}

let h: RawHost | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const control = (paramsBytes: number, seed: number): Uint8Array =>
  encodeRmControl({ hClient: 1, hObject: 2, cmd: 0x20800101, params: pattern(paramsBytes, seed) });

describe('simulated GSP reading split commands', () => {
  it('reassembles an RM control whose size only its header gives (an exact multiple of one element)', async () => {
    h = new RawHost();
    const msg = control(2 * GSP_MAX_ELEMENT_PAYLOAD - RM_CONTROL_HEADER_SIZE, 1);
    h.write([0, 1].map((index) => ({ fn: GspFunction.GSP_RM_CONTROL, sequence: 5, payload: msg, index })));
    const r = await h.reply();
    assert.deepEqual([r.fn, r.sequence, r.result], [GspFunction.GSP_RM_CONTROL, 5, 0]);
    assert.ok(Buffer.from(r.payload).equals(Buffer.from(msg)), 'echoed whole');
  });

  it('refuses a command whose continuation records never came, then serves the next one', async () => {
    h = new RawHost();
    const msg = control(GSP_MAX_ELEMENT_PAYLOAD + 500, 2);
    h.write([
      { fn: GspFunction.GSP_RM_CONTROL, sequence: 6, payload: msg, index: 0 },
      { fn: GspFunction.NOP, sequence: 7, payload: pattern(32, 3), index: 0 },
    ]);
    const refused = await h.reply();
    assert.deepEqual([refused.fn, refused.sequence, refused.result], [GspFunction.GSP_RM_CONTROL, 6, RmStatus.SIM_BAD_MESSAGE]);
    const next = await h.reply();
    assert.deepEqual([next.fn, next.sequence, next.result], [GspFunction.NOP, 7, 0]);
    assert.deepEqual(next.payload, pattern(32, 3));
    assert.equal(h.server.stats.drops, 1);
  });

  it('drops a continuation record with no command in progress without answering it', async () => {
    h = new RawHost();
    const orphan = pattern(GSP_MAX_ELEMENT_PAYLOAD + 10, 4);
    h.write([
      { fn: GspFunction.NOP, sequence: 8, payload: orphan, index: 1 }, // index 1: a CONTINUATION_RECORD
      { fn: GspFunction.NOP, sequence: 9, payload: pattern(16, 5), index: 0 },
    ]);
    const r = await h.reply();
    assert.deepEqual([r.fn, r.sequence], [GspFunction.NOP, 9], 'the only reply is the next command\'s');
    assert.equal(h.server.stats.drops, 1);
    assert.equal(h.server.stats.replies, 1);
  });
});
