/**
 * Injected GSP faults: each one gives its typed error to the affected caller only, and the client stays usable.
 * Firmware death (crash, stalled heartbeat) fails the call in flight and every caller queued behind it with
 * GpuLost instead of hanging them.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode, isVgpuError, type VgpuError } from '../../../core/contracts/exceptions.js';
import { GSP_MAX_ELEMENT_PAYLOAD, GspFunction, RmStatus } from '../../../hal/gsp/gsp-layout.js';
import { encodeRmControl } from '../../../hal/gsp/rm-payload.js';
import { makeRig, pattern, until, type Rig } from './gsp-harness.js';

const HANG = GspFunction.LOG;

function code(c: ErrorCode) {
  return (e: unknown): boolean => {
    assert.ok(isVgpuError(e, c), `expected ${c}, got ${(e as Error)?.constructor?.name} ${String((e as VgpuError).code)}: ${String(e)}`);
    return true;
  };
}

async function stillWorks(rig: Rig): Promise<void> {
  const p = pattern(300, 42);
  assert.deepEqual(await rig.client.call(GspFunction.NOP, p), p);
}

describe('GSP fault injection', () => {
  let rig: Rig;
  before(async () => {
    rig = await makeRig({ handler: { hangFn: HANG } });
  });
  after(async () => rig.close());

  for (const [status, expected] of [
    [RmStatus.NOT_READY, ErrorCode.Busy],
    [RmStatus.TIMEOUT_RETRY, ErrorCode.Busy],
    [RmStatus.NO_MEMORY, ErrorCode.OutOfMemory],
    [0x1f, ErrorCode.FirmwareRpc],
  ] as const) {
    it(`fails the Nth call of a function with rpc_result 0x${status.toString(16)} → ${expected}`, async () => {
      await rig.gsp!.inject({ kind: 'fail-call', fn: GspFunction.GSP_RM_ALLOC, nth: 2, result: status });
      // Another function does not count towards N.
      await stillWorks(rig);
      assert.deepEqual(await rig.client.call(GspFunction.GSP_RM_ALLOC, pattern(8, 1)), pattern(8, 1));
      await assert.rejects(rig.client.call(GspFunction.GSP_RM_ALLOC, pattern(8, 2)), code(expected));
      assert.deepEqual(await rig.client.call(GspFunction.GSP_RM_ALLOC, pattern(8, 3)), pattern(8, 3));
    });
  }

  it('a dropped reply times out that caller only; the caller queued behind it is answered', async () => {
    await rig.gsp!.inject({ kind: 'drop-reply', fn: GspFunction.GSP_RM_CONTROL });
    const [lost, ok] = await Promise.allSettled([
      rig.client.call(GspFunction.GSP_RM_CONTROL, pattern(16, 1), { timeoutMs: 150 }),
      rig.client.call(GspFunction.NOP, pattern(16, 2), { timeoutMs: 10_000 }),
    ]);
    assert.equal(lost.status, 'rejected');
    code(ErrorCode.RpcTimeout)((lost as PromiseRejectedResult).reason);
    assert.equal(ok.status, 'fulfilled');
    await stillWorks(rig);
  });

  it('a delayed reply past the caller timeout is dropped when it finally arrives', async () => {
    await rig.gsp!.inject({ kind: 'delay-reply', ms: 250, fn: GspFunction.GSP_RM_CONTROL });
    const late0 = rig.client.stats.lateReplies;
    await assert.rejects(rig.client.call(GspFunction.GSP_RM_CONTROL, pattern(16, 3), { timeoutMs: 60 }), code(ErrorCode.RpcTimeout));
    await until(() => rig.client.stats.lateReplies === late0 + 1);
    await stillWorks(rig);
  });

  it('a delayed reply within the timeout still resolves', async () => {
    await rig.gsp!.inject({ kind: 'delay-reply', ms: 40 });
    assert.deepEqual(await rig.client.call(GspFunction.NOP, pattern(9, 9), { timeoutMs: 3000 }), pattern(9, 9));
  });

  it('a corrupted reply element rejects its caller with Checksum', async () => {
    await rig.gsp!.inject({ kind: 'corrupt-next-element' });
    await assert.rejects(rig.client.call(GspFunction.NOP, pattern(64, 4)), code(ErrorCode.Checksum));
    assert.ok(rig.client.stats.drops >= 1);
    await stillWorks(rig);
  });

  it('a corrupted command element is refused by the firmware with a bad-checksum result', async () => {
    rig.client.injectQueueError();
    await assert.rejects(rig.client.call(GspFunction.NOP, pattern(64, 5)), code(ErrorCode.Checksum));
    const stats = await rig.gsp!.stats();
    assert.ok(stats.drops >= 1, 'the firmware counted the dropped element');
    await stillWorks(rig);
  });

  it('a corrupted first element of a split reply drops the whole message for that caller only', async () => {
    await rig.gsp!.inject({ kind: 'corrupt-next-element' });
    await assert.rejects(rig.client.call(GspFunction.GET_GSP_STATIC_INFO, pattern(200 * 1024, 6)), code(ErrorCode.Checksum));
    const big = pattern(150 * 1024, 7);
    assert.ok(Buffer.from(await rig.client.call(GspFunction.GET_GSP_STATIC_INFO, big)).equals(Buffer.from(big)));
  });

  it('an aborted call rejects with Cancelled, the next one goes out, and the late reply is dropped', async () => {
    await rig.gsp!.inject({ kind: 'delay-reply', ms: 200, fn: GspFunction.GET_STATIC_INFO });
    const late0 = rig.client.stats.lateReplies;
    const ac = new AbortController();
    const p = rig.client.call(GspFunction.GET_STATIC_INFO, pattern(4, 1), { signal: ac.signal });
    const next = rig.client.call(GspFunction.NOP, pattern(4, 2));
    await until(async () => ((await rig.gsp!.stats()).requestsByFn[GspFunction.GET_STATIC_INFO] ?? 0) >= 1);
    ac.abort();
    await assert.rejects(p, code(ErrorCode.Cancelled));
    // The firmware is still busy with the aborted call; the next one waits its turn, then gets its own reply.
    assert.deepEqual(await next, pattern(4, 2));
    assert.equal(rig.client.stats.lateReplies, late0 + 1);
    assert.equal(rig.client.inFlight, 0);
  });

  it('a call queued behind a slow one times out from when it was made, without ever being sent', async () => {
    await rig.gsp!.inject({ kind: 'delay-reply', ms: 300, fn: GspFunction.GET_STATIC_INFO });
    const slow = rig.client.call(GspFunction.GET_STATIC_INFO, pattern(4, 1), { timeoutMs: 10_000 });
    const before = (await rig.gsp!.stats()).requestsByFn[GspFunction.UNMAP_MEMORY] ?? 0;
    await assert.rejects(rig.client.call(GspFunction.UNMAP_MEMORY, pattern(4, 2), { timeoutMs: 50 }),
      (e) => code(ErrorCode.RpcTimeout)(e) && (e as VgpuError).details.sent === false);
    assert.deepEqual(await slow, pattern(4, 1));
    await stillWorks(rig);
    assert.equal((await rig.gsp!.stats()).requestsByFn[GspFunction.UNMAP_MEMORY] ?? 0, before, 'the firmware never saw it');
  });
});

describe('GSP death', () => {
  it('a crash fails the call in flight and every caller queued behind it with GpuLost, and later calls at once', async () => {
    const rig = await makeRig({ handler: { hangFn: HANG }, client: { timeoutMs: 30_000 } });
    try {
      const lostEvents: VgpuError[] = [];
      rig.client.onLost((e) => lostEvents.push(e));
      const inFlight = Array.from({ length: 5 }, (_, i) => rig.client.call(HANG, pattern(32, i)));
      const settled = Promise.allSettled(inFlight);
      await until(async () => ((await rig.gsp!.stats()).requestsByFn[HANG] ?? 0) >= 1);
      assert.equal(rig.client.inFlight, 1);
      assert.equal(rig.client.queued, 4, 'one call reached the firmware, four wait on the host');
      await rig.gsp!.crash(7);
      const results = await settled;
      for (const r of results) {
        assert.equal(r.status, 'rejected');
        code(ErrorCode.GpuLost)((r as PromiseRejectedResult).reason);
      }
      assert.equal(lostEvents.length, 1);
      assert.equal(lostEvents[0]!.details.crashReason, 7);
      await assert.rejects(rig.client.call(GspFunction.NOP, new Uint8Array(4)), code(ErrorCode.GpuLost));
    } finally {
      await rig.close();
    }
  });

  it('a firmware that stops beating (thread killed, no crash record) fails callers with GpuLost', async () => {
    const rig = await makeRig({ handler: { hangFn: HANG }, heartbeatMs: 20, client: { timeoutMs: 30_000, heartbeatTimeoutMs: 300 } });
    try {
      const inFlight = Promise.allSettled([rig.client.call(HANG, pattern(8, 1)), rig.client.call(HANG, pattern(8, 2))]);
      await until(async () => ((await rig.gsp!.stats()).requestsByFn[HANG] ?? 0) >= 1);
      await rig.gsp!.terminate();
      for (const r of await inFlight) {
        assert.equal(r.status, 'rejected');
        code(ErrorCode.GpuLost)((r as PromiseRejectedResult).reason);
      }
    } finally {
      await rig.close();
    }
  });

  it('a command larger than the free queue fails with Busy after the space timeout; the firmware drops the torn part and serves on', async () => {
    const rig = await makeRig({ startGsp: false, client: { spaceTimeoutMs: 100, timeoutMs: 10_000 } });
    try {
      // 5 elements of up to 16 pages; the 62 free slots take three, then nobody drains the queue.
      const params = pattern(4 * GSP_MAX_ELEMENT_PAYLOAD, 1);
      await assert.rejects(rig.client.call(GspFunction.GSP_RM_CONTROL, encodeRmControl({ hClient: 1, hObject: 2, cmd: 0x20800101, params })),
        code(ErrorCode.Busy));
      await rig.start();
      // The next command begins before the torn one is complete: the firmware refuses the torn one (its answer is
      // a late reply here) and answers the next.
      await stillWorks(rig);
      const stats = await rig.gsp!.stats();
      assert.ok(stats.drops >= 1, 'the firmware dropped the incomplete command');
      assert.equal(stats.repliesByFn[GspFunction.GSP_RM_CONTROL], 1, 'and answered it with an error, once');
      await until(() => rig.client.stats.lateReplies === 1);
    } finally {
      await rig.close();
    }
  });
});
