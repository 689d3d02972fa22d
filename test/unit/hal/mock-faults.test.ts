import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode, isVgpuError, VgpuError } from '../../../core/contracts/exceptions.js';
import { MockHal } from '../../../hal/mock/mock-hal.js';

async function booted() {
  const mock = new MockHal({ devices: [{ bdf: '0000:41:00.0' }] });
  const gpu = await mock.openDevice(undefined, { rpcTimeoutMs: 200 });
  await gpu.firmware.boot({ version: '570.144' });
  const client = await gpu.firmware.allocClient();
  return { mock, gpu, fw: gpu.firmware, client };
}

describe('mock fault injection', () => {
  it('fails exactly the Nth matching call', async () => {
    const { mock, fw, client } = await booted();
    const h = mock.faults.inject({ op: 'firmware.control', nth: 2 });
    await fw.control(client, 1, new Uint8Array(4));
    await assert.rejects(fw.control(client, 1, new Uint8Array(4)), (e) => isVgpuError(e, ErrorCode.FirmwareRpc) && e.details['injected'] === true);
    await fw.control(client, 1, new Uint8Array(4));
    assert.equal(h.seen, 3);
    assert.equal(h.fired, 1);
    const rec = mock.calls.filter((c) => c.op === 'firmware.control');
    assert.deepEqual(rec.map((c) => [c.outcome, c.injected]), [['ok', undefined], ['error', 'fail'], ['ok', undefined]]);
  });

  it('counts only calls that match, and throws the given error', async () => {
    const { mock, fw, client } = await booted();
    const err = new VgpuError(ErrorCode.Busy, 'engine busy');
    mock.faults.inject({ op: 'firmware.control', match: (a) => a['cmd'] === 0x20, error: err, times: 2 });
    await fw.control(client, 0x10, new Uint8Array(4));
    await assert.rejects(fw.control(client, 0x20, new Uint8Array(4)), (e) => e === err);
    await assert.rejects(fw.control(client, 0x20, new Uint8Array(4)), (e) => e === err);
    await fw.control(client, 0x20, new Uint8Array(4));
  });

  it('fails synchronous operations without side effects', async () => {
    const { mock, gpu } = await booted();
    mock.faults.inject({ op: 'memory.reserve' });
    assert.throws(() => gpu.memory.reserve({ size: 4096n, owner: 'v', label: 'guest-fb' }), (e) => isVgpuError(e, ErrorCode.NoSpace));
    assert.equal(gpu.memory.stats().ranges, 0);
    mock.faults.inject({ op: 'channels.alloc', nth: 2 });
    const r = gpu.channels.alloc(4, 'v');
    assert.throws(() => gpu.channels.alloc(4, 'v'), (e) => isVgpuError(e, ErrorCode.NoSpace));
    assert.deepEqual(gpu.channels.list(), [r]);
    assert.throws(() => mock.faults.inject({ op: 'memory.reserve', mode: 'hang' }), (e) => isVgpuError(e, ErrorCode.InvalidArgument));
    assert.throws(() => mock.faults.inject({ op: 'memory.reserv' as 'memory.reserve' }), (e) => isVgpuError(e, ErrorCode.InvalidArgument));
  });

  it('delays a call, and a delay longer than the timeout is a timeout', async () => {
    const { mock, fw, client } = await booted();
    mock.faults.inject({ op: 'firmware.control', mode: 'delay', delayMs: 30 });
    let settled = false;
    const p = fw.control(client, 1, new Uint8Array(4)).then(() => { settled = true; });
    await new Promise((r) => setImmediate(r));
    assert.equal(settled, false, 'not answered before the delay');
    await p;
    mock.faults.inject({ op: 'firmware.control', mode: 'delay', delayMs: 5_000 });
    await assert.rejects(fw.control(client, 1, new Uint8Array(4), { timeoutMs: 20 }), (e) => isVgpuError(e, ErrorCode.RpcTimeout));
  });

  it('turns a hang into a timeout (per-call timeout, GPU default, or signal)', async () => {
    const { mock, fw, client } = await booted();
    mock.faults.inject({ op: 'firmware.rpc', mode: 'hang', times: Infinity });
    await assert.rejects(fw.rpc(76, new Uint8Array(0), { timeoutMs: 20 }), (e) => isVgpuError(e, ErrorCode.RpcTimeout));
    await assert.rejects(fw.rpc(76, new Uint8Array(0)), (e) => isVgpuError(e, ErrorCode.RpcTimeout) && e.details['timeoutMs'] === 200);
    await assert.rejects(fw.rpc(76, new Uint8Array(0), { signal: AbortSignal.timeout(20), timeoutMs: 60_000 }), (e) => isVgpuError(e, ErrorCode.RpcTimeout));
    const ac = new AbortController();
    const p = fw.rpc(76, new Uint8Array(0), { signal: ac.signal, timeoutMs: 60_000 });
    ac.abort();
    await assert.rejects(p, (e) => isVgpuError(e, ErrorCode.Cancelled));
    assert.equal(mock.faults.pendingHangs, 0, 'nothing left waiting');
    void client;
  });

  it('releases hung calls, which then complete normally', async () => {
    const { mock, fw } = await booted();
    mock.faults.inject({ op: 'firmware.allocClient', mode: 'hang' });
    const p = fw.allocClient({ timeoutMs: 60_000 });
    while (mock.faults.pendingHangs === 0) await new Promise((r) => setImmediate(r));
    assert.equal(mock.faults.releaseHangs(), 1);
    const c = await p;
    assert.ok(mock.books().clients.some((x) => x.hClient === c.hClient));
  });

  it('removes a fault with its handle, and reset() clears faults and the call log', async () => {
    const { mock, fw, client } = await booted();
    const h = mock.faults.inject({ op: 'firmware.control', times: Infinity });
    await assert.rejects(fw.control(client, 1, new Uint8Array(4)));
    h.remove();
    await fw.control(client, 1, new Uint8Array(4));
    mock.reset();
    assert.deepEqual(mock.calls, []);
  });
});
