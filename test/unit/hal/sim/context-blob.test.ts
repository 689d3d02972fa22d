/**
 * The simulated plugin task's opaque context blob is a function of (gfid, type): a create takes it from a per-seed
 * cache instead of generating 4 KiB again, and a restore checks an image's blob against the same function. The
 * cache must never hand out a wrong blob, whichever seeds came before and however many.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { crc32 } from 'node:zlib';
import { blobFor, blobSeed, decodeContextImage, encodeContextImage, generateBlob, newContext } from '../../../../hal/sim/device/plugin-task-context.js';

test('every context carries the blob of its own seed, across more seeds than the cache keeps', () => {
  for (let round = 0; round < 2; round++) {
    for (let gfid = 1; gfid <= 40; gfid++) {
      for (const type of [941, 945]) {
        const ctx = newContext(gfid, type);
        assert.equal(ctx.blobSeed, blobSeed(gfid, type));
        assert.deepEqual(ctx.blob, generateBlob(ctx.blobSeed), `gfid ${gfid} type ${type} round ${round}`);
      }
    }
  }
  assert.equal(blobFor(blobSeed(3, 941)), blobFor(blobSeed(3, 941)), 'one copy per seed while it is in use');
});

test('an image still round-trips, and a blob that does not match its seed is still refused', () => {
  const ctx = newContext(5, 945);
  const img = encodeContextImage(ctx, 5, 945);
  assert.deepEqual(decodeContextImage(img).ctx.blob, ctx.blob);
  const bad = Buffer.from(img);
  bad.writeUInt32LE(blobSeed(6, 945), 32 + 144); // another vGPU's seed over this blob, CRC fixed up: only the seed check can catch it
  bad.writeUInt32LE(crc32(bad.subarray(32)) >>> 0, 20);
  assert.throws(() => decodeContextImage(bad), /blob does not match its seed/);
});
