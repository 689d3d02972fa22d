// Memory behaviour a host operator notices: a huge file arena costs only the pages written, a zero scrub gives
// pages back, and verify/hashPages read no holes (checking a sparse arena must not commit it). The event-loop
// bounds during multi-GiB jobs live in arena-loop-delay.test.ts.
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { fallbackOps, FALLBACK_MAX_ARENA } from '../../native/fallback.js';
import { implementations } from './fixtures/impls.js';
import { isVgpuError } from '../../core/contracts/exceptions.js';

const MiB = 1n << 20n;
const GiB = 1n << 30n;
const addonLeg = implementations()[0]!;
const files: string[] = [];
after(() => files.forEach((f) => rmSync(f, { force: true })));

describe('sparse file arenas (addon)', { skip: addonLeg.skip }, () => {
  it('a 48 GB arena costs only written pages, and a zero fill gives them back', async () => {
    const path = `/dev/shm/vgpud-test-${process.pid}-48g`;
    files.push(path);
    const a = addonLeg.ops.createArena({ path, size: 48n * 1000n * 1000n * 1000n });
    try {
      assert.equal(a.committedBytes(), 0n);
      const at = 40n * GiB; // far into the arena: no page before it is touched
      await a.fill(at, 64n * MiB, 0xa5a5a5a5);
      const written = a.committedBytes();
      assert.ok(written >= 64n * MiB && written < 65n * MiB, `committed ${written}`);
      await a.fill(at + 4n, 64n * MiB - 8n, 0); // unaligned: two edge pages stay, the rest goes back
      assert.ok(a.committedBytes() <= 2n * 4096n, `committed after zero fill ${a.committedBytes()}`);
      assert.equal(await a.verify(at + 4n, 64n * MiB - 8n, 0), null);
      assert.equal(a.load32(at), 0xa5a5a5a5);
      // A zero fill without release writes (commits) the pages.
      await a.fill(at, 16n * MiB, 0, { release: false });
      assert.ok(a.committedBytes() >= 16n * MiB);
    } finally {
      a.close();
    }
  });
});

describe('checking a sparse arena (addon)', { skip: addonLeg.skip }, () => {
  it('verify and hashPages over 8 GiB of mostly holes answer quickly and commit nothing', async () => {
    const path = `/dev/shm/vgpud-test-${process.pid}-sparse`;
    files.push(path);
    const a = addonLeg.ops.createArena({ path, size: 8n * GiB });
    try {
      const at = 5n * GiB + 12288n;
      await a.fill(at, 8192n, 0x01020304);
      const committed = a.committedBytes();
      assert.equal(committed, 8192n);
      // A hole reads as zeros: pattern 0 matches everywhere except the written pages…
      assert.equal(await a.verify(0n, a.size, 0), at);
      assert.equal(await a.verify(0n, at, 0), null);
      // …and any other pattern mismatches at the first hole word (here: the word after the written pages).
      assert.equal(await a.verify(at, 8192n, 0x01020304), null);
      assert.equal(await a.verify(at, 12288n, 0x01020304), at + 8192n);
      assert.equal(await a.verify(4n, 4096n, 0x01020304), 4n);
      const hashes = await a.hashPages(0n, a.size);
      assert.equal(hashes.length, Number(a.size / 4096n));
      const zeroHash = hashes[0]!;
      const page = Number(at / 4096n);
      assert.notEqual(hashes[page], zeroHash);
      assert.equal(hashes[page], hashes[page + 1]); // same content, same hash
      assert.equal(hashes[page + 2], zeroHash);
      assert.equal(hashes[hashes.length - 1], zeroHash);
      // The whole point: reading holes through the mapping would have allocated 8 GiB of shmem.
      assert.equal(a.committedBytes(), committed);
    } finally {
      a.close();
    }
  });
});

describe('fallback arena limit', () => {
  it('fallback refuses arenas above its limit with a typed error and a hint', () => {
    assert.throws(() => fallbackOps.createArena({ size: FALLBACK_MAX_ARENA + 4096n, backing: 'sab' }),
      (e: unknown) => isVgpuError(e, 'VGPU_ENOMEM') && /addon/.test(e.hint));
  });
});

describe('written extents of a sparse arena (addon)', { skip: addonLeg.skip }, () => {
  it('dataExtents lists what was written since the zero scrub released it, reading no page', async () => {
    const a = addonLeg.ops.createArena({ size: 64n * MiB });
    try {
      assert.deepEqual(a.dataExtents!(0n, a.size), [], 'a fresh arena is all hole');
      a.window(8192n, 4096).fill(1); // one page
      a.window(10n * MiB, 3 * 4096).fill(2); // three pages
      assert.deepEqual(a.dataExtents!(0n, a.size), [8192n, 12288n, 10n * MiB, 10n * MiB + 12288n]);
      assert.deepEqual(a.dataExtents!(10n * MiB + 4096n, 4096n), [10n * MiB + 4096n, 10n * MiB + 8192n], 'clipped to the asked range');
      const before = a.committedBytes();
      a.dataExtents!(0n, a.size);
      assert.equal(a.committedBytes(), before, 'asking commits nothing');
      await a.fill(10n * MiB, 3n * 4096n, 0); // the scrub gives the pages back: they leave the record
      assert.deepEqual(a.dataExtents!(0n, a.size), [8192n, 12288n]);
      assert.throws(() => a.dataExtents!(60n * MiB, 8n * MiB), (e: unknown) => isVgpuError(e), 'a range past the end is refused');
    } finally {
      a.close();
    }
  });

  it('reserve backs pages without writing them: they read zero and stay out of the written record', async () => {
    const a = addonLeg.ops.createArena({ size: 64n * MiB });
    try {
      a.window(8192n, 4096).fill(1);
      assert.equal(await a.reserve!(0n, 32n * MiB), 'reserved');
      assert.ok(a.committedBytes() >= 32n * MiB, `backed ${a.committedBytes()}`);
      assert.deepEqual(a.dataExtents!(0n, a.size), [8192n, 12288n], 'only the page stored to is written');
      assert.equal(await a.verify(12288n, 32n * MiB - 12288n, 0), null, 'reserved pages read zero');
      assert.equal(a.window(8192n, 4).readUInt32LE(0), 0x01010101, 'data already there is kept');
      a.window(16n * MiB, 4096).fill(2); // a store into a reserved page makes it written
      assert.deepEqual(a.dataExtents!(16n * MiB, 8192n), [16n * MiB, 16n * MiB + 4096n]);
      await a.fill(0n, 64n * MiB, 0); // the release scrub gives reserved pages back too
      assert.equal(a.committedBytes(), 0n);
      await assert.rejects(a.reserve!(60n * MiB, 8n * MiB), (e: unknown) => isVgpuError(e), 'a range past the end is refused');
      await assert.rejects(a.reserve!(100n, 4096n), (e: unknown) => isVgpuError(e), 'an unaligned range is refused');
    } finally {
      a.close();
    }
  });

  it('populate maps pages for writing: they read zero and count as written', async () => {
    const a = addonLeg.ops.createArena({ size: 64n * MiB });
    try {
      a.window(8192n, 4096).fill(1);
      assert.equal(await a.populate!(0n, 16n * MiB), 'populated');
      assert.ok(a.committedBytes() >= 16n * MiB, `backed ${a.committedBytes()}`);
      assert.deepEqual(a.dataExtents!(0n, a.size), [0n, 16n * MiB], 'populated pages are written');
      assert.equal(await a.verify(12288n, 16n * MiB - 12288n, 0), null, 'they read zero');
      assert.equal(a.window(8192n, 4).readUInt32LE(0), 0x01010101, 'data already there is kept');
      await assert.rejects(a.populate!(100n, 4096n), (e: unknown) => isVgpuError(e), 'an unaligned range is refused');
    } finally {
      a.close();
    }
  });

  it('reserve does nothing when the filesystem has no room for the range plus what must stay free', async () => {
    const path = `/dev/shm/vgpud-test-${process.pid}-reserve`; // a size-limited tmpfs (a memfd's mount has no limit)
    files.push(path);
    const a = addonLeg.ops.createArena({ path, size: 16n * MiB });
    try {
      assert.equal(await a.reserve!(0n, 4n * MiB, 1n << 52n), 'no-room');
      assert.equal(a.committedBytes(), 0n, 'nothing was reserved');
    } finally {
      a.close();
    }
  });
});
