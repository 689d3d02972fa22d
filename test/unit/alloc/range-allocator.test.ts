import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { RangeAllocator } from '../../../core/alloc/range-allocator.js';
import { ErrorCode, isVgpuError, VgpuError } from '../../../core/contracts/exceptions.js';

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof VgpuError) return e.code;
    throw e;
  }
  return 'no error';
}

describe('RangeAllocator', () => {
  it('places first-fit at the lowest aligned offset', () => {
    const a = new RangeAllocator(1n << 20n);
    const r1 = a.reserve(100n);
    const r2 = a.reserve(4096n, 4096n);
    const r3 = a.reserve(10n);
    assert.equal(r1.offset, 0n);
    assert.equal(r2.offset, 4096n, 'aligned up past the first range');
    assert.equal(r3.offset, 100n, 'first fit fills the gap left by the alignment padding');
    assert.equal(a.stats().used, 100n + 4096n + 10n);
  });

  it('coalesces freed neighbours back into one block', () => {
    const a = new RangeAllocator(3000n);
    const x = a.reserve(1000n);
    const y = a.reserve(1000n);
    const z = a.reserve(1000n);
    a.free(y.offset);
    a.free(x.offset);
    assert.equal(a.freeBlocks().length, 1);
    a.free(z.offset);
    assert.deepEqual(a.freeBlocks(), [{ offset: 0n, size: 3000n }]);
    assert.equal(a.reserve(3000n).offset, 0n, 'the whole space is one block again');
  });

  it('reports fragmentation as 1 − largestFree/free', () => {
    const a = new RangeAllocator(1000n);
    const rs = [a.reserve(250n), a.reserve(250n), a.reserve(250n), a.reserve(250n)];
    a.free(rs[0]!.offset);
    a.free(rs[2]!.offset);
    const s = a.stats();
    assert.equal(s.free, 500n);
    assert.equal(s.largestFree, 250n);
    assert.equal(s.fragmentation, 0.5);
    a.free(rs[1]!.offset);
    assert.equal(a.stats().fragmentation, 0, 'one contiguous free block is not fragmented');
  });

  it('throws NoSpace with what fits now in the hint', () => {
    const a = new RangeAllocator(1000n);
    const rs = [a.reserve(300n), a.reserve(300n), a.reserve(300n)];
    a.free(rs[1]!.offset); // free: [300,600) and [900,1000)
    try {
      a.reserve(400n);
      assert.fail('expected NoSpace');
    } catch (e) {
      assert.ok(isVgpuError(e, ErrorCode.NoSpace));
      assert.match(e.hint, /\b300 bytes\b/, 'hint names the largest request that fits');
      assert.equal(e.details['largestFit'], '300');
    }
    // alignment changes what fits: a 256-aligned request starts at 512 inside [300, 600)
    const e2 = (() => { try { a.reserve(1000n, 256n); } catch (e) { return e as VgpuError; } return undefined; })();
    assert.equal(e2?.details['largestFit'], '88');
  });

  it('rejects bad size, alignment and offsets with InvalidArgument', () => {
    const a = new RangeAllocator(4096n);
    assert.equal(code(() => a.reserve(0n)), ErrorCode.InvalidArgument);
    assert.equal(code(() => a.reserve(-5n)), ErrorCode.InvalidArgument);
    assert.equal(code(() => a.reserve(16n, 3n)), ErrorCode.InvalidArgument);
    assert.equal(code(() => a.reserve(16n, 0n)), ErrorCode.InvalidArgument);
    assert.equal(code(() => a.reserve(16n, 16n, 8n)), ErrorCode.InvalidArgument);
    assert.equal(a.stats().used, 0n, 'nothing half-made');
  });

  it('places at an exact offset and refuses an overlap', () => {
    const a = new RangeAllocator(4096n);
    assert.equal(a.reserve(100n, 1n, 1000n).offset, 1000n);
    assert.equal(code(() => a.reserve(100n, 1n, 950n)), ErrorCode.NoSpace);
    assert.equal(code(() => a.reserve(100n, 1n, 4000n)), ErrorCode.NoSpace, 'past the end');
    assert.equal(a.reserve(10n).offset, 0n);
    assert.equal(a.reserve(100n, 1n, 1100n).offset, 1100n, 'adjacent is fine');
  });

  it('refuses unknown and double frees with NotFound, and a wrong size with InvalidArgument', () => {
    const a = new RangeAllocator(4096n);
    const r = a.reserve(64n);
    assert.equal(code(() => a.free(r.offset, 32n)), ErrorCode.InvalidArgument);
    a.free(r.offset, 64n);
    assert.equal(code(() => a.free(r.offset)), ErrorCode.NotFound);
    assert.equal(code(() => a.free(123n)), ErrorCode.NotFound);
  });

  it('handles a 48 GiB space with bigint offsets beyond 2^32', () => {
    const a = new RangeAllocator(48n << 30n);
    const seg = 512n << 20n;
    const rs = Array.from({ length: 96 }, () => a.reserve(seg, seg));
    assert.equal(rs.at(-1)!.offset, 95n * seg);
    assert.equal(a.stats().free, 0n);
    assert.equal(code(() => a.reserve(4096n)), ErrorCode.NoSpace);
  });

  it('matches a naive reference model over a randomized alloc/free soak', () => {
    // Reference: one flag per unit, first-fit by scanning aligned offsets from 0.
    const total = 2048;
    const used = new Uint8Array(total);
    const refReserve = (size: number, align: number): number | undefined => {
      for (let o = 0; o + size <= total; o += align) {
        let ok = true;
        for (let k = 0; k < size; k++) if (used[o + k]) { ok = false; o = Math.floor((o + k) / align) * align; break; }
        if (ok) { used.fill(1, o, o + size); return o; }
      }
      return undefined;
    };
    const refLargest = (): number => {
      let best = 0;
      let run = 0;
      for (const u of used) { run = u ? 0 : run + 1; best = Math.max(best, run); }
      return best;
    };
    let seed = 12345;
    const rnd = (n: number): number => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed % n; };
    const a = new RangeAllocator(BigInt(total));
    const live: { offset: number; size: number }[] = [];
    for (let step = 0; step < 20000; step++) {
      if (live.length > 0 && rnd(100) < 45) {
        const [r] = live.splice(rnd(live.length), 1);
        a.free(BigInt(r!.offset));
        used.fill(0, r!.offset, r!.offset + r!.size);
      } else {
        const size = 1 + rnd(rnd(4) === 0 ? 300 : 40);
        const align = 1 << rnd(6);
        const want = refReserve(size, align);
        let got: number | undefined;
        try {
          got = Number(a.reserve(BigInt(size), BigInt(align)).offset);
        } catch (e) {
          assert.ok(isVgpuError(e, ErrorCode.NoSpace), String(e));
        }
        assert.equal(got, want, `step ${step}: reserve(${size}, ${align})`);
        if (got !== undefined) live.push({ offset: got, size });
      }
      if (step % 97 === 0) {
        const s = a.stats();
        assert.equal(Number(s.free), used.reduce((n, u) => n + (u ? 0 : 1), 0));
        assert.equal(Number(s.largestFree), refLargest());
      }
    }
  });
});

it('below: a reservation never crosses the bound, and fails with NoSpace rather than spilling over it', async () => {
  const { RangeAllocator } = await import('../../../core/alloc/range-allocator.js');
  const a = new RangeAllocator(1000n);
  a.reserve(100n, 1n, 0n); // [0,100) taken: the first free block starts at 100
  const r = a.reserve(50n, 1n, undefined, 200n);
  assert.equal(r.offset, 100n);
  a.reserve(50n, 1n, undefined, 200n); // [150,200): ends exactly at the bound
  assert.throws(() => a.reserve(10n, 1n, undefined, 200n), (e: unknown) => (e as { code?: string }).code === 'VGPU_ENOSPC');
  assert.equal(a.reserve(10n).offset, 200n, 'without the bound the space above is still there');
});
