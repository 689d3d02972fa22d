/**
 * How the host client matches what the firmware writes back, driven from a hand-written firmware end (raw-gsp.ts)
 * so every element is exactly what the test says: replies matched on function AND sequence, messages that match
 * nothing logged and dropped, events delivered while a call waits, and split replies reassembled by nouveau's
 * length rules — with broken ones failing only the call they belong to and the queue reading on.
 */
import { afterEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode, isVgpuError } from '../../../core/contracts/exceptions.js';
import { GSP_MAX_ELEMENT_PAYLOAD, GspEvent, GspFunction } from '../../../hal/gsp/gsp-layout.js';
import type { GspEvent as GspEventRecord } from '../../../hal/gsp/gsp-rpc-client.js';
import { encodeRmControl } from '../../../hal/gsp/rm-payload.js';
import { pattern } from './gsp-harness.js';
import { RawGsp } from './raw-gsp.js';

const CONT = GspFunction.CONTINUATION_RECORD;
let raw: RawGsp | undefined;

afterEach(async () => {
  await raw?.close();
  raw = undefined;
});

describe('reply matching', () => {
  it('takes the reply with the call\'s function and sequence; another function is dropped, an event is delivered, meanwhile', async () => {
    raw = new RawGsp();
    const events: GspEventRecord[] = [];
    const gotEvent = new Promise<void>((resolve) => raw!.client.onEvent((e) => { events.push(e); resolve(); }));
    const call = raw.client.call(GspFunction.GET_GSP_STATIC_INFO, pattern(40, 1));
    let settled = false;
    void call.finally(() => { settled = true; });
    const cmd = await raw.command();
    assert.equal(cmd.fn, GspFunction.GET_GSP_STATIC_INFO);
    assert.notEqual(cmd.sequence, 0, 'a call carries its own RPC sequence');
    // A reply of another function with the call's sequence, then an event, then the real reply.
    await raw.write([
      { fn: GspFunction.GSP_RM_CONTROL, sequence: cmd.sequence, payload: pattern(8, 2) },
      { fn: GspEvent.RC_TRIGGERED, sequence: 0, payload: pattern(12, 3) },
    ]);
    // Once the event is here, the message before it was read too — and the call still waits.
    await gotEvent;
    assert.equal(settled, false, 'a reply of another function is not taken');
    assert.equal(raw.client.stats.unexpected, 1);
    await raw.write([{ fn: GspFunction.GET_GSP_STATIC_INFO, sequence: cmd.sequence, payload: pattern(40, 4) }]);
    assert.deepEqual(await call, pattern(40, 4));
    assert.equal(events[0]!.fn, GspEvent.RC_TRIGGERED);
  });

  it('does not give a late reply of a timed-out call to the next call of the same function (nouveau would)', async () => {
    raw = new RawGsp();
    const first = assert.rejects(raw.client.call(GspFunction.GSP_RM_CONTROL, pattern(32, 1), { timeoutMs: 30 }),
      (e) => isVgpuError(e, ErrorCode.RpcTimeout));
    const c1 = await raw.command();
    await first;
    const second = raw.client.call(GspFunction.GSP_RM_CONTROL, pattern(32, 2));
    const c2 = await raw.command();
    assert.notEqual(c2.sequence, c1.sequence);
    // The firmware finally answers the first call, then the second.
    await raw.write([
      { fn: GspFunction.GSP_RM_CONTROL, sequence: c1.sequence, payload: pattern(32, 10) },
      { fn: GspFunction.GSP_RM_CONTROL, sequence: c2.sequence, payload: pattern(32, 20) },
    ]);
    assert.deepEqual(await second, pattern(32, 20), 'the second caller gets its own reply, not the stale one');
    assert.equal(raw.client.stats.lateReplies, 1);
  });

  it('fails the call with the rpc_result its reply carries', async () => {
    raw = new RawGsp();
    const call = assert.rejects(raw.client.call(GspFunction.GSP_RM_ALLOC, pattern(44, 1)), (e) => isVgpuError(e, ErrorCode.OutOfMemory));
    const c = await raw.command();
    await raw.write([{ fn: c.fn, sequence: c.sequence, payload: new Uint8Array(0), result: 0x51 }]);
    await call;
  });
});

describe('split replies (nouveau length rules)', () => {
  const big = (n: number): Uint8Array => pattern(n, n);

  it('reassembles a reply the size of the request, and one whose size only its RM control header gives', async () => {
    raw = new RawGsp();
    const size = GSP_MAX_ELEMENT_PAYLOAD * 2; // an exact multiple: nothing but the expected size says where it ends
    raw.expectedBytes = () => size;
    const call = raw.client.call(GspFunction.GET_GSP_STATIC_INFO, big(size));
    const c = await raw.command();
    assert.equal(c.payload.length, size);
    await raw.write(RawGsp.split(c.fn, c.sequence, big(size)));
    assert.ok(Buffer.from(await call).equals(Buffer.from(big(size))));
    raw.expectedBytes = null;

    // An RM control whose reply is larger than its request: the reply's paramsSize tells the reader.
    const reply = encodeRmControl({ hClient: 1, hObject: 2, cmd: 0x20800101, params: big(GSP_MAX_ELEMENT_PAYLOAD * 2 - 24) });
    const ctl = raw.client.call(GspFunction.GSP_RM_CONTROL, encodeRmControl({ hClient: 1, hObject: 2, cmd: 0x20800101, params: new Uint8Array(8) }));
    const c2 = await raw.command();
    await raw.write(RawGsp.split(c2.fn, c2.sequence, reply));
    assert.ok(Buffer.from(await ctl).equals(Buffer.from(reply)));
  });

  it('an event ahead of a large reply is delivered and the reply still reassembled', async () => {
    raw = new RawGsp();
    const events: GspEventRecord[] = [];
    raw.client.onEvent((e) => events.push(e));
    const size = GSP_MAX_ELEMENT_PAYLOAD + 5000;
    const call = raw.client.call(GspFunction.GET_GSP_STATIC_INFO, big(size));
    const c = await raw.command();
    await raw.write([{ fn: GspEvent.OS_ERROR_LOG, sequence: 0, payload: pattern(64, 9) }, ...RawGsp.split(c.fn, c.sequence, big(size))]);
    assert.ok(Buffer.from(await call).equals(Buffer.from(big(size))));
    assert.deepEqual(events.map((e) => e.fn), [GspEvent.OS_ERROR_LOG]);
  });

  for (const [name, build, why] of [
    ['a continuation record is missing (the next message begins)', (fn: number, seq: number, p: Uint8Array) =>
      [RawGsp.split(fn, seq, p)[0]!, { fn: GspEvent.POST_EVENT, sequence: 0, payload: pattern(4, 1) }], /began after/],
    ['a continuation record carries more than expected', (fn: number, seq: number, p: Uint8Array) => {
      const parts = RawGsp.split(fn, seq, p);
      parts[1] = { ...parts[1]!, payload: pattern(parts[1]!.payload.length + 64, 3) };
      return parts;
    }, /more than/],
    ['a continuation record of another sequence arrives', (fn: number, seq: number, p: Uint8Array) => {
      const parts = RawGsp.split(fn, seq, p);
      parts[1] = { ...parts[1]!, sequence: seq + 77 };
      return parts;
    }, /sequence/],
  ] as const) {
    it(`${name}: that call fails with FirmwareRpc and the queue reads on`, async () => {
      raw = new RawGsp();
      const size = GSP_MAX_ELEMENT_PAYLOAD + 1000;
      const call = assert.rejects(raw.client.call(GspFunction.GET_GSP_STATIC_INFO, big(size)),
        (e) => isVgpuError(e, ErrorCode.FirmwareRpc) && why.test((e as Error).message));
      const c = await raw.command();
      await raw.write(build(c.fn, c.sequence, big(size)));
      await call;
      // Resynchronised: the next call and its reply go through.
      const next = raw.client.call(GspFunction.NOP, pattern(16, 5));
      const n = await raw.command();
      await raw.write([{ fn: n.fn, sequence: n.sequence, payload: pattern(16, 6) }]);
      assert.deepEqual(await next, pattern(16, 6));
    });
  }

  it('a stray continuation record is dropped and does not disturb the call in flight', async () => {
    raw = new RawGsp();
    const call = raw.client.call(GspFunction.NOP, pattern(16, 1));
    const c = await raw.command();
    await raw.write([{ fn: CONT, sequence: 0, payload: pattern(100, 2) }, { fn: c.fn, sequence: c.sequence, payload: pattern(16, 3) }]);
    assert.deepEqual(await call, pattern(16, 3));
    assert.equal(raw.client.stats.drops, 1);
  });
});
