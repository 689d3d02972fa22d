import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode, isVgpuError } from '../../../core/contracts/exceptions.js';
import type { FirmwareEventRecord } from '../../../core/contracts/events.js';
import { MockHal } from '../../../hal/mock/mock-hal.js';
import { emptyBooks } from '../../../hal/mock/mock-gpu.js';
import { CE, methodHeader } from '../../../hal/mock/ce-pushbuf-decoder.js';
import type { CopyChannel } from '../../../core/contracts/channels.js';

const MiB = 1n << 20n;

async function booted() {
  const mock = new MockHal({ devices: [{ bdf: '0000:41:00.0', channels: 64 }] });
  const gpu = await mock.openDevice();
  await gpu.firmware.boot({ version: '570.144' });
  return { mock, gpu };
}

/**
 * The scrub's pushbuffer (docs/reference/copy-engine-scrub.md step 7): memset `bytes` at `dstVa` to 0x`value`, then
 * release a semaphore.
 */
function emitMemset(ch: CopyChannel, dstVa: bigint, bytes: number, value: number, semVa: bigint): void {
  const m = (method: number, ...data: number[]): number[] => [methodHeader(4, method, data.length), ...data];
  const dwords = [
    ...new Array(32).fill(0),
    methodHeader(0, CE.SET_OBJECT, 1), ch.objectHandle,
    ...m(CE.SET_REMAP_CONST_A, value), ...m(CE.SET_REMAP_COMPONENTS, 0x30004),
    ...m(CE.OFFSET_OUT_UPPER, Number(dstVa >> 32n), Number(dstVa & 0xffffffffn)),
    ...m(CE.PITCH_IN, bytes, bytes, bytes / 4, 1),
    ...m(CE.LAUNCH_DMA, 0x785),
    ...m(CE.SEMAPHORE_A, Number(semVa >> 32n), Number(semVa & 0xffffffffn), 0xdeadbeef),
    ...m(CE.LAUNCH_DMA, 0x5cc),
  ];
  ch.begin(dwords.length);
  for (const d of dwords) ch.emit(d);
}

describe('mock channels', () => {
  it('runs a scrub-style memset + semaphore and signals completion with FIFO_NONSTALL for the CHID', async () => {
    const { mock, gpu } = await booted();
    const chids = gpu.channels.alloc(8, 'vgpu-1');
    const fb = gpu.memory.reserve({ size: 4n * MiB, align: 2n * MiB, owner: 'vgpu-1', label: 'guest-fb' });
    const sem = gpu.memory.reserve({ size: 4096n, owner: 'scrub', label: 'semaphore' });
    const fbMap = gpu.memory.map(fb);
    fbMap.write(4096, Buffer.from('tenant secret'));
    const semMap = gpu.memory.map(sem);
    const ch = await gpu.channels.allocCopyChannel(chids.offset + chids.count - 1, 'scrub');
    const fbVa = ch.mapMemory(fb, { hugePage: true, compressibleDisable: true });
    const semVa = ch.mapMemory(sem);
    assert.equal(fbVa % (2n * MiB), 0n, 'huge-page mappings are 2 MiB aligned');

    const nonstall = new Promise<FirmwareEventRecord>((resolve) => {
      const off = gpu.firmware.onEvent((e) => { if (e.name === 'FIFO_NONSTALL') { off(); resolve(e); } });
    });
    emitMemset(ch, fbVa, Number(fb.size), 0, semVa);
    await ch.submit();
    const e = await nonstall;
    assert.equal(new DataView(e.payload.buffer, e.payload.byteOffset).getUint32(0, true), ch.chid);
    assert.equal(semMap.read(0, 4).readUInt32LE(0), 0xdeadbeef, 'semaphore released');
    assert.equal(fbMap.read(4096, 13).every((b) => b === 0), true, 'FB scrubbed');
    assert.equal(gpu.channels.submissions.length, 1);
    assert.equal(gpu.channels.submissions[0]!.dwords[0], 0, 'the pushbuffer was recorded as emitted');

    ch.unmapMemory(fbVa);
    ch.unmapMemory(semVa);
    await ch.free();
    await ch.free(); // idempotent
    gpu.memory.free(sem);
    gpu.memory.free(fb);
    gpu.channels.free(chids);
    await gpu.firmware.shutdown();
    assert.deepEqual(mock.books(), emptyBooks());
  });

  it('writes a non-zero memset pattern', async () => {
    const { gpu } = await booted();
    const chids = gpu.channels.alloc(2, 'v');
    const fb = gpu.memory.reserve({ size: 64n * 1024n, owner: 'v', label: 'guest-fb' });
    const ch = await gpu.channels.allocCopyChannel(chids.offset + 1, 'scrub');
    const va = ch.mapMemory(fb);
    const semVa = ch.mapMemory(fb, { offset: 60n * 1024n, size: 4096n });
    emitMemset(ch, va, 4096, 0xa5a5a5a5, semVa);
    await ch.submit();
    assert.ok((await gpu.channels.submissions[0]!.done) !== undefined);
    assert.equal(gpu.memory.map(fb).read(4092, 4).readUInt32LE(0), 0xa5a5a5a5);
    assert.equal(gpu.memory.map(fb).read(4096, 4).readUInt32LE(0), 0, 'only the first line');
  });

  it('raises RC_TRIGGERED instead of non-stall when the pushbuffer touches an unmapped VA', async () => {
    const { gpu } = await booted();
    const chids = gpu.channels.alloc(1, 'v');
    const ch = await gpu.channels.allocCopyChannel(chids.offset, 'scrub');
    const names: string[] = [];
    gpu.firmware.onEvent((e) => names.push(e.name));
    emitMemset(ch, 0x5000_0000_0n, 4096, 0, 0x6000_0000_0n);
    await ch.submit();
    await gpu.channels.submissions[0]!.done;
    assert.deepEqual(names, ['RC_TRIGGERED']);
    assert.match(gpu.channels.submissions[0]!.error ?? '', /not mapped/);
  });

  it('enforces begin/emit accounting and one copy channel per CHID', async () => {
    const { mock, gpu } = await booted();
    const chids = gpu.channels.alloc(2, 'v');
    const ch = await gpu.channels.allocCopyChannel(chids.offset, 'scrub');
    assert.throws(() => ch.emit(0), (e) => isVgpuError(e, ErrorCode.IllegalState));
    assert.throws(() => ch.begin(ch.pushbufDwords + 1), (e) => isVgpuError(e, ErrorCode.NoSpace));
    await assert.rejects(gpu.channels.allocCopyChannel(chids.offset, 'other'), (e) => isVgpuError(e, ErrorCode.Busy));
    await assert.rejects(gpu.channels.allocCopyChannel(40, 'other'), (e) => isVgpuError(e, ErrorCode.NotFound));
    assert.throws(() => ch.unmapMemory(0x1234n), (e) => isVgpuError(e, ErrorCode.NotFound));
    assert.equal(mock.books().copyChannels.length, 1);
    await gpu.close();
    assert.deepEqual(mock.books(), emptyBooks(), 'close frees everything');
  });

  it('refuses a copy channel before boot and a submit after a crash', async () => {
    const mock = new MockHal({ devices: [{ bdf: '0000:41:00.0' }] });
    const gpu = await mock.openDevice();
    const chids = gpu.channels.alloc(1, 'v');
    await assert.rejects(gpu.channels.allocCopyChannel(chids.offset, 's'), (e) => isVgpuError(e, ErrorCode.IllegalState));
    await gpu.firmware.boot({ version: '570.144' });
    const ch = await gpu.channels.allocCopyChannel(chids.offset, 's');
    gpu.crash();
    await assert.rejects(ch.submit(), (e) => isVgpuError(e, ErrorCode.GpuLost));
  });
});
