// The destination's FB pre-fault: once the stream's first page frame is applied, the destination backs and maps its
// whole FB, so the stream's stores take no page fault; the FB still reads zero where nothing was sent, the trailer
// does not wait for it, a refused stream gives the backing back with its scrub, and nothing is backed when the host
// has no room for it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { PassThrough, Readable } from 'node:stream';
import { loadNativeOps } from '../../../native/index.js';
import { arenaRegion, type FbRegion } from '../../../plugins/migration/fb-region.js';
import { DirtyLogSource, dirtyLogBytes } from '../../../plugins/migration/dirty-log.js';
import { migrateSource, receiveMigration } from '../../../plugins/migration/precopy-engine.js';
import { DestinationPrefault } from '../../../plugins/migration/stream/destination-prefault.js';
import { isVgpuError } from '../../../core/contracts/exceptions.js';
import { NO_DOWNTIME_LIMIT_MS } from '../../helpers/guard-timeouts.js';
import { TEST_PAGE_SIZE, testCompat } from '../../helpers/migration-compat.js';

const ops = loadNativeOps();
const PS = TEST_PAGE_SIZE;
const SIZE = 192n << 20n; // three 64 MiB pre-fault pieces
const PAGES = Number(SIZE / BigInt(PS));
const compat = testCompat(SIZE);
const noDevice = { stop: async (): Promise<void> => {}, resume: async (): Promise<void> => {} };
const native = { skip: ops.kind !== 'native' && 'needs the addon: a sparse memfd arena, its reservation and data extents' };
const WRITTEN = [3, 4, 5, 20_000, 49_151];

/** Page numbers inside absolute [begin, end) byte extents. */
function writtenPages(ext: bigint[]): number[] {
  const out: number[] = [];
  for (let i = 0; i < ext.length; i += 2) for (let b = ext[i]!; b < ext[i + 1]!; b += BigInt(PS)) out.push(Number(b / BigInt(PS)));
  return out;
}

/** The stream of a fresh source FB whose written pages are WRITTEN (random bytes). */
async function freshStream(): Promise<{ stream: Buffer; image: Buffer }> {
  const src = ops.createArena({ size: SIZE }); // memfd: holes until written
  for (const p of WRITTEN) src.window(BigInt(p * PS), PS).set(randomBytes(PS));
  const log = ops.createArena({ size: dirtyLogBytes(PAGES), backing: 'sab' });
  const sink = new PassThrough();
  const chunks: Buffer[] = [];
  sink.on('data', (c: Buffer) => { chunks.push(c); });
  await migrateSource({
    region: arenaRegion(src), dirty: new DirtyLogSource(log, 0n, PAGES, PS), sink, compat, device: noDevice,
    policy: { downtimeBudgetMs: NO_DOWNTIME_LIMIT_MS },
  });
  const image = Buffer.from(src.window(0n, Number(SIZE)));
  src.close();
  log.close();
  return { stream: Buffer.concat(chunks), image };
}

test('a pre-fault backs and maps the whole FB: written pages keep their bytes, the rest reads zero', native, async () => {
  const dst = ops.createArena({ size: SIZE });
  try {
    for (const p of WRITTEN) dst.window(BigInt(p * PS), PS).fill(7);
    const r = new DestinationPrefault(arenaRegion(dst));
    assert.equal(await r.done, 'mapped');
    assert.equal(r.reservedBytes, SIZE);
    assert.ok(dst.committedBytes() >= SIZE, `the whole FB is backed (${dst.committedBytes()} bytes)`);
    assert.deepEqual(dst.dataExtents!(0n, SIZE), [0n, SIZE], 'mapped pages count as written');
    assert.equal(await dst.verify(0n, 3n * BigInt(PS), 0), null, 'a page nothing wrote reads zero');
    assert.ok(dst.window(3n * BigInt(PS), PS).every((b) => b === 7), 'a written page keeps its bytes');
  } finally {
    dst.close();
  }
});

test('the applier starts the pre-fault with the stream, and stops it at the trailer without waiting for the piece in flight', native, async () => {
  const { stream, image } = await freshStream();
  const dst = ops.createArena({ size: SIZE });
  const region = arenaRegion(dst);
  // A pre-fault whose first piece returns only when the test says so: the stream ends long before.
  const calls: bigint[] = [];
  let release!: () => void;
  const gate = new Promise<void>((r) => { release = r; });
  let inFlight: Promise<unknown> = Promise.resolve();
  const real = region.prefault!.bind(region);
  region.prefault = (at, n, keep) => {
    calls.push(at);
    const p = gate.then(() => real(at, n, keep));
    inFlight = p;
    return p;
  };
  try {
    // Resolves while the piece is held: the trailer (on the guest's downtime path) does not wait for it.
    const res = await receiveMigration({ source: Readable.from([stream]), region, expect: compat, prefault: true });
    assert.deepEqual(res.prefault, { outcome: 'stopped', reservedBytes: 0n });
    assert.deepEqual(calls, [0n], 'one piece started, at the FB start');
    // The pre-fault started after the whole-FB zero record was checked against the written record, so that check
    // saw only holes; the record now is what the stream wrote (the held piece has mapped nothing yet).
    assert.deepEqual(writtenPages(dst.dataExtents!(0n, SIZE)), WRITTEN, 'the written record is the pages sent');
    release();
    await inFlight;
    for (let i = 0; i < 20; i++) await new Promise<void>((r) => setImmediate(r));
    assert.deepEqual(calls, [0n], 'no piece starts after the stream ended');
    assert.ok(dst.window(0n, Number(SIZE)).equals(image), 'destination equals the source byte for byte');
  } finally {
    dst.close();
  }
});

test('a refused stream gives the reserved backing back with the scrub', native, async () => {
  const { stream } = await freshStream();
  const dst = ops.createArena({ size: SIZE });
  try {
    // Cut after the header and the first frames: the applier refuses the truncated stream and scrubs.
    const cut = stream.subarray(0, Math.floor(stream.length / 2));
    await assert.rejects(receiveMigration({ source: Readable.from([cut]), region: arenaRegion(dst), expect: compat }), (e: unknown) => isVgpuError(e));
    assert.ok(dst.committedBytes() <= BigInt(PS), `nothing stays backed after the refusal (${dst.committedBytes()} bytes)`);
    assert.deepEqual(dst.dataExtents!(0n, SIZE), []);
  } finally {
    dst.close();
  }
});

test('no pre-fault without room for it, and none where the backing cannot', native, async () => {
  const dst = ops.createArena({ size: SIZE });
  try {
    const r = new DestinationPrefault(arenaRegion(dst), () => Number(SIZE)); // less than the FB plus 1 GiB free
    assert.equal(await r.done, 'no-room');
    assert.equal(dst.committedBytes(), 0n, 'nothing was reserved');
  } finally {
    dst.close();
  }
  const sab = ops.createArena({ size: 1n << 20n, backing: 'sab' }); // process memory: no file to reserve in
  const plain: FbRegion = arenaRegion(sab);
  assert.equal(plain.prefault, undefined);
  assert.equal(await new DestinationPrefault(plain).done, 'unsupported');
  sab.close();
});

test('a pre-fault stops after the piece in flight', native, async () => {
  const dst = ops.createArena({ size: SIZE });
  try {
    const r = new DestinationPrefault(arenaRegion(dst));
    const outcome = await r.stop(); // asked before the first piece returned
    assert.equal(outcome, 'stopped');
    assert.ok(r.reservedBytes < SIZE, `stopped before the last piece (${r.reservedBytes} bytes reserved)`);
  } finally {
    dst.close();
  }
});

test('without VGPUD_MIGRATION_PREFAULT the applier pre-faults nothing: the destination FB is backed only where the stream wrote', native, async () => {
  const { stream } = await freshStream();
  const dst = ops.createArena({ size: SIZE });
  const region = arenaRegion(dst);
  const calls: bigint[] = [];
  const real = region.prefault!.bind(region);
  region.prefault = (at, n, keep) => {
    calls.push(at);
    return real(at, n, keep);
  };
  const saved = process.env['VGPUD_MIGRATION_PREFAULT'];
  delete process.env['VGPUD_MIGRATION_PREFAULT'];
  try {
    const res = await receiveMigration({ source: Readable.from([stream]), region, expect: compat });
    assert.equal(res.prefault, undefined, 'no pre-fault reported');
    assert.deepEqual(calls, [], 'no piece was backed');
    assert.deepEqual(writtenPages(dst.dataExtents!(0n, SIZE)), WRITTEN, 'the written record is the pages sent');
  } finally {
    if (saved !== undefined) process.env['VGPUD_MIGRATION_PREFAULT'] = saved;
    dst.close();
  }
});
