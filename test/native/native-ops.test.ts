// One contract suite, run against the addon and the pure-TS fallback: same bytes, same answers, same error codes.
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import type { SharedArena } from '../../native/native-ops.js';
import { isVgpuError } from '../../core/contracts/exceptions.js';
import { implementations, anonymousBacking } from './fixtures/impls.js';
import { referencePageHash } from './fixtures/reference-hash.js';
import { scribble } from './fixtures/scribble.js';

const MiB = 1n << 20n;
const impls = implementations();


async function rejectsWith(p: Promise<unknown> | (() => unknown), code: string): Promise<void> {
  await assert.rejects(async () => (typeof p === 'function' ? p() : p), (e: unknown) => {
    assert.ok(isVgpuError(e), `expected a VgpuError, got ${String(e)}`);
    assert.equal(e.code, code);
    assert.ok(e.hint.length > 0);
    return true;
  });
}

for (const impl of impls) {
  describe(`NativeOps contract: ${impl.name}`, { skip: impl.skip }, () => {
    const arenas: SharedArena[] = [];
    const make = (size = 8n * MiB): SharedArena => {
      const a = impl.ops.createArena({ size, backing: anonymousBacking(impl) });
      arenas.push(a);
      return a;
    };
    after(() => arenas.forEach((a) => a.close()));

    it('fills a range with a 32-bit pattern and verify finds the first differing word', async () => {
      const a = make();
      await a.fill(0n, a.size, 0x11223344);
      await a.fill(4096n, 8192n, 0xa5a5a5a5);
      assert.equal(await a.verify(4096n, 8192n, 0xa5a5a5a5), null);
      assert.equal(await a.verify(0n, 4096n, 0x11223344), null);
      assert.equal(await a.verify(0n, a.size, 0x11223344), 4096n);
      // Pattern bytes land little-endian, word by word.
      assert.deepEqual([...a.window(0n, 4)], [0x44, 0x33, 0x22, 0x11]);
      a.store32(a.size - 4n, 0xdeadbeef);
      assert.equal(await a.verify(12288n, a.size - 12288n, 0x11223344), a.size - 4n);
    });

    it('zero fill with and without release reads back as zeros', async () => {
      const a = make();
      await a.fill(0n, a.size, 0xffffffff);
      await a.fill(100n, 3n * MiB, 0); // unaligned to pages: edge pages are written, the middle released
      await a.fill(4n * MiB, MiB, 0, { release: false });
      assert.equal(await a.verify(100n, 3n * MiB, 0), null);
      assert.equal(await a.verify(4n * MiB, MiB, 0), null);
      assert.equal(a.load32(96n), 0xffffffff);
      assert.equal(a.load32(100n + 3n * MiB), 0xffffffff);
    });

    it('hashPages matches the documented vgpu-page-hash-v1 definition', async () => {
      const a = make();
      scribble(a, 0n, 64 * 1024, 42);
      const hashes = await a.hashPages(0n, 64n * 1024n);
      assert.equal(hashes.length, 16);
      const win = a.window(0n, 64 * 1024);
      for (let p = 0; p < 16; p++) {
        assert.equal(hashes[p], referencePageHash(win.subarray(p * 4096, (p + 1) * 4096)), `page ${p}`);
      }
      const big = await a.hashPages(0n, 64n * 1024n, 16384);
      assert.equal(big[1], referencePageHash(win.subarray(16384, 32768)));
      // A one-bit change moves exactly that page's hash.
      a.store32(4096n * 3n + 8n, a.load32(4096n * 3n + 8n) ^ 1);
      const after2 = await a.hashPages(0n, 64n * 1024n);
      assert.notEqual(after2[3], hashes[3]);
      assert.deepEqual([...after2].filter((_, i) => i !== 3), [...hashes].filter((_, i) => i !== 3));
    });

    it('hashPages matches the definition for every page size and page count (vector and scalar paths)', async () => {
      const a = make();
      scribble(a, 0n, 37 * 4096, 99); // 37 pages: groups of 8 (AVX2) and 4 (scalar), then single pages
      const win = a.window(0n, 37 * 4096);
      for (const ps of [8, 32, 4096, 8192]) {
        const n = Math.min(53, Math.floor((37 * 4096) / ps)); // 53 = 3 × 16 + 4 + 1: every kernel gets pages
        const hashes = await a.hashPages(0n, BigInt(n * ps), ps);
        assert.equal(hashes.length, n);
        for (let p = 0; p < n; p++) {
          assert.equal(hashes[p], referencePageHash(win.subarray(p * ps, (p + 1) * ps)), `page ${p} of ${ps} bytes`);
        }
      }
    });

    it('windows alias the arena and each other', () => {
      const a = make();
      const w1 = a.window(MiB, 4096);
      const w2 = a.window(MiB, 4096);
      w1.writeUInt32LE(0xcafef00d, 8);
      assert.equal(w2.readUInt32LE(8), 0xcafef00d);
      assert.equal(a.load32(MiB + 8n), 0xcafef00d);
      a.store32(MiB + 12n, 7);
      assert.equal(w1.readUInt32LE(12), 7);
    });

    it('rejects out-of-range calls with VGPU_ERANGE', async () => {
      const a = make();
      await rejectsWith(a.fill(a.size - 4n, 8n, 1), 'VGPU_ERANGE');
      await rejectsWith(a.verify(a.size, 4n, 1), 'VGPU_ERANGE');
      await rejectsWith(a.hashPages(a.size - 4096n, 8192n), 'VGPU_ERANGE');
      await rejectsWith(() => a.window(a.size - 10n, 11), 'VGPU_ERANGE');
      await rejectsWith(() => a.window(0n, (1 << 30) + 1), 'VGPU_ERANGE');
      await rejectsWith(() => a.load32(a.size), 'VGPU_ERANGE');
      await rejectsWith(() => a.store32(-4n, 1), 'VGPU_ERANGE');
      await rejectsWith(a.fill(0n, 1n << 60n, 0), 'VGPU_ERANGE');
    });

    it('rejects misaligned calls with VGPU_EALIGN and bad values with VGPU_EINVAL', async () => {
      const a = make();
      await rejectsWith(a.fill(2n, 8n, 1), 'VGPU_EALIGN');
      await rejectsWith(a.fill(0n, 6n, 1), 'VGPU_EALIGN');
      await rejectsWith(a.verify(1n, 4n, 1), 'VGPU_EALIGN');
      await rejectsWith(a.hashPages(512n, 4096n), 'VGPU_EALIGN');
      await rejectsWith(a.hashPages(0n, 4000n), 'VGPU_EALIGN');
      await rejectsWith(() => a.load32(2n), 'VGPU_EALIGN');
      await rejectsWith(a.wait32(6n, 0, 10), 'VGPU_EALIGN');
      await rejectsWith(a.fill(0n, 4n, 2 ** 33), 'VGPU_EINVAL');
      await rejectsWith(a.hashPages(0n, 4096n, 1000), 'VGPU_EINVAL');
      // The arena is untouched and usable after rejected calls.
      await a.fill(0n, 4096n, 5);
      assert.equal(await a.verify(0n, 4096n, 5), null);
    });

    it('wait32 reports ok on wake, not-equal on a stale value, timed-out after the timeout', async () => {
      const a = make();
      a.store32(64n, 0);
      const waiting = a.wait32(64n, 0, 5000);
      setImmediate(() => { a.store32(64n, 1); a.wake32(64n); });
      assert.equal(await waiting, 'ok');
      assert.equal(await a.wait32(64n, 0, 1000), 'not-equal');
      // Nobody wakes it: the timeout ends the wait. (How long it took is timing, not behaviour: bench:rpc.)
      assert.equal(await a.wait32(64n, 1, 30), 'timed-out');
    });

    it('closed arenas refuse further use with VGPU_ESTATE', async () => {
      const a = make();
      a.close();
      await rejectsWith(() => a.load32(0n), 'VGPU_ESTATE');
      await rejectsWith(a.fill(0n, 4n, 0), 'VGPU_ESTATE');
    });

    it('createArena refuses a zero size', () => {
      assert.throws(() => impl.ops.createArena({ size: 0n, backing: anonymousBacking(impl) }),
        (e: unknown) => isVgpuError(e, 'VGPU_EINVAL'));
    });
  });
}

describe('NativeOps: releaseFreeMemory', () => {
  it('runs on the addon (true or false: whether glibc had whole free pages to give back) and is a no-op false on the fallback', () => {
    for (const impl of impls) {
      if (impl.skip !== false) continue;
      const r = impl.ops.releaseFreeMemory();
      assert.equal(typeof r, 'boolean', impl.name);
      if (impl.ops.kind !== 'native') assert.equal(r, false, 'the fallback cannot reach the C allocator');
    }
  });
});

describe('NativeOps: addon and fallback agree', { skip: impls[0]!.skip }, () => {
  it('over sparse content: holes hash and verify as zeros, also inside pages larger than 4 KiB', async () => {
    const [addon, js] = impls.map((i) => i.ops.createArena({ size: 16n * MiB, backing: anonymousBacking(i) }));
    try {
      for (const a of [addon!, js!]) {
        await a.fill(MiB, 4n * MiB, 0x77777777);
        await a.fill(2n * MiB + 4096n, 8192n, 0); // released on the addon: a hole inside a 64 KiB page
        await a.fill(3n * MiB, 64n * 1024n, 0); // a whole 64 KiB page released
        scribble(a, 8n * MiB + 4096n, 4096, 3); // one data page alone in the middle of holes
      }
      for (const ps of [4096, 65536, 1 << 20]) {
        assert.deepEqual(await addon!.hashPages(0n, addon!.size, ps), await js!.hashPages(0n, js!.size, ps), `page size ${ps}`);
      }
      for (const [off, len, pat] of [[0n, 16n * MiB, 0], [MiB, 4n * MiB, 0x77777777], [2n * MiB, MiB, 0x77777777],
        [8n * MiB, MiB, 0], [4n * MiB, 4n * MiB, 5]] as const) {
        const want = await js!.verify(off, len, pat);
        assert.equal(await addon!.verify(off, len, pat), want, `verify(${off}, ${len}, ${pat})`);
      }
      assert.equal(await addon!.verify(2n * MiB, MiB, 0x77777777), 2n * MiB + 4096n);
    } finally {
      addon!.close();
      js!.close();
    }
  });


  it('give identical verify results and page hashes over the same content', async () => {
    const [addon, js] = impls.map((i) => i.ops.createArena({ size: 4n * MiB, backing: anonymousBacking(i) }));
    try {
      for (const a of [addon!, js!]) {
        await a.fill(0n, a.size, 0x5a5a0ff0);
        scribble(a, MiB, 256 * 1024, 7);
        a.store32(3n * MiB + 20n, 0);
      }
      assert.deepEqual(await addon!.hashPages(0n, addon!.size), await js!.hashPages(0n, js!.size));
      assert.deepEqual(await addon!.hashPages(MiB, MiB, 65536), await js!.hashPages(MiB, MiB, 65536));
      assert.equal(await addon!.verify(0n, addon!.size, 0x5a5a0ff0), MiB);
      assert.equal(await js!.verify(0n, js!.size, 0x5a5a0ff0), MiB);
      assert.equal(await addon!.verify(2n * MiB, 2n * MiB, 0x5a5a0ff0), await js!.verify(2n * MiB, 2n * MiB, 0x5a5a0ff0));
    } finally {
      addon!.close();
      js!.close();
    }
  });
});
