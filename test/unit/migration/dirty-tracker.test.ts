// Dirty sources: both report exactly the pages written since the last collect.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadNativeOps } from '../../../native/index.js';
import { arenaRegion } from '../../../plugins/migration/fb-region.js';
import { HashDirtyTracker, diffHashes } from '../../../plugins/migration/dirty-tracker.js';
import { DirtyLogSource, DirtyLogWriter, dirtyLogBytes } from '../../../plugins/migration/dirty-log.js';

const ops = loadNativeOps();
const PS = 4096;
const PAGES = 300;

test('the hash tracker reports the pages whose bytes changed, then nothing', async () => {
  const arena = ops.createArena({ size: BigInt(PAGES * PS) });
  const t = new HashDirtyTracker(arenaRegion(arena), PS);
  await t.start();
  const w = arena.window(0n, PAGES * PS);
  for (const p of [0, 7, 8, 299]) w[p * PS + 100] = 1;
  w[42 * PS + 5] = 0; // writing the same value changes nothing
  assert.deepEqual([...(await t.collect())], [0, 7, 8, 299]);
  assert.deepEqual([...(await t.collect())], []);
  arena.close();
});

test('diffHashes compares full 64-bit values', () => {
  const a = new BigUint64Array([1n, 2n ** 40n, 3n]);
  const b = new BigUint64Array([1n, 2n ** 41n, 3n]);
  assert.deepEqual([...diffHashes(a, b)], [1]);
});

test('the dirty log reports marked pages once (read and clear), with page counts not a multiple of 32', async () => {
  const log = ops.createArena({ size: dirtyLogBytes(PAGES), backing: 'sab' });
  const writer = new DirtyLogWriter(log, 0n, PAGES);
  const src = new DirtyLogSource(log, 0n, PAGES, PS);
  await src.start();
  for (const p of [31, 32, 5, 299, 5]) writer.mark(p);
  assert.equal(src.peekCount(), 4);
  assert.deepEqual([...(await src.collect())], [5, 31, 32, 299]);
  assert.deepEqual([...(await src.collect())], []);
  log.close();
});

// Zero chunks are not hashed but given the zero page's hash: a page that stays zero while its 1 MiB chunk turns
// all-zero (or back) must not be reported, and every real change must be, with the off-thread zero scan of an
// arena region (firstNonZero) and with the window-compare fallback. The region sits at a non-zero arena offset.
for (const mode of ['firstNonZero', 'window compare'] as const) {
  test(`the hash tracker skips zero chunks without missing or inventing changes (${mode})`, async () => {
    const CH = 256; // pages per 1 MiB chunk
    const pages = 8 * CH + 16; // a short last chunk
    const BASE = BigInt((CH + 4) * PS); // more than a chunk in: a base mix-up shows as a wrong chunk
    const arena = ops.createArena({ size: BASE + BigInt(pages * PS) });
    const full = arenaRegion(arena, BASE, BigInt(pages * PS));
    const region = mode === 'firstNonZero' ? full : { size: full.size, window: full.window, hashPages: full.hashPages, zero: full.zero };
    const w = arena.window(BASE, pages * PS);
    const put = (p: number, v: number): void => { w[p * PS + 9] = v; };
    for (const p of [CH + 1, 3 * CH, 3 * CH + 255, 8 * CH + 15]) put(p, 7); // chunks 1, 3 and the short one non-zero
    arena.window(0n, PS).fill(0xee); // a non-zero page BEFORE the region: must not be taken for region data
    const t = new HashDirtyTracker(region, PS);
    await t.start();
    put(CH + 1, 0); // chunk 1 becomes all zero: only this page changed, not its (still zero) neighbours
    put(5 * CH + 3, 1); // a zero chunk gets data
    put(3 * CH + 255, 8); // data changes inside a non-zero chunk
    assert.deepEqual([...(await t.collect())], [CH + 1, 3 * CH + 255, 5 * CH + 3]);
    put(CH + 2, 2); // chunk 1 non-zero again: its other zero pages keep their hash
    put(8 * CH + 15, 0);
    assert.deepEqual([...(await t.collect())], [CH + 2, 8 * CH + 15]);
    assert.deepEqual([...(await t.collect())], []);
    arena.close();
  });
}
