import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode, isVgpuError } from '../../../core/contracts/exceptions.js';
import { MockHal } from '../../../hal/mock/mock-hal.js';
import { SparseByteStore } from '../../../hal/mock/sparse-byte-store.js';

const MiB = 1n << 20n;

describe('SparseByteStore', () => {
  it('costs nothing until written, then one chunk per touched MiB', () => {
    const s = new SparseByteStore(48n << 30n);
    assert.equal(s.read(40n << 30n, 16).every((b) => b === 0), true, 'unwritten reads are zero');
    assert.equal(s.committedBytes(), 0n);
    s.window(47n << 30n, 4).writeUInt32LE(0x12345678);
    assert.equal(s.committedBytes(), MiB);
    assert.equal(s.read(47n << 30n, 4).readUInt32LE(0), 0x12345678);
  });

  it('merges chunks for a window that spans them, keeping their contents', () => {
    const s = new SparseByteStore(16n * MiB);
    s.window(MiB - 2n, 1)[0] = 0xaa; // chunk 0
    s.window(2n * MiB + 5n, 1)[0] = 0xbb; // chunk 2
    const w = s.window(MiB - 2n, Number(MiB) + 8);
    assert.equal(w[0], 0xaa);
    assert.equal(s.read(2n * MiB + 5n, 1)[0], 0xbb);
    w[w.length - 1] = 0xcc;
    assert.equal(s.read(2n * MiB + 5n, 1)[0], 0xcc, 'the merged window writes through');
    assert.equal(s.committedBytes(), 3n * MiB);
  });

  it('zero-fills without committing, pattern-fills with, and refuses to commit past the limit', async () => {
    const s = new SparseByteStore(48n << 30n, { maxCommitBytes: 8n * MiB });
    s.window(5n * MiB, 4).writeUInt32LE(7);
    await s.fill(0n, 48n << 30n, 0);
    assert.equal(s.committedBytes(), MiB, 'a zero scrub of 48 GiB touched only the written chunk');
    assert.equal(s.read(5n * MiB, 4).readUInt32LE(0), 0);
    await s.fill(MiB + 4n, 8n, 0xdeadbeef);
    assert.deepEqual([...new Uint32Array(s.read(MiB, 16).buffer.slice(0))].slice(0, 4), [0, 0xdeadbeef, 0xdeadbeef, 0]);
    await assert.rejects(s.fill(0n, 1n << 30n, 1), (e) => isVgpuError(e, ErrorCode.OutOfMemory));
  });

  it('bounds-checks every access', () => {
    const s = new SparseByteStore(MiB);
    assert.throws(() => s.window(MiB - 2n, 4), (e) => isVgpuError(e, ErrorCode.NativeRange));
    assert.throws(() => s.read(-1n, 1), (e) => isVgpuError(e, ErrorCode.NativeRange));
  });
});

describe('MockMemory', () => {
  it('is a 48 GiB FramebufferMemory by default and records its operations', async () => {
    const mock = new MockHal({ devices: [{ bdf: '0000:41:00.0' }] });
    const gpu = await mock.openDevice();
    assert.equal(gpu.memory.totalBytes, 48n << 30n);
    const r = gpu.memory.reserve({ size: 1n << 30n, align: 512n * MiB, owner: 'vgpu-1', label: 'guest-fb' });
    const m = gpu.memory.map(r, { offset: 4096n, size: 4096n });
    m.write(0, Buffer.from([1, 2, 3, 4]));
    assert.deepEqual([...gpu.memory.store.read(r.offset + 4096n, 4)], [1, 2, 3, 4]);
    await gpu.memory.fill(r, 0);
    assert.deepEqual([...m.read(0, 4)], [0, 0, 0, 0]);
    gpu.memory.free(r);
    assert.deepEqual(mock.calls.filter((c) => c.op.startsWith('memory.')).map((c) => [c.op, c.outcome]),
      [['memory.reserve', 'ok'], ['memory.map', 'ok'], ['memory.fill', 'ok'], ['memory.free', 'ok']]);
    assert.deepEqual(mock.books().fbRanges, []);
    assert.deepEqual(mock.books().mappings, []);
  });
});
