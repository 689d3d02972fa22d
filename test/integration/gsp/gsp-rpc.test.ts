/**
 * GSP transport over shared memory: host client on the main thread, simulated GSP in a worker thread.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode, isVgpuError, type VgpuError } from '../../../core/contracts/exceptions.js';
import { GSP_MAX_ELEMENT_PAYLOAD, GspEvent, GspFunction, GspFwState } from '../../../hal/gsp/gsp-layout.js';
import { RM_CONTROL_HEADER_SIZE, rmControl } from '../../../hal/gsp/rm-payload.js';
import type { GspEvent as GspEventRecord } from '../../../hal/gsp/gsp-rpc-client.js';
import { makeRig, pattern, type Rig } from './gsp-harness.js';

describe('GSP RPC round trips', () => {
  let rig: Rig;
  before(async () => {
    rig = await makeRig({ handler: { rmStatus: { 0x20800110: 0x55, 0x20800111: 0x51, 0x20800112: 0x1f } } });
  });
  after(async () => rig.close());

  it('boots the firmware and answers a small RPC with its own payload', async () => {
    assert.equal(rig.client.fwState, GspFwState.Running);
    const req = pattern(100, 1);
    const reply = await rig.client.call(GspFunction.GET_GSP_STATIC_INFO, req);
    assert.deepEqual(reply, req);
    const empty = await rig.client.call(GspFunction.NOP, new Uint8Array(0));
    assert.equal(empty.length, 0);
  });

  for (const size of [100 * 1024, 1024 * 1024]) {
    it(`carries a ${size / 1024} KiB payload in continuation records both ways`, async () => {
      const req = pattern(size, size);
      const before = rig.client.stats.elementsSent;
      const reply = await rig.client.call(GspFunction.GET_GSP_STATIC_INFO, req);
      assert.equal(reply.length, size);
      assert.ok(Buffer.from(reply).equals(Buffer.from(req)), 'reply bytes equal the request bytes');
      // More than one element each way: it really was split.
      assert.ok(rig.client.stats.elementsSent - before > 1);
    });
  }

  // 200 KiB of params, and params that make the message an exact multiple of one element: then only the size the
  // RM control header declares tells either reader where the message ends.
  for (const paramsSize of [200 * 1024, 2 * GSP_MAX_ELEMENT_PAYLOAD - RM_CONTROL_HEADER_SIZE]) {
    it(`splits an RM control with ${paramsSize} bytes of params both ways (request and reply)`, async () => {
      const params = pattern(paramsSize, paramsSize);
      const sent0 = rig.client.stats.elementsSent;
      const got0 = rig.client.stats.elementsReceived;
      const out = await rmControl(rig.client, { hClient: 0xc1d00001, hObject: 0x5c000001, cmd: 0x20800101, params });
      assert.ok(Buffer.from(out).equals(Buffer.from(params)), 'the reply params equal the request params');
      const elements = Math.ceil((RM_CONTROL_HEADER_SIZE + paramsSize) / GSP_MAX_ELEMENT_PAYLOAD);
      assert.equal(rig.client.stats.elementsSent - sent0, elements);
      assert.equal(rig.client.stats.elementsReceived - got0, elements);
      assert.equal((await rig.gsp!.stats()).sequenceErrors, 0, 'each continuation record took the next RPC sequence');
    });
  }

  it('sends RM controls through the codec and maps RM status to typed errors', async () => {
    const params = pattern(48, 7);
    const out = await rmControl(rig.client, { hClient: 0xc1d00001, hObject: 0x5c000001, cmd: 0x20800101, params });
    assert.deepEqual(out, params);
    const expect = async (cmd: number, code: ErrorCode) => {
      await assert.rejects(rmControl(rig.client, { hClient: 1, hObject: 2, cmd, params }), (e: unknown) => {
        assert.ok(isVgpuError(e, code), `cmd 0x${cmd.toString(16)} → ${code}, got ${String(e)}`);
        assert.equal(typeof (e as VgpuError).details.rmStatus, "number");
        return true;
      });
    };
    await expect(0x20800110, ErrorCode.Busy);
    await expect(0x20800111, ErrorCode.OutOfMemory);
    await expect(0x20800112, ErrorCode.FirmwareRpc);
  });

  it('answers a handler that throws with a failed call, and keeps serving', async () => {
    // The fixture decodes GSP_RM_CONTROL payloads; 10 bytes cannot be one, so the handler throws.
    await assert.rejects(rig.client.call(GspFunction.GSP_RM_CONTROL, new Uint8Array(10)), (e) => isVgpuError(e, ErrorCode.FirmwareRpc));
    assert.deepEqual(await rig.client.call(GspFunction.NOP, pattern(5, 5)), pattern(5, 5));
  });

  it('refuses to call an event, a continuation record, a number past r570\'s NUM_FUNCTIONS, or a boot RPC GSP-RM never answers', async () => {
    const einval = (e: unknown): boolean => isVgpuError(e, ErrorCode.InvalidArgument);
    await assert.rejects(rig.client.call(GspEvent.RC_TRIGGERED, new Uint8Array(0)), einval);
    await assert.rejects(rig.client.call(GspFunction.CONTINUATION_RECORD, new Uint8Array(0)), einval);
    await assert.rejects(rig.client.call(GspFunction.NUM_FUNCTIONS, new Uint8Array(0)), einval);
    await assert.rejects(rig.client.call(GspFunction.SET_REGISTRY, new Uint8Array(4)), (e) => einval(e) && /send\(\)/.test((e as VgpuError).hint));
    await assert.rejects(rig.client.send(GspFunction.GSP_RM_CONTROL, new Uint8Array(4)), (e) => einval(e) && /call\(\)/.test((e as VgpuError).hint));
    assert.deepEqual(await rig.client.call(GspFunction.CTRL_EXEC_PARTITIONS_EXPORT, pattern(8, 1)), pattern(8, 1), '226, the last r570 function, is callable');
  });
});

describe('GSP RPC storm', () => {
  it('routes 4,000 RPCs from 8 concurrent callers to their own callers, one at a time, with interleaved events', async () => {
    const EVERY = 7;
    const rig = await makeRig({ handler: { eventEvery: EVERY } });
    try {
      const events: GspEventRecord[] = [];
      rig.client.onEvent((e) => events.push(e));
      const CALLERS = 8;
      const PER = 500;
      let mismatches = 0;
      const caller = async (id: number): Promise<void> => {
        for (let i = 0; i < PER; i++) {
          // caller id + index, then a tail whose length varies so elements of 1 and 2 pages mix
          const len = 8 + ((id * 131 + i * 17) % 5000);
          const req = pattern(len, id * 100000 + i);
          const v = new DataView(req.buffer);
          v.setUint32(0, id, true);
          v.setUint32(4, i, true);
          const reply = await rig.client.call(GspFunction.GSP_RM_CONTROL, req);
          const rv = new DataView(reply.buffer, reply.byteOffset, reply.byteLength);
          if (rv.getUint32(0, true) !== id || rv.getUint32(4, true) !== i || !Buffer.from(reply).equals(Buffer.from(req))) mismatches++;
        }
      };
      await Promise.all(Array.from({ length: CALLERS }, (_, id) => caller(id)));
      assert.equal(mismatches, 0, 'every reply reached the caller that sent it');
      const total = CALLERS * PER;
      // Each event is queued before the reply that triggered it, so all of them are here by now.
      assert.equal(events.length, Math.floor(total / EVERY));
      assert.ok(events.every((e, k) => e.fn === GspEvent.POST_EVENT && new DataView(e.payload.buffer, e.payload.byteOffset).getUint32(0, true) === k + 1),
        'events arrive once each, in order');
      assert.equal(rig.client.stats.lateReplies, 0);
      assert.equal(rig.client.inFlight, 0);
      // One RPC outstanding per queue pair: the callers queued on the host, the firmware never held two.
      assert.ok(rig.client.stats.maxQueued >= CALLERS - 1, `callers queued behind the call in flight (max ${rig.client.stats.maxQueued})`);
      const gs = await rig.gsp!.stats();
      assert.equal(gs.maxOutstanding, 1);
      assert.equal(gs.sequenceErrors, 0, 'RPC sequences arrived in order');
    } finally {
      await rig.close();
    }
  });
});
