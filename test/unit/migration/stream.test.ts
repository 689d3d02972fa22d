// Device-state stream: round trip, refusal of every corruption and truncation with a typed error and nothing left
// in the destination FB, and incompatible headers refused before any write.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { PassThrough, Readable } from 'node:stream';
import { loadNativeOps } from '../../../native/index.js';
import { ErrorCode, VgpuError } from '../../../core/contracts/exceptions.js';
import { arenaRegion } from '../../../plugins/migration/fb-region.js';
import { StreamEncoder } from '../../../plugins/migration/stream/stream-encoder.js';
import { applyStream } from '../../../plugins/migration/stream/stream-applier.js';
import { COMPAT_FIELDS, type MigrationCompat } from '../../../plugins/migration/stream/compat.js';
import { FRAME_HEADER_SIZE } from '../../../plugins/migration/stream/frame-format.js';

const ops = loadNativeOps();
const PS = 4096;
const PAGES = 64;
const SIZE = BigInt(PAGES * PS);
const compat: MigrationCompat = {
  vgpuTypeId: 869, vgpuTypeName: 'NVIDIA L40-1B', fbBytes: SIZE, chidCount: 64, firmwareVersion: '570.144',
  pciVdevId: 0x26b5, pageSize: PS,
};
const FW = [randomBytes(3000), randomBytes(10)];

/** Source content: random pages, with pages 5..9 and 40 left zero. Returns the bytes. */
function sourceBytes(): Buffer {
  const b = randomBytes(PAGES * PS);
  b.fill(0, 5 * PS, 10 * PS);
  b.fill(0, 40 * PS, 41 * PS);
  return b;
}

/** Encode `src` as a stream: pages in runs of 8, then 3 pages re-sent (as pre-copy does), fw context, trailer. */
async function encode(src: Buffer): Promise<{ bytes: Buffer; frameStarts: number[] }> {
  const sink = new PassThrough();
  const chunks: Buffer[] = [];
  const frameStarts: number[] = [];
  let pos = 0;
  sink.on('data', (c: Buffer) => { chunks.push(c); });
  const enc = new StreamEncoder(sink, PS);
  const mark = (): void => { frameStarts.push(Number(enc.totals().streamBytes)); };
  mark(); await enc.writeHeader(compat);
  for (let p = 0; p < PAGES; p += 8) {
    const run = src.subarray(p * PS, (p + 8) * PS);
    mark();
    if (run.every((x) => x === 0)) await enc.writeZeroPages(p, 8, 1);
    else await enc.writePages(p, Buffer.from(run), 1);
  }
  mark(); await enc.writePages(20, Buffer.from(src.subarray(20 * PS, 23 * PS)), 2);
  const scattered = Uint32Array.from([50, 3, 33]);
  mark(); await enc.writeScatter(scattered, Buffer.concat([...scattered].map((p) => src.subarray(p * PS, (p + 1) * PS))), 3);
  for (const f of FW) { mark(); await enc.writeFirmwareContext(f); }
  mark(); await enc.finish();
  void pos;
  return { bytes: Buffer.concat(chunks), frameStarts };
}

function newDest(fillPattern = 0): { region: ReturnType<typeof arenaRegion>; arena: ReturnType<typeof ops.createArena> } {
  const arena = ops.createArena({ size: SIZE });
  if (fillPattern !== 0) arena.window(0n, Number(SIZE)).fill(fillPattern);
  return { arena, region: arenaRegion(arena) };
}

/** Deliver `bytes` in uneven chunks so frames straddle reads. */
function chunked(bytes: Buffer): Readable {
  const parts: Buffer[] = [];
  for (let i = 0, k = 0; i < bytes.length; k++) {
    const n = [1, 7, 4096, 65536, 333][k % 5]!;
    parts.push(bytes.subarray(i, i + n));
    i += n;
  }
  return Readable.from(parts);
}

test('a stream round-trips: the destination FB is byte-identical and the firmware context arrives in order', async () => {
  const src = sourceBytes();
  const { bytes } = await encode(src);
  const { arena, region } = newDest(0x5a);
  const r = await applyStream(chunked(bytes), { region, expect: compat });
  assert.ok(arena.window(0n, Number(SIZE)).equals(src), 'destination FB equals the source, zero runs included');
  assert.deepEqual(r.firmwareContext.map((b) => b.toString('hex')), FW.map((b) => b.toString('hex')));
  assert.equal(r.appliedPages, BigInt(PAGES + 6));
  assert.equal(r.passes, 3);
  arena.close();
});

async function expectRefused(stream: Buffer, label: string): Promise<void> {
  const { arena, region } = newDest();
  await assert.rejects(applyStream(chunked(stream), { region, expect: compat }), (e: unknown) => {
    assert.ok(e instanceof VgpuError, `${label}: typed error, got ${String(e)}`);
    assert.ok(e.code === ErrorCode.Checksum || e.code === ErrorCode.Migration, `${label}: code ${e.code}`);
    return true;
  }, label);
  assert.equal(await arena.verify(0n, SIZE, 0), null, `${label}: nothing of the stream is left in the destination FB`);
  arena.close();
}

test('every single-byte corruption of frame headers, payloads and the trailer is refused, nothing applied', async () => {
  const { bytes, frameStarts } = await encode(sourceBytes());
  const positions = new Set<number>();
  for (const s of frameStarts) {
    for (let k = 0; k < FRAME_HEADER_SIZE; k++) positions.add(s + k); // magic, type, flags, seq, length, crc
    positions.add(s + FRAME_HEADER_SIZE); // first payload byte
    positions.add(s + FRAME_HEADER_SIZE + 17);
  }
  positions.add(bytes.length - 1); // last trailer byte
  for (const p of [...positions].filter((x) => x < bytes.length)) {
    const bad = Buffer.from(bytes);
    bad[p] = bad[p]! ^ 0x40;
    await expectRefused(bad, `flip at ${p}`);
  }
});

test('a stream cut at any frame boundary or inside a frame is refused, nothing applied', async () => {
  const { bytes, frameStarts } = await encode(sourceBytes());
  const cuts = new Set<number>([0, 1]);
  for (const s of frameStarts.slice(1)) { cuts.add(s); cuts.add(s + 5); cuts.add(s + FRAME_HEADER_SIZE + 3); }
  cuts.add(bytes.length - 1);
  for (const c of [...cuts].filter((x) => x < bytes.length)) await expectRefused(bytes.subarray(0, c), `cut at ${c}`);
});

test('a dropped, duplicated or appended frame is refused', async () => {
  const { bytes, frameStarts } = await encode(sourceBytes());
  const [a, b, c] = [frameStarts[2]!, frameStarts[3]!, frameStarts[4]!];
  await expectRefused(Buffer.concat([bytes.subarray(0, a), bytes.subarray(b)]), 'dropped frame');
  await expectRefused(Buffer.concat([bytes.subarray(0, c), bytes.subarray(b, c), bytes.subarray(c)]), 'duplicated frame');
  await expectRefused(Buffer.concat([bytes, Buffer.from([1, 2, 3])]), 'bytes after the trailer');
});

test('an incompatible header is refused naming the field, before any byte of the destination FB is touched', async () => {
  const src = sourceBytes();
  const { bytes } = await encode(src);
  const changed: Record<string, unknown> = {
    vgpuTypeId: 870, vgpuTypeName: 'NVIDIA L40-2B', fbBytes: SIZE * 2n, chidCount: 32, firmwareVersion: '570.172',
    pciVdevId: 0x26b9, pageSize: 65536,
  };
  for (const field of COMPAT_FIELDS) {
    const expect = { ...compat, [field]: changed[field] } as MigrationCompat;
    const arena = ops.createArena({ size: expect.fbBytes });
    arena.window(0n, Number(expect.fbBytes)).fill(0x77);
    await assert.rejects(applyStream(chunked(bytes), { region: arenaRegion(arena), expect }), (e: unknown) => {
      assert.ok(e instanceof VgpuError && e.code === ErrorCode.Migration, `${field}: ${String(e)}`);
      assert.equal(e.details.field, field);
      assert.match(e.message, new RegExp(field));
      return true;
    });
    assert.equal(arena.window(0n, Number(expect.fbBytes)).every((x) => x === 0x77), true, `${field}: FB untouched`);
    arena.close();
  }
});

test('garbage that is not a migration stream is refused at the first frame', async () => {
  await expectRefused(randomBytes(4096), 'random bytes');
  await expectRefused(Buffer.alloc(0), 'empty');
});

test('a large zero run zeroes what is not zero and leaves the rest alone (the destination skips zero pieces)', async () => {
  // 130 MiB: three 64 MiB check pieces, the last short. Non-zero bytes in the 1st piece (mid-page) and the last
  // page; the 2nd piece is zero already. A zero run over everything must leave all of it zero.
  const size = 130n << 20n;
  const big: MigrationCompat = { ...compat, fbBytes: size };
  const arena = ops.createArena({ size });
  const w = arena.window(0n, Number(size));
  w.fill(0x77, 3 * PS + 100, 3 * PS + 200);
  w.fill(0x78, 9000 * PS, 9001 * PS); // same piece, far from the first non-zero word
  w.fill(0x66, Number(size) - 8);
  const sink = new PassThrough();
  const chunks: Buffer[] = [];
  sink.on('data', (c: Buffer) => { chunks.push(c); });
  const enc = new StreamEncoder(sink, PS);
  await enc.writeHeader(big);
  await enc.writeZeroPages(0, Number(size) / PS, 1);
  await enc.writeFirmwareContext(FW[0]!);
  await enc.finish();
  await applyStream(Readable.from([Buffer.concat(chunks)]), { region: arenaRegion(arena), expect: big });
  assert.equal(await arena.verify(0n, size, 0), null, 'the whole FB is zero');
  arena.close();
});

test('a stream of another format version is refused at its header with a message that says what to do', async () => {
  const { bytes } = await encode(sourceBytes());
  for (const version of [1, 3]) {
    // Rewrite the header frame's version field and its frame check, so only the version is wrong.
    const b = Buffer.from(bytes);
    const len = b.readUInt32LE(12);
    b.writeUInt16LE(version, FRAME_HEADER_SIZE + 8);
    b.writeBigUInt64LE(ops.hashBuffers([b.subarray(0, 16), b.subarray(FRAME_HEADER_SIZE, FRAME_HEADER_SIZE + len)]), 16);
    const { arena, region } = newDest(0x5a5a5a5a);
    await assert.rejects(applyStream(Readable.from([b]), { region, expect: compat }), (e: unknown) => e instanceof VgpuError
      && e.code === ErrorCode.Migration && e.message.includes(`version ${version} is not supported`) && /same vgpud release on both hosts/.test(e.hint ?? ''));
    assert.ok(arena.window(0n, Number(SIZE)).every((x, i) => x === [0x5a, 0x5a, 0x5a, 0x5a][i % 4]), `version ${version}: destination untouched`);
    arena.close();
  }
});
