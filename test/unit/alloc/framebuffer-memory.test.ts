import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { FramebufferMemoryImpl, type FbBackingStore } from '../../../core/alloc/framebuffer-memory.js';
import { ErrorCode, isVgpuError } from '../../../core/contracts/exceptions.js';

/** A flat Buffer store that records fills. */
class FlatStore implements FbBackingStore {
  readonly bytes: Buffer;
  readonly fills: { offset: bigint; length: bigint; pattern: number }[] = [];
  constructor(size: number) { this.bytes = Buffer.alloc(size); }
  window(offset: bigint, length: number): Buffer { return this.bytes.subarray(Number(offset), Number(offset) + length); }
  async fill(offset: bigint, length: bigint, pattern: number): Promise<void> {
    this.fills.push({ offset, length, pattern });
    for (let o = Number(offset); o < Number(offset + length); o += 4) this.bytes.writeUInt32LE(pattern, o);
  }
}

const codeOf = (fn: () => unknown): string => {
  try { fn(); } catch (e) { if (isVgpuError(e)) return e.code; throw e; }
  return 'no error';
};

function setup(size = 1 << 20) {
  const store = new FlatStore(size);
  const fb = new FramebufferMemoryImpl({ totalBytes: BigInt(size), store, name: 'test FB' });
  return { store, fb };
}

describe('FramebufferMemoryImpl', () => {
  it('reserves page-aligned by default and keeps owner and label', () => {
    const { fb } = setup();
    const a = fb.reserve({ size: 100n, owner: 'vgpu-1', label: 'mgmt-heap' });
    const b = fb.reserve({ size: 100n, owner: 'vgpu-2', label: 'guest-fb' });
    assert.equal(a.offset, 0n);
    assert.equal(b.offset, 4096n);
    assert.deepEqual(fb.list().map((r) => [r.owner, r.label]), [['vgpu-1', 'mgmt-heap'], ['vgpu-2', 'guest-fb']]);
    assert.equal(fb.stats().ranges, 2);
    assert.equal(fb.stats().used, 200n);
  });

  it('maps ranges for host access with bounds-checked windows', () => {
    const { fb, store } = setup();
    fb.reserve({ size: 8192n, owner: 'x', label: 'pad' });
    const r = fb.reserve({ size: 8192n, owner: 'vgpu-1', label: 'guest-fb' });
    const m = fb.map(r, { offset: 4096n, size: 4096n });
    m.write(0, Buffer.from('hello'));
    assert.equal(store.bytes.subarray(8192 + 4096, 8192 + 4101).toString(), 'hello', 'window addresses range + mapping offset');
    assert.equal(m.read(0, 5).toString(), 'hello');
    assert.equal(codeOf(() => m.window(4000, 200)), ErrorCode.NativeRange);
    assert.equal(codeOf(() => m.window(-1, 2)), ErrorCode.NativeRange);
    assert.equal(codeOf(() => fb.map(r, { offset: 8000n, size: 4096n })), ErrorCode.InvalidArgument);
  });

  it('unmaps live mappings when the range is freed, and refuses use after unmap', () => {
    const { fb } = setup();
    const r = fb.reserve({ size: 4096n, owner: 'v', label: 'guest-fb' });
    const m1 = fb.map(r);
    const m2 = fb.map(r);
    m1.unmap();
    assert.equal(fb.mappings().length, 1);
    fb.free(r);
    assert.equal(fb.mappings().length, 0);
    assert.equal(codeOf(() => m2.window(0, 4)), ErrorCode.IllegalState);
    m2.unmap(); // idempotent
  });

  it('distinguishes a double free from an unknown range', () => {
    const { fb } = setup();
    const r = fb.reserve({ size: 4096n, owner: 'v', label: 'guest-fb' });
    fb.free(r);
    assert.equal(codeOf(() => fb.free(r)), ErrorCode.IllegalState);
    assert.equal(codeOf(() => fb.free({ id: 999, offset: 0n, size: 4096n, owner: 'v', label: 'x' })), ErrorCode.NotFound);
    const r2 = fb.reserve({ size: 4096n, owner: 'v', label: 'guest-fb' });
    assert.equal(codeOf(() => fb.free({ ...r2, size: 8192n })), ErrorCode.NotFound, 'a forged record is not ours');
    assert.equal(codeOf(() => fb.map(r)), ErrorCode.IllegalState, 'map after free');
  });

  it('fills through the store, inside the range and 4-byte aligned only', async () => {
    const { fb, store } = setup();
    const r = fb.reserve({ size: 8192n, owner: 'v', label: 'guest-fb', align: 8192n });
    await fb.fill(r, 0xdeadbeef, { offset: 4096n, size: 16n });
    assert.deepEqual(store.fills, [{ offset: r.offset + 4096n, length: 16n, pattern: 0xdeadbeef }]);
    assert.equal(fb.map(r).read(4096, 4).readUInt32LE(0), 0xdeadbeef);
    await assert.rejects(fb.fill(r, 1, { offset: 2n, size: 4n }), (e) => isVgpuError(e, ErrorCode.InvalidArgument));
    await assert.rejects(fb.fill(r, 1, { offset: 8000n, size: 400n }), (e) => isVgpuError(e, ErrorCode.InvalidArgument));
  });

  it('rejects a request without an owner and leaves nothing behind', () => {
    const { fb } = setup();
    assert.equal(codeOf(() => fb.reserve({ size: 4096n, owner: '', label: 'x' })), ErrorCode.InvalidArgument);
    assert.equal(codeOf(() => fb.reserve({ size: 4096n, owner: 'v', label: 'x', align: 3n })), ErrorCode.InvalidArgument);
    assert.equal(codeOf(() => fb.reserve({ size: 2n << 20n, owner: 'v', label: 'x' })), ErrorCode.NoSpace);
    assert.equal(fb.stats().ranges, 0);
    assert.equal(fb.stats().used, 0n);
  });
});

describe('FramebufferMemoryImpl.hashPages', () => {
  it('exists only when the backing hashes pages itself, and hands it absolute, checked page ranges', async () => {
    assert.equal(setup().fb.hashPages, undefined, 'a plain store offers no hashPages (callers hash through a mapping)');
    const calls: Array<[bigint, bigint, number]> = [];
    const store = Object.assign(new FlatStore(1 << 20), {
      hashPages: async (offset: bigint, length: bigint, pageSize: number) => {
        calls.push([offset, length, pageSize]);
        return new BigUint64Array(Number(length) / pageSize);
      },
    });
    const fb = new FramebufferMemoryImpl({ totalBytes: 1n << 20n, store, name: 'test FB' });
    fb.reserve({ size: 0x3000n, owner: 'x', label: 'pad' });
    const r = fb.reserve({ size: 0x10000n, owner: 'vgpu-1', label: 'guest-fb' });
    assert.equal((await fb.hashPages!(r)).length, 16);
    assert.equal((await fb.hashPages!(r, { offset: 0x3000n, size: 0x4000n, pageSize: 8192 })).length, 2);
    assert.deepEqual(calls, [[0x3000n, 0x10000n, 4096], [0x6000n, 0x4000n, 8192]]);
    await assert.rejects(fb.hashPages!(r, { offset: 0x800n, size: 0x1000n }), (e) => isVgpuError(e, ErrorCode.InvalidArgument));
    await assert.rejects(fb.hashPages!(r, { offset: 0xf000n, size: 0x2000n }), (e) => isVgpuError(e));
    fb.free(r);
    await assert.rejects(fb.hashPages!(r), (e) => isVgpuError(e, ErrorCode.IllegalState), 'a freed range');
    assert.equal(calls.length, 2, 'bad calls never reached the backing');
  });
});

describe('FramebufferMemoryImpl.writtenExtents', () => {
  it('exists only when the backing keeps a written record, and answers range-relative extents of the asked part', () => {
    assert.equal(setup().fb.writtenExtents, undefined, 'a plain store keeps no record (migration then reads every page)');
    const asked: Array<[bigint, bigint]> = [];
    const store = Object.assign(new FlatStore(1 << 20), {
      // Backed: [0x2000, 0x4000) (below the range) and [0x5000, 0x6000), [0x9000, 0xb000) (inside it).
      dataExtents: (offset: bigint, length: bigint): bigint[] => {
        asked.push([offset, length]);
        const out: bigint[] = [];
        for (const [b, e] of [[0x2000n, 0x4000n], [0x5000n, 0x6000n], [0x9000n, 0xb000n]] as const) {
          const lo = b > offset ? b : offset, hi = e < offset + length ? e : offset + length;
          if (lo < hi) out.push(lo, hi);
        }
        return out;
      },
    });
    const fb = new FramebufferMemoryImpl({ totalBytes: 1n << 20n, store, name: 'test FB' });
    fb.reserve({ size: 0x4000n, owner: 'x', label: 'pad' });
    const r = fb.reserve({ size: 0x10000n, owner: 'vgpu-1', label: 'guest-fb' });
    assert.deepEqual(fb.writtenExtents!(r), [0x1000n, 0x2000n, 0x5000n, 0x7000n], 'relative to the range; the pad\'s data is not the range\'s');
    assert.deepEqual(fb.writtenExtents!(r, { offset: 0x6000n, size: 0x1000n }), [0x6000n, 0x7000n]);
    assert.deepEqual(asked, [[0x4000n, 0x10000n], [0xa000n, 0x1000n]]);
    assert.throws(() => fb.writtenExtents!(r, { offset: 0xf000n, size: 0x2000n }), (e: unknown) => isVgpuError(e, ErrorCode.InvalidArgument));
    fb.free(r);
    assert.throws(() => fb.writtenExtents!(r), (e: unknown) => isVgpuError(e, ErrorCode.IllegalState), 'a freed range');
  });
});

describe('FramebufferMemoryImpl.verify over part of a range', () => {
  it('checks only [offset, offset+size) and answers offsets relative to the range, with or without a store scan', async () => {
    for (const withScan of [false, true]) {
      const store = new FlatStore(1 << 20);
      if (withScan) {
        Object.assign(store, {
          verify: async (offset: bigint, length: bigint, pattern: number) => {
            for (let o = offset; o < offset + length; o += 4n) if (store.bytes.readUInt32LE(Number(o)) !== pattern) return o;
            return null;
          },
        });
      }
      const fb = new FramebufferMemoryImpl({ totalBytes: 1n << 20n, store, name: 'test FB' });
      fb.reserve({ size: 0x1000n, owner: 'x', label: 'pad' });
      const r = fb.reserve({ size: 0x8000n, owner: 'vgpu-1', label: 'guest-fb' });
      store.bytes.writeUInt32LE(7, Number(r.offset) + 0x100);
      store.bytes.writeUInt32LE(9, Number(r.offset) + 0x5004);
      assert.equal(await fb.verify(r, 0), 0x100n, `whole range (${withScan ? 'store scan' : 'windows'})`);
      assert.equal(await fb.verify(r, 0, { offset: 0x1000n }), 0x5004n, 'range-relative offset past the first hit');
      assert.equal(await fb.verify(r, 0, { offset: 0x1000n, size: 0x4000n }), null, 'nothing inside the sub-range');
      await assert.rejects(fb.verify(r, 0, { offset: 0x7000n, size: 0x2000n }), (e) => isVgpuError(e));
    }
  });
});
