/**
 * The RPC discipline real GSP-RM clients keep, seen from outside: one call in the command queue at a time with the
 * others waiting their turn on the host, events delivered while a call waits, and the boot's asynchronous RPCs
 * written without a reply being awaited — and none sent by the simulated GSP.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { GspEvent, GspFunction, GspRegion, QueueHeader } from '../../../hal/gsp/gsp-layout.js';
import type { GspEvent as GspEventRecord } from '../../../hal/gsp/gsp-rpc-client.js';
import { makeRig, pattern, until } from './gsp-harness.js';

/** One turn of the event loop: every queued microtask (the sender's publish among them) has run. */
const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('GSP RPC discipline', () => {
  it('writes one call into the command queue at a time; the rest wait on the host and go out in call order', async () => {
    const rig = await makeRig({ startGsp: false });
    try {
      const order: number[] = [];
      const calls = [0, 1, 2].map((i) => rig.client.call(GspFunction.NOP, pattern(64, i)).then((r) => { order.push(i); return r; }));
      await turn();
      assert.equal(rig.client.view.load(GspRegion.CMDQ + QueueHeader.WRITE_PTR), 1, 'one element in the command queue');
      assert.equal(rig.client.inFlight, 1);
      assert.equal(rig.client.queued, 2);
      await rig.start();
      const replies = await Promise.all(calls);
      replies.forEach((r, i) => assert.deepEqual(r, pattern(64, i)));
      assert.deepEqual(order, [0, 1, 2]);
      assert.equal((await rig.gsp!.stats()).maxOutstanding, 1, 'the firmware never held two commands');
    } finally {
      await rig.close();
    }
  });

  it('delivers firmware events while a call waits for its reply', async () => {
    const rig = await makeRig();
    try {
      const events: GspEventRecord[] = [];
      const three = new Promise<void>((resolve) => rig.client.onEvent((e) => { events.push(e); if (events.length === 3) resolve(); }));
      await rig.gsp!.inject({ kind: 'delay-reply', ms: 400, fn: GspFunction.GET_STATIC_INFO });
      let settled = false;
      const call = rig.client.call(GspFunction.GET_STATIC_INFO, pattern(16, 1)).finally(() => { settled = true; });
      await until(async () => ((await rig.gsp!.stats()).requestsByFn[GspFunction.GET_STATIC_INFO] ?? 0) >= 1);
      for (const fn of [GspEvent.RC_TRIGGERED, GspEvent.MMU_FAULT_QUEUED, GspEvent.OS_ERROR_LOG]) await rig.gsp!.postEvent(fn, pattern(8, fn), 3);
      await three;
      assert.equal(settled, false, 'the events arrived while the call was still waiting');
      assert.deepEqual(events.map((e) => [e.fn, e.gfid]), [[GspEvent.RC_TRIGGERED, 3], [GspEvent.MMU_FAULT_QUEUED, 3], [GspEvent.OS_ERROR_LOG, 3]]);
      assert.deepEqual(await call, pattern(16, 1));
    } finally {
      await rig.close();
    }
  });

  it('sends GSP_SET_SYSTEM_INFO and SET_REGISTRY without awaiting a reply; the simulated GSP sends none', async () => {
    const rig = await makeRig();
    try {
      await rig.client.send(GspFunction.GSP_SET_SYSTEM_INFO, pattern(64, 1));
      await rig.client.send(GspFunction.SET_REGISTRY, pattern(72, 2));
      // A call after them is answered, and nothing else comes back: no reply to either boot RPC.
      assert.deepEqual(await rig.client.call(GspFunction.NOP, pattern(8, 3)), pattern(8, 3));
      const s = await rig.gsp!.stats();
      assert.equal(s.requestsByFn[GspFunction.GSP_SET_SYSTEM_INFO], 1);
      assert.equal(s.requestsByFn[GspFunction.SET_REGISTRY], 1);
      assert.equal(s.repliesByFn[GspFunction.GSP_SET_SYSTEM_INFO], undefined);
      assert.equal(s.repliesByFn[GspFunction.SET_REGISTRY], undefined);
      assert.equal(s.unanswered, 2);
      assert.equal(rig.client.stats.asyncSent, 2);
      assert.equal(rig.client.stats.unexpected, 0);
      assert.equal(rig.client.stats.lateReplies, 0);
    } finally {
      await rig.close();
    }
  });
  it('a configured spin looks for the replies of sequential calls (each caller waits between calls), and only then', async () => {
    // A generous budget: what is checked is that the client spins for replies at all — the receive loop is asleep
    // by the time a sequential caller sends its next call, so it must be woken to spin — not how often it catches one.
    for (const spinUs of [2000, 0]) {
      const rig = await makeRig({ client: { spinUs } });
      try {
        for (let i = 0; i < 20; i++) assert.deepEqual(await rig.client.call(GspFunction.NOP, pattern(32, i)), pattern(32, i));
        const { hits, misses } = rig.client.spin;
        if (spinUs > 0) assert.ok(hits + misses >= 1, `spun ${hits + misses} times over 20 calls`);
        else assert.equal(hits + misses, 0, 'a zero budget never spins');
        assert.equal((await rig.gsp!.stats()).maxOutstanding, 1, 'still one call in the firmware at a time');
      } finally {
        await rig.close();
      }
    }
  });
  it('work a handler defers (a plugin task starting after BOOTLOAD) runs after its reply is out and before the next command', async () => {
    const rig = await makeRig({ handler: { deferFn: GspFunction.GET_STATIC_INFO } });
    try {
      const ran = new Promise<[number, number]>((resolve) => rig.client.onEvent((e) => {
        const v = new DataView(e.payload.buffer, e.payload.byteOffset);
        resolve([v.getUint32(0, true), v.getUint32(4, true)]);
      }));
      const before = await rig.gsp!.stats();
      // Two calls queued at once: the second is written as soon as the first is answered.
      const [a, b] = await Promise.all([rig.client.call(GspFunction.GET_STATIC_INFO, pattern(16, 1)), rig.client.call(GspFunction.NOP, pattern(16, 2))]);
      assert.deepEqual([a, b], [pattern(16, 1), pattern(16, 2)]);
      const [replies, requests] = await ran;
      assert.equal(replies, before.replies + 1, 'the deferring call had been answered when the work ran');
      assert.equal(requests, before.requests + 1, 'the next command had not been taken yet');
    } finally {
      await rig.close();
    }
  });
});
