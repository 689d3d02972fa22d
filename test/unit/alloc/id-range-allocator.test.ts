import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { IdRangeAllocator } from '../../../core/alloc/id-range-allocator.js';
import { ErrorCode, isVgpuError } from '../../../core/contracts/exceptions.js';

const codeOf = (fn: () => unknown): string => {
  try { fn(); } catch (e) { if (isVgpuError(e)) return e.code; throw e; }
  return 'no error';
};

describe('IdRangeAllocator', () => {
  it('allocates contiguous runs first-fit and reuses the lowest gap', () => {
    const a = new IdRangeAllocator(64);
    const x = a.alloc(8, 'vgpu-a');
    const y = a.alloc(8, 'vgpu-b');
    const z = a.alloc(8, 'vgpu-c');
    assert.deepEqual([x.offset, y.offset, z.offset], [0, 8, 16]);
    a.free(y);
    assert.equal(a.alloc(4, 'small').offset, 8, 'the gap at 8 is the first that fits');
    assert.equal(a.alloc(8, 'big').offset, 24, 'the 4-ID rest of the gap is too small');
    assert.deepEqual(a.stats(), { total: 64, used: 28, largestFree: 32 });
    assert.deepEqual(a.list().map((r) => r.owner), ['vgpu-a', 'small', 'vgpu-c', 'big']);
  });

  it('throws NoSpace naming the longest free run', () => {
    const a = new IdRangeAllocator(16);
    a.alloc(6, 'a');
    const b = a.alloc(4, 'b');
    a.alloc(6, 'c');
    a.free(b);
    try {
      a.alloc(5, 'd');
      assert.fail('expected NoSpace');
    } catch (e) {
      assert.ok(isVgpuError(e, ErrorCode.NoSpace));
      assert.match(e.hint, /longest free run is 4 IDs/);
    }
  });

  it('honours `at` and refuses overlaps', () => {
    const a = new IdRangeAllocator(32);
    assert.equal(a.alloc(4, 'x', 10).offset, 10);
    assert.equal(codeOf(() => a.alloc(4, 'y', 12)), ErrorCode.NoSpace);
    assert.equal(codeOf(() => a.alloc(4, 'y', 30)), ErrorCode.NoSpace);
    assert.equal(a.alloc(10, 'z').offset, 0);
    assert.equal(a.alloc(1, 'w').offset, 14);
  });

  it('checks the exact range on free (a bitmap would silently clear a neighbour)', () => {
    const a = new IdRangeAllocator(32);
    const r = a.alloc(4, 'x');
    a.alloc(4, 'y');
    assert.equal(codeOf(() => a.free({ offset: 0, count: 8 })), ErrorCode.NotFound);
    a.free(r);
    assert.equal(codeOf(() => a.free(r)), ErrorCode.NotFound, 'double free');
    assert.equal(a.stats().used, 4);
  });

  it('rejects bad counts and owners', () => {
    const a = new IdRangeAllocator(8);
    assert.equal(codeOf(() => a.alloc(0, 'x')), ErrorCode.InvalidArgument);
    assert.equal(codeOf(() => a.alloc(1.5, 'x')), ErrorCode.InvalidArgument);
    assert.equal(codeOf(() => a.alloc(1, '')), ErrorCode.InvalidArgument);
    assert.equal(codeOf(() => a.alloc(1, 'x', -1)), ErrorCode.InvalidArgument);
    assert.equal(a.stats().used, 0);
  });

  it('matches bitmap_find_next_zero_area semantics over a randomized soak', () => {
    const total = 512;
    const bits = new Uint8Array(total);
    const refFind = (count: number): number | undefined => {
      for (let start = 0; start + count <= total; start++) {
        let k = 0;
        while (k < count && !bits[start + k]) k++;
        if (k === count) return start;
        start += k; // skip past the set bit
      }
      return undefined;
    };
    let seed = 7;
    const rnd = (n: number): number => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed % n; };
    const a = new IdRangeAllocator(total);
    const live: { offset: number; count: number; owner: string }[] = [];
    for (let step = 0; step < 10000; step++) {
      if (live.length > 0 && rnd(100) < 45) {
        const [r] = live.splice(rnd(live.length), 1);
        a.free(r!);
        bits.fill(0, r!.offset, r!.offset + r!.count);
      } else {
        const count = 1 << rnd(6);
        const want = refFind(count);
        let got: number | undefined;
        try {
          const r = a.alloc(count, `o${step}`);
          got = r.offset;
          live.push(r);
          bits.fill(1, r.offset, r.offset + count);
        } catch (e) {
          assert.ok(isVgpuError(e, ErrorCode.NoSpace));
        }
        assert.equal(got, want, `step ${step}: alloc(${count})`);
      }
    }
    assert.equal(a.stats().used, bits.reduce((n, b) => n + b, 0));
  });
});
