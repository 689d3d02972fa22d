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
