// Pre-copy of a fresh (mostly never-written) FB: the full pass sends only the pages the backing says were written
// since the scrub, plus one zero record for the rest; never-written pages are neither read nor sent and arrive as
// zero even on a destination that was NOT clean (the record is checked there, not assumed). And the sender's memory:
// a slow consumer never makes it queue more than the sink's window plus one frame.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { PassThrough, Readable, Writable } from 'node:stream';
import { loadNativeOps } from '../../../native/index.js';
import type { SharedArena } from '../../../native/native-ops.js';
import { arenaRegion, type FbRegion } from '../../../plugins/migration/fb-region.js';
import { DirtyLogSource, DirtyLogWriter, dirtyLogBytes } from '../../../plugins/migration/dirty-log.js';
import { inProcessPair } from '../../../plugins/migration/transport.js';
import { migrateSource, receiveMigration, SaveSession } from '../../../plugins/migration/precopy-engine.js';
import { decodeFrames, type DecodedFrame } from '../../../plugins/migration/stream/stream-decoder.js';
import { FRAME_HEADER_SIZE, RUN_PREFIX_SIZE } from '../../../plugins/migration/stream/frame-format.js';
import { NO_DOWNTIME_LIMIT_MS } from '../../helpers/guard-timeouts.js';
import { TEST_PAGE_SIZE, testCompat } from '../../helpers/migration-compat.js';

const ops = loadNativeOps();
const PS = TEST_PAGE_SIZE;
const SIZE = 32n << 20n;
const PAGES = Number(SIZE / BigInt(PS));
const compat = testCompat(SIZE);
const noDevice = { stop: async (): Promise<void> => {}, resume: async (): Promise<void> => {} };

/**
 * A source FB whose backing keeps a written-since-scrub record, as the simulator's sparse file does: the listed
 * pages are the written ones plus one the backing holds although it is zero (a hole read through a mapping).
 */
function freshSource(written: number[], backedZero: number): { arena: SharedArena; region: FbRegion } {
  const arena = ops.createArena({ size: SIZE, backing: 'sab' });
  for (const p of written) arena.window(BigInt(p * PS), PS).set(randomBytes(PS));
  const listed = [...new Set([...written, backedZero])].sort((a, b) => a - b);
  const region: FbRegion = {
    ...arenaRegion(arena),
    writtenExtents(offset: bigint, length: bigint): bigint[] {
      const out: bigint[] = [];
      for (const p of listed) {
        const b = BigInt(p * PS);
        if (b >= offset && b < offset + length) out.push(b, b + BigInt(PS));
      }
      return out;
    },
  };
  return { arena, region };
}

test('fresh FB: only written pages travel, the rest arrives as zero over a destination that held stale bytes', async () => {
  const written = [0, 1, 2, 77, 78, 4000, 8191];
  const src = freshSource(written, 500);
  const dst = ops.createArena({ size: SIZE, backing: 'sab' });
  dst.window(0n, Number(SIZE)).fill(0xee); // not scrubbed: the zero record must be checked, not assumed
  const log = ops.createArena({ size: dirtyLogBytes(PAGES), backing: 'sab' });
  const sink = new PassThrough();
  const chunks: Buffer[] = [];
  sink.on('data', (c: Buffer) => { chunks.push(c); });
  const res = await migrateSource({
    region: src.region, dirty: new DirtyLogSource(log, 0n, PAGES, PS), sink, compat, device: noDevice,
    policy: { downtimeBudgetMs: NO_DOWNTIME_LIMIT_MS },
  });
  const stream = Buffer.concat(chunks);
  const frames: DecodedFrame[] = [];
  for await (const f of decodeFrames(Readable.from([stream]))) frames.push(f);
  await receiveMigration({ source: Readable.from([stream]), region: arenaRegion(dst), expect: compat });
  assert.ok(dst.window(0n, Number(SIZE)).equals(src.arena.window(0n, Number(SIZE))), 'destination equals the source byte for byte');
  assert.equal(res.totals.pageBytes, BigInt(written.length * PS), 'only the written pages carried bytes (not the backed zero page)');
  const firstPageFrame = frames.find((f) => f.type !== 'header')!;
  assert.deepEqual(firstPageFrame.type === 'zero-pages' ? [firstPageFrame.firstPage, firstPageFrame.count] : firstPageFrame.type, [0, PAGES],
    'the pass opens with one zero record over the whole FB');
  assert.equal(frames.filter((f) => f.type === 'zero-pages').length, 1, 'one zero record, not one per gap');
  for (const a of [src.arena, dst, log]) a.close();
});

test('fresh FB: a page written after tracking began is sent by a later pass, not lost', async () => {
  const src = freshSource([10, 11], 12);
  const dst = ops.createArena({ size: SIZE, backing: 'sab' });
  const log = ops.createArena({ size: dirtyLogBytes(PAGES), backing: 'sab' });
  const writer = new DirtyLogWriter(log, 0n, PAGES);
  // The "guest" writes page 3000 (outside the written record) and page 10 again right after tracking starts.
  const dirty = new DirtyLogSource(log, 0n, PAGES, PS);
  const start = dirty.start.bind(dirty);
  dirty.start = async () => {
    await start();
    src.arena.window(3000n * BigInt(PS), PS).fill(0x31);
    writer.mark(3000);
    src.arena.window(10n * BigInt(PS), PS).fill(0x32);
    writer.mark(10);
  };
  const { sender, receiver } = inProcessPair(1 << 20);
  const recv = receiveMigration({ source: receiver, region: arenaRegion(dst), expect: compat });
  await migrateSource({ region: src.region, dirty, sink: sender, compat, device: noDevice, policy: { downtimeBudgetMs: NO_DOWNTIME_LIMIT_MS } });
  await recv;
  assert.ok(dst.window(0n, Number(SIZE)).equals(src.arena.window(0n, Number(SIZE))), 'destination equals the source');
  assert.ok(dst.window(3000n * BigInt(PS), PS).every((b) => b === 0x31), 'the page written during pre-copy arrived');
  for (const a of [src.arena, dst, log]) a.close();
});

test('a mostly written FB keeps the dense full pass (no whole-FB zero record)', async () => {
  const written = Array.from({ length: PAGES * 0.75 }, (_, i) => i);
  const src = freshSource(written, PAGES - 1);
  const sink = new PassThrough();
  const frames: DecodedFrame[] = [];
  const seen = (async () => { for await (const f of decodeFrames(sink)) frames.push(f); })();
  const s = new SaveSession({ region: src.region, dirty: new DirtyLogSource(ops.createArena({ size: dirtyLogBytes(PAGES), backing: 'sab' }), 0n, PAGES, PS), sink, compat });
  await s.begin();
  await s.fullPass();
  await s.stopCopy(noDevice);
  await seen;
  assert.ok(!frames.some((f) => f.type === 'zero-pages' && f.count === PAGES), 'no whole-FB zero record');
  src.arena.close();
});

test('a slow consumer bounds what the sender queues: the sink window plus one frame, whatever the FB size', async () => {
  const src = ops.createArena({ size: SIZE, backing: 'sab' });
  src.window(0n, Number(SIZE)).set(randomBytes(Number(SIZE)));
  const WINDOW = 64 << 10;
  let maxQueued = 0;
  let consumed = 0;
  const sink = new Writable({
    highWaterMark: WINDOW,
    write(chunk: Buffer, _enc, cb) {
      maxQueued = Math.max(maxQueued, this.writableLength);
      consumed += chunk.length;
      setImmediate(cb); // a consumer that takes one chunk per event-loop turn
    },
  });
  const s = new SaveSession({ region: arenaRegion(src), dirty: new DirtyLogSource(ops.createArena({ size: dirtyLogBytes(PAGES), backing: 'sab' }), 0n, PAGES, PS), sink, compat });
  await s.begin();
  await s.fullPass();
  await s.stopCopy(noDevice);
  const frame = FRAME_HEADER_SIZE + RUN_PREFIX_SIZE + 256 * PS; // the largest frame of a pass: a 1 MiB page run
  assert.ok(consumed >= Number(SIZE), `the whole FB went through the sink (${consumed} bytes)`);
  assert.ok(maxQueued <= WINDOW + frame, `queued at most ${WINDOW} + one ${frame}-byte frame, saw ${maxQueued}`);
  src.close();
});

test('fresh FB on a sparse arena: the pass backs no hole of the source (it reads only written pages)', { skip: ops.kind !== 'native' && 'needs the addon: a sparse memfd arena and its data extents' }, async () => {
  const src = ops.createArena({ size: SIZE }); // memfd: holes until written
  for (const p of [5, 6, 900, 7000]) src.window(BigInt(p * PS), PS).set(randomBytes(PS));
  const committed = src.committedBytes();
  const dst = ops.createArena({ size: SIZE });
  const log = ops.createArena({ size: dirtyLogBytes(PAGES), backing: 'sab' });
  const { sender, receiver } = inProcessPair(1 << 20);
  const recv = receiveMigration({ source: receiver, region: arenaRegion(dst), expect: compat });
  const res = await migrateSource({
    region: arenaRegion(src), dirty: new DirtyLogSource(log, 0n, PAGES, PS), sink: sender, compat, device: noDevice,
    policy: { downtimeBudgetMs: NO_DOWNTIME_LIMIT_MS },
  });
  await recv;
  assert.equal(src.committedBytes(), committed, 'no hole of the source was backed by the pass');
  assert.equal(res.totals.pageBytes, 4n * BigInt(PS), 'the four written pages carried bytes, nothing else');
  assert.equal(await dst.verify(0n, 5n * BigInt(PS), 0), null, 'never-written pages arrived as zero');
  assert.ok(dst.window(0n, Number(SIZE)).equals(src.window(0n, Number(SIZE))), 'destination equals the source');
  for (const a of [src, dst, log]) a.close();
});
