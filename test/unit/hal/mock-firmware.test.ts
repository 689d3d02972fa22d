import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode, isVgpuError } from '../../../core/contracts/exceptions.js';
import type { FirmwareEventRecord } from '../../../core/contracts/events.js';
import { MockHal } from '../../../hal/mock/mock-hal.js';
import { MOCK_EVENT } from '../../../hal/mock/mock-firmware.js';

async function booted(opts: { firmwareVersion?: string } = {}) {
  const mock = new MockHal({ devices: [{ bdf: '0000:41:00.0', ...opts }] });
  const gpu = await mock.openDevice();
  await gpu.firmware.boot({ version: '570.144' });
  return { mock, gpu, fw: gpu.firmware };
}

describe('MockFirmware', () => {
  it('boots, reports init done, and emits GSP_INIT_DONE', async () => {
    const mock = new MockHal({ devices: [{ bdf: '0000:41:00.0' }] });
    const gpu = await mock.openDevice();
    const seen: string[] = [];
    gpu.firmware.onEvent((e) => seen.push(e.name));
    assert.equal(gpu.firmware.state, 'off');
    const info = await gpu.firmware.boot({ version: '575.10' });
    assert.deepEqual(info, { version: '575.10', initDone: true });
    assert.equal(gpu.firmware.state, 'running');
    assert.deepEqual(seen, ['GSP_INIT_DONE']);
    await assert.rejects(gpu.firmware.boot({ version: '575.10' }), (e) => isVgpuError(e, ErrorCode.IllegalState));
  });

  it('refuses firmware below the floor (image or reported version)', async () => {
    const mock = new MockHal({ devices: [{ bdf: '0000:41:00.0' }, { bdf: '0000:42:00.0', firmwareVersion: '535.113.01' }] });
    const a = await mock.openDevice('0000:41:00.0');
    await assert.rejects(a.firmware.boot({ version: '535.113.01' }), (e) => isVgpuError(e, ErrorCode.FirmwareTooOld) && /570\.144/.test(e.hint));
    assert.equal(a.firmware.state, 'off');
    const b = await mock.openDevice('0000:42:00.0');
    await assert.rejects(b.firmware.boot({ version: '570.144' }), (e) => isVgpuError(e, ErrorCode.FirmwareTooOld));
    await assert.rejects(a.firmware.boot({ version: 'latest' }), (e) => isVgpuError(e, ErrorCode.InvalidArgument));
  });

  it('allocates clients with monotonically increasing handles and frees them idempotently', async () => {
    const { fw, mock } = await booted();
    const c1 = await fw.allocClient();
    const c2 = await fw.allocClient();
    const handles = [c1.hClient, c1.hDevice, c1.hSubdevice, c2.hClient, c2.hDevice, c2.hSubdevice];
    assert.deepEqual(handles, [...handles].sort((x, y) => x - y));
    assert.equal(new Set(handles).size, 6);
    await fw.freeClient(c1);
    await fw.freeClient(c1);
    assert.deepEqual(mock.books().clients, [c2]);
    await assert.rejects(fw.control(c1, 0x20800101, new Uint8Array(8)), (e) => isVgpuError(e, ErrorCode.NotFound));
  });

  it('answers controls from the handler table, zeroed by default', async () => {
    const { fw } = await booted();
    const c = await fw.allocClient();
    const out = await fw.control(c, 0x2080_0101, Uint8Array.from([9, 9, 9, 9]));
    assert.deepEqual([...out], [0, 0, 0, 0]);
    const off = fw.onControl(0x2080_0101, (p) => { p[0] = p[0]! + 1; });
    const given = Uint8Array.from([1, 2, 3, 4]);
    assert.deepEqual([...(await fw.control(c, 0x2080_0101, given))], [2, 2, 3, 4]);
    assert.deepEqual([...given], [1, 2, 3, 4], "the caller's block is not modified");
    fw.onControl(0x2080_0102, () => ({ status: 0x1f }));
    await assert.rejects(fw.control(c, 0x2080_0102, new Uint8Array(4)), (e) => isVgpuError(e, ErrorCode.FirmwareRpc) && e.details['rmStatus'] === 0x1f);
    fw.onControl(0x2080_0103, () => new Uint8Array(2));
    await assert.rejects(fw.control(c, 0x2080_0103, new Uint8Array(4)), (e) => isVgpuError(e, ErrorCode.Internal));
    off();
    assert.deepEqual([...(await fw.control(c, 0x2080_0101, given))], [0, 0, 0, 0]);
  });

  it('answers raw RPCs (echo by default) and refuses them before boot', async () => {
    const mock = new MockHal({ devices: [{ bdf: '0000:41:00.0' }] });
    const gpu = await mock.openDevice();
    await assert.rejects(gpu.firmware.rpc(76, new Uint8Array(4)), (e) => isVgpuError(e, ErrorCode.IllegalState));
    await gpu.firmware.boot({ version: '570.144' });
    assert.deepEqual([...(await gpu.firmware.rpc(0, Uint8Array.from([5, 6])))], [5, 6]);
    gpu.firmware.onRpc(51, async () => Uint8Array.from([42]));
    assert.deepEqual([...(await gpu.firmware.rpc(51, new Uint8Array(0)))], [42]);
  });

  it('delivers events to listeners (isolated) and to async streams, which end on shutdown', async () => {
    const { fw, gpu } = await booted();
    const got: FirmwareEventRecord[] = [];
    fw.onEvent(() => { throw new Error('listener bug'); });
    fw.onEvent((e) => got.push(e));
    const streamed: string[] = [];
    const reader = (async () => { for await (const e of fw.events()) streamed.push(e.name); })();
    fw.emitEvent({ eventId: 0x1004, name: 'RC_TRIGGERED', gfid: 3 });
    fw.emitEvent({ eventId: 0x1006, name: 'OS_ERROR_LOG' });
    assert.deepEqual(got.map((e) => [e.name, e.gfid, e.gpu]), [['RC_TRIGGERED', 3, gpu.bdf], ['OS_ERROR_LOG', undefined, gpu.bdf]]);
    await fw.shutdown();
    await reader;
    assert.deepEqual(streamed, ['RC_TRIGGERED', 'OS_ERROR_LOG']);
  });

  it('ends an event stream when its signal aborts', async () => {
    const { fw } = await booted();
    const ac = new AbortController();
    const reader = (async () => { const n: string[] = []; for await (const e of fw.events(ac.signal)) n.push(e.name); return n; })();
    fw.emitEvent({ eventId: 1, name: 'A' });
    await new Promise((r) => setImmediate(r));
    ac.abort();
    assert.deepEqual(await reader, ['A']);
  });

  it('keeps per-gfid log buffers the test can append to', async () => {
    const { fw } = await booted();
    fw.appendLog('vgpu-task', 2, 'hello ');
    fw.appendLog('vgpu-task', 2, 'world');
    fw.appendLog('gsp', 0, 'gsp line');
    assert.equal(Buffer.from(fw.readLog('vgpu-task', 2)).toString(), 'hello world');
    assert.equal(fw.readLog('vgpu-task', 3).length, 0);
    assert.equal(Buffer.from(fw.readLog('gsp')).toString(), 'gsp line');
  });

  it('crash() rejects in-flight calls with GpuLost, emits GPU_LOST, and fails later calls', async () => {
    const { mock, fw, gpu } = await booted();
    const c = await fw.allocClient();
    const lost: FirmwareEventRecord[] = [];
    fw.onEvent((e) => { if (e.name === MOCK_EVENT.GPU_LOST.name) lost.push(e); });
    mock.faults.inject({ op: 'firmware.control', mode: 'hang' });
    const pending = fw.control(c, 0x1, new Uint8Array(4), { timeoutMs: 10_000 });
    while (mock.faults.pendingHangs === 0) await new Promise((r) => setImmediate(r));
    gpu.crash('double bit error');
    await assert.rejects(pending, (e) => isVgpuError(e, ErrorCode.GpuLost));
    assert.equal(fw.state, 'crashed');
    assert.equal(lost.length, 1);
    assert.equal(Buffer.from(lost[0]!.payload).toString(), 'double bit error');
    await assert.rejects(fw.allocClient(), (e) => isVgpuError(e, ErrorCode.GpuLost));
    assert.deepEqual(mock.books().clients, [], 'the firmware forgot its clients');
    mock.faults.releaseHangs();
    await fw.boot({ version: '570.144' });
    assert.equal(fw.state, 'running', 'a crashed GSP can be booted again');
  });
});
