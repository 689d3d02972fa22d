/**
 * What the batched transport must keep: replies reach their own callers while call records are reused, and a
 * broken split message does not take the intact message after it down with it.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode, isVgpuError } from '../../../core/contracts/exceptions.js';
import { fallbackOps } from '../../../native/fallback.js';
import { encodeElement, type GspDrop, type GspReceiverSink } from '../../../hal/gsp/gsp-element.js';
import { Element, GSP_MAX_ELEMENT_PAYLOAD, GspFunction, GspRegion, elementPages } from '../../../hal/gsp/gsp-layout.js';
import { GspRegionView, initGspRegion, openEndpoint, writeQueueHeader } from '../../../hal/gsp/gsp-queue.js';
import { GspReceiver } from '../../../hal/gsp/gsp-receiver.js';
import { makeRig, pattern, until, type Rig } from './gsp-harness.js';

describe('GSP batched transport', () => {
  let rig: Rig;
  before(async () => {
    rig = await makeRig();
  });
  after(async () => rig.close());

  it('a late reply of a timed-out call never reaches a later call that reuses its record', async () => {
    await rig.gsp!.inject({ kind: 'delay-reply', ms: 150, fn: GspFunction.GSP_RM_CONTROL });
    const late0 = rig.client.stats.lateReplies;
    const timedOut = rig.client.call(GspFunction.GSP_RM_CONTROL, pattern(48, 999), { timeoutMs: 20 });
    await assert.rejects(timedOut, (e) => isVgpuError(e, ErrorCode.RpcTimeout));
    // Keep 16 callers queued with distinct payloads, all of the same function, until the stale reply has come and
    // gone: matched by function alone (nouveau), it would go to the first of them.
    let mismatches = 0;
    let calls = 0;
    const caller = async (id: number): Promise<void> => {
      for (let i = 0; rig.client.stats.lateReplies === late0 || i < 50; i++) {
        const req = pattern(48, id * 1_000_000 + i);
        const reply = await rig.client.call(GspFunction.GSP_RM_CONTROL, req);
        calls++;
        if (!Buffer.from(reply).equals(Buffer.from(req))) mismatches++;
      }
    };
    await Promise.all(Array.from({ length: 16 }, (_, id) => caller(id)));
    assert.equal(rig.client.stats.lateReplies, late0 + 1, 'the stale reply was recognised and dropped');
    assert.equal(mismatches, 0, `every one of ${calls} calls got its own payload back`);
    assert.equal(rig.client.inFlight, 0);
  });
});

describe('GSP receiver', () => {
  function ring(): { view: GspRegionView; write: (fn: number, sequence: number, payload: Uint8Array, index: number, elemSeq: number) => void; rx: GspReceiver; close: () => void } {
    const arena = fallbackOps.createArena({ size: BigInt(GspRegion.SIZE), backing: 'sab' });
    const view = new GspRegionView(arena, 0n);
    initGspRegion(view);
    writeQueueHeader(view, GspRegion.MSGQ);
    const gsp = openEndpoint(view, 'gsp');
    const write = (fn: number, sequence: number, payload: Uint8Array, index: number, elemSeq: number): void => {
      const at = gsp.tx.contiguousSlot(16);
      assert.ok(at !== null);
      const used = encodeElement(view.u8, view.u32, at, fn, sequence, 0, 0, 0, payload, index, elemSeq, false);
      gsp.tx.commit(used, elementPages(used));
      gsp.tx.publish();
    };
    return { view, write, rx: new GspReceiver(openEndpoint(view, 'host')), close: () => arena.close() };
  }
  const collect = (expected: number | null): { sink: GspReceiverSink; got: Array<{ seq: number; payload: Uint8Array }>; drops: GspDrop[] } => {
    const got: Array<{ seq: number; payload: Uint8Array }> = [];
    const drops: GspDrop[] = [];
    return {
      got,
      drops,
      sink: {
        message: (_fn, seq, _r, _rp, _g, payload) => got.push({ seq, payload }),
        drop: (d) => drops.push(d),
        fatal: (e) => assert.fail(`unexpected fatal: ${e.message}`),
        expectedBytes: () => expected,
      },
    };
  };

  it('reports a split message of known size cut short by a new message, and still delivers the new one', async () => {
    const r = ring();
    // Only the first element of a two-element reply, then a complete one-element reply.
    r.write(GspFunction.GET_GSP_STATIC_INFO, 7, pattern(GSP_MAX_ELEMENT_PAYLOAD + 100, 1), 0, 0);
    const intact = pattern(40, 2);
    r.write(GspFunction.NOP, 8, intact, 0, 1);
    const c = collect(GSP_MAX_ELEMENT_PAYLOAD + 100);
    await until(() => r.rx.hasInput());
    assert.equal(r.rx.drain(c.sink), 2);
    assert.deepEqual(c.drops.map((d) => d.sequence), [7]);
    assert.ok(isVgpuError(c.drops[0]!.error, ErrorCode.FirmwareRpc));
    assert.equal(c.got.length, 1);
    assert.equal(c.got[0]!.seq, 8);
    assert.deepEqual(c.got[0]!.payload, intact);
    r.close();
  });

  it('writes every element with nouveau\'s length (its own bytes) and the next RPC sequence; a message of unknown size ends at a short element or the next message', async () => {
    const r = ring();
    const payload = pattern(2 * GSP_MAX_ELEMENT_PAYLOAD + 10, 3);
    const elemAt = (k: number): number => GspRegion.MSGQ + 0x1000 + k * 0x1000;
    r.write(GspFunction.GET_GSP_STATIC_INFO, 9, payload, 0, 0);
    r.write(GspFunction.GET_GSP_STATIC_INFO, 9, payload, 1, 1);
    r.write(GspFunction.GET_GSP_STATIC_INFO, 9, payload, 2, 2);
    const len = (k: number): number => r.view.load(elemAt(k) + Element.RPC_LENGTH);
    const fn = (k: number): number => r.view.load(elemAt(k) + Element.RPC_FUNCTION);
    assert.deepEqual([len(0), len(16), len(32)], [0x20 + GSP_MAX_ELEMENT_PAYLOAD, 0x20 + GSP_MAX_ELEMENT_PAYLOAD, 0x20 + 10]);
    assert.deepEqual([fn(0), fn(16), fn(32)], [GspFunction.GET_GSP_STATIC_INFO, GspFunction.CONTINUATION_RECORD, GspFunction.CONTINUATION_RECORD]);
    const seq = (k: number): number => r.view.load(elemAt(k) + Element.RPC_SEQUENCE);
    assert.deepEqual([seq(0), seq(16), seq(32)], [9, 10, 11], 'each continuation record takes the next RPC sequence');
    const c = collect(null);
    await until(() => r.rx.hasInput());
    r.rx.drain(c.sink);
    assert.equal(c.got.length, 1, 'the short third element ended it');
    assert.ok(Buffer.from(c.got[0]!.payload).equals(Buffer.from(payload)));
    r.close();
  });
});
