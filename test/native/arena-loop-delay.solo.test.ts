// The daemon keeps answering while it scrubs: during a 4 GiB fill, verify, page hash and zero scrub the event loop
// keeps turning (a chain of 1 ms timers runs all along, see test/helpers/loop-turns.ts), and the job's results are
// right. This asserts WHERE the work runs, not how long the loop waited: a wall-clock bound failed CI on a shared
// machine (20.6 ms against a 20 ms bound with a 3 ms idle control), and timed assertions belong in bench/. The
// issue's figure — monitorEventLoopDelay max under 20 ms — is measured by `npm run bench:loop-delay` against an idle
// window of the same run and recorded in docs/benchmarks.md.
// Multi-GiB jobs, so this file has them to itself: it is a `.solo.test.ts` file, which the runner starts alone
// after every other file.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { SharedArena } from '../../native/native-ops.js';
import { fallbackOps, FALLBACK_MAX_ARENA } from '../../native/fallback.js';
import { implementations } from './fixtures/impls.js';
import { MIN_TURNS, loopTurnsDuring } from '../helpers/loop-turns.js';

const GiB = 1n << 30n;
const addonLeg = implementations()[0]!;

/** Run `work`, assert the loop kept turning while it ran, and return its result. */
async function offLoop<T>(what: string, work: () => Promise<T>): Promise<T> {
  const { result, turns } = await loopTurnsDuring(work);
  assert.ok(turns >= MIN_TURNS, `${what}: the event loop turned only ${turns} times while it ran (at least ${MIN_TURNS} expected): the job held the loop's thread`);
  return result;
}

/** Fill 4 GiB with a pattern, check it, then scrub it back to zero; the loop turns all along. */
async function scrubCycle(a: SharedArena): Promise<void> {
  const last = a.size - 4n;
  await offLoop('4 GiB first-touch fill', () => a.fill(0n, a.size, 0x5a5a5a5a, { release: false }));
  await offLoop('4 GiB fill over touched memory', () => a.fill(0n, a.size, 0xa5a5a5a5, { release: false }));
  assert.equal(a.load32(0n), 0xa5a5a5a5);
  assert.equal(a.load32(last), 0xa5a5a5a5);
  a.store32(3n * GiB + 40n, 7);
  assert.equal(await offLoop('4 GiB verify', () => a.verify(0n, a.size, 0xa5a5a5a5)), 3n * GiB + 40n);
  a.store32(3n * GiB + 40n, 0xa5a5a5a5);
  await offLoop('4 GiB zero scrub', () => a.fill(0n, a.size, 0));
  assert.equal(a.load32(last), 0);
  // Not held to the turn count: the zero scrub gave the pages back, and the addon's verify skips holes
  // (SEEK_DATA), so there is next to no work to take off the loop.
  assert.equal(await a.verify(0n, a.size, 0), null);
}

describe('event loop keeps turning during 4 GiB jobs', () => {
  it('addon (memfd): fill, verify, page hash, zero scrub', { skip: addonLeg.skip }, async () => {
    const a = addonLeg.ops.createArena({ size: 4n * GiB, backing: 'memfd' });
    try {
      await scrubCycle(a);
      // Page hashes over 4 GiB of written pages (the migration rescan path).
      await a.fill(0n, a.size, 0x0badf00d, { release: false });
      const hashes = await offLoop('4 GiB hashPages', () => a.hashPages(0n, a.size));
      assert.equal(hashes.length, Number(a.size / 4096n));
      assert.equal(hashes[0], hashes[hashes.length - 1]);
    } finally {
      a.close(); // the 4 GiB unmap happens off the loop too
    }
  });

  it('fallback (SharedArrayBuffer): fill, verify, zero scrub', async () => {
    // 4 GiB: the largest size a single Buffer view reaches and the figure. The fallback's own limit
    // (FALLBACK_MAX_ARENA, 16 GiB) would commit 16 GiB of RAM for a pattern fill — too much beside the suite.
    assert.ok(4n * GiB <= FALLBACK_MAX_ARENA);
    const a = fallbackOps.createArena({ size: 4n * GiB, backing: 'sab' });
    try {
      await scrubCycle(a);
    } finally {
      a.close();
    }
  });
});
