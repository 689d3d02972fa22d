/**
 * FB reserve / free / map (core/contracts/memory.ts): reservations honour alignment, `below` and `at`, never
 * overlap, and a refused reservation changes nothing; free gives the bytes back and kills the range's mappings;
 * host mappings read and write the device's bytes — also above 4 GiB and through windows of a mapping larger than
 * 4 GiB, where a 32-bit offset would silently land on the wrong bytes; fill, and the optional verify and hashPages,
 * do what they say.
 */
import { ErrorCode } from '../../core/contracts/exceptions.js';
import type { PhysicalGpu } from '../../core/contracts/hal.js';
import type { FbRange, FbStats } from '../../core/contracts/memory.js';
import type { CheckContext } from '../check-context.js';
import { defineCheck } from '../check.js';
import { differing, hex, patternByte, patternBytes, size, span } from '../describe.js';

const KiB = 1n << 10n;
const MiB = 1n << 20n;
const GiB = 1n << 30n;
const OWNER = 'conformance';

function reserve(ctx: CheckContext, gpu: PhysicalGpu, req: { size: bigint; align?: bigint; at?: bigint; below?: bigint; label?: string }): FbRange {
  const what = `memory.reserve(${size(req.size)}${req.align !== undefined ? `, align ${size(req.align)}` : ''}` +
    `${req.at !== undefined ? `, at ${hex(req.at)}` : ''}${req.below !== undefined ? `, below ${hex(req.below)}` : ''})`;
  const r = ctx.attemptSync(what, () => gpu.memory.reserve({ ...req, owner: OWNER, label: req.label ?? 'conformance' }));
  ctx.defer(`freeing FB range #${r.id}`, () => { if (gpu.memory.list().some((x) => x.id === r.id)) gpu.memory.free(r); });
  return r;
}

function statsLine(s: FbStats): string {
  return `used ${size(s.used)}, free ${size(s.free)}, ${s.ranges} ranges`;
}

/** Read FB bytes through the fixture's device view (skips the check when the HAL offers none). */
async function deviceBytes(ctx: CheckContext, offset: bigint, length: number): Promise<Uint8Array> {
  const view = ctx.need(ctx.fixture.deviceView, 'device-side view of FB bytes (deviceView.readFb)');
  return ctx.attempt(`deviceView.readFb(${hex(offset)}, ${length})`, () => view.readFb(ctx.bdf, offset, length));
}

/** Write a pattern through a host mapping at `inRange` of `range`, then compare what the device holds there. */
async function roundTrip(ctx: CheckContext, gpu: PhysicalGpu, range: FbRange, mapOffset: bigint, inMapping: number, pattern: number, via: 'host' | 'device'): Promise<void> {
  const length = 8192;
  const map = ctx.attemptSync(`memory.map(range #${range.id}, offset ${hex(mapOffset)})`, () => gpu.memory.map(range, { offset: mapOffset }));
  ctx.attemptSync(`writing ${length} bytes at +${hex(inMapping)} of a mapping of ${size(map.size)}`, () => map.write(inMapping, patternBytes(pattern, length)));
  const absolute = range.offset + mapOffset + BigInt(inMapping);
  let seen: Uint8Array;
  if (via === 'device') {
    seen = await deviceBytes(ctx, absolute, length);
  } else {
    const again = ctx.attemptSync(`a second memory.map(range #${range.id})`, () => gpu.memory.map(range));
    seen = ctx.attemptSync(`reading ${length} bytes back at +${hex(mapOffset + BigInt(inMapping))}`, () => again.read(Number(mapOffset) + inMapping, length));
    again.unmap();
  }
  map.unmap();
  const bad = differing(seen, (i) => patternByte(pattern, i));
  ctx.expect(bad.count === 0, () => `${length} bytes written through a host mapping at FB offset ${hex(absolute)} read back with ${bad.count} wrong ` +
    `(first at ${hex(absolute + BigInt(bad.first))}) ${via === 'device' ? 'in the device\'s view' : 'through another mapping'}`);
}

export const memoryChecks = [
  defineCheck('memory', 'stats', 'stats() add up: total is the FB size, used + free is total, ranges counts list()', async (ctx) => {
    const gpu = await ctx.open();
    const s = gpu.memory.stats();
    ctx.expect(s.total === gpu.memory.totalBytes, () => `stats().total is ${size(s.total)}, memory.totalBytes ${size(gpu.memory.totalBytes)}`);
    ctx.expect(s.used + s.free === s.total, () => `stats() says used ${size(s.used)} + free ${size(s.free)} ≠ total ${size(s.total)}`);
    ctx.expect(s.largestFree <= s.free, () => `stats().largestFree ${size(s.largestFree)} exceeds free ${size(s.free)}`);
    const r = reserve(ctx, gpu, { size: 4n * MiB });
    const t = gpu.memory.stats();
    ctx.expect(t.used === s.used + r.size && t.ranges === gpu.memory.list().length,
      () => `after reserving ${size(r.size)}, stats() says ${statsLine(t)} (before: ${statsLine(s)}; list() has ${gpu.memory.list().length})`);
  }),

  defineCheck('memory', 'alignment', 'reserve() places each range at its requested power-of-two alignment (the page by default)', async (ctx) => {
    const gpu = await ctx.open();
    const big = gpu.memory.totalBytes >= 4n * GiB ? 256n * MiB : 32n * MiB;
    // A misaligning page first, so a first-fit allocator cannot pass by luck.
    reserve(ctx, gpu, { size: 4n * KiB });
    for (const align of [undefined, 64n * KiB, 2n * MiB, big]) {
      const r = reserve(ctx, gpu, { size: MiB, ...(align !== undefined ? { align } : {}) });
      const want = align ?? 4n * KiB;
      ctx.expect(r.offset % want === 0n, () => `memory.reserve(1 MiB${align !== undefined ? `, align ${size(align)}` : ''}) placed the range at ${hex(r.offset)}, ` +
        `not ${size(want)}-aligned`);
      ctx.expect(r.size === MiB, () => `memory.reserve(1 MiB) returned a range of ${size(r.size)}`);
      ctx.expect(r.owner === OWNER && r.label === 'conformance', () => `the range records owner '${r.owner}' / label '${r.label}', not what was asked`);
      ctx.expect(r.offset + r.size <= gpu.memory.totalBytes, () => `range ${span(r.offset, r.size)} ends past the ${size(gpu.memory.totalBytes)} FB`);
      ctx.expect(gpu.memory.list().some((x) => x.id === r.id), () => `range #${r.id} is not in memory.list()`);
    }
    const below = gpu.memory.totalBytes / 2n - (gpu.memory.totalBytes / 2n) % MiB;
    const low = reserve(ctx, gpu, { size: MiB, below });
    ctx.expect(low.offset + low.size <= below, () => `memory.reserve(1 MiB, below ${hex(below)}) placed the range at ${span(low.offset, low.size)}`);
  }),

  defineCheck('memory', 'exclusive', 'ranges never overlap; a taken offset and an oversized request are refused with VGPU_ENOSPC and change nothing', async (ctx) => {
    const gpu = await ctx.open();
    const ranges = Array.from({ length: 8 }, (_, i) => reserve(ctx, gpu, { size: MiB * BigInt(i + 1), align: 64n * KiB }));
    for (const [i, x] of ranges.entries()) {
      for (const y of ranges.slice(i + 1)) {
        ctx.expect(x.offset + x.size <= y.offset || y.offset + y.size <= x.offset,
          () => `memory.reserve() handed out overlapping ranges ${span(x.offset, x.size)} and ${span(y.offset, y.size)}`);
      }
    }
    const taken = ranges[3]!;
    const before = gpu.memory.stats();
    ctx.throws(`memory.reserve(1 MiB, at ${hex(taken.offset)}) where range #${taken.id} already lies`, () =>
      gpu.memory.reserve({ size: MiB, at: taken.offset, owner: OWNER, label: 'conformance' }), [ErrorCode.NoSpace, ErrorCode.Busy]);
    ctx.throws(`memory.reserve(${size(before.free + MiB)}), more than the ${size(before.free)} free`, () =>
      gpu.memory.reserve({ size: before.free + MiB, owner: OWNER, label: 'conformance' }), [ErrorCode.NoSpace]);
    const after = gpu.memory.stats();
    ctx.expect(after.used === before.used && after.ranges === before.ranges,
      () => `refused reservations changed the books: before ${statsLine(before)}, after ${statsLine(after)}`);
  }),

  defineCheck('memory', 'free', 'free() gives the bytes back and unmaps the range; a second free, and a map of a freed range, throw a VgpuError', async (ctx) => {
    const gpu = await ctx.open();
    const before = gpu.memory.stats();
    const r = ctx.attemptSync('memory.reserve(2 MiB)', () => gpu.memory.reserve({ size: 2n * MiB, owner: OWNER, label: 'conformance' }));
    const map = ctx.attemptSync(`memory.map(range #${r.id})`, () => gpu.memory.map(r));
    ctx.attemptSync(`memory.free(range #${r.id})`, () => gpu.memory.free(r));
    const after = gpu.memory.stats();
    ctx.expect(after.used === before.used && after.ranges === before.ranges,
      () => `after reserve + free of 2 MiB the books say ${statsLine(after)}, before ${statsLine(before)}`);
    ctx.expect(!gpu.memory.list().some((x) => x.id === r.id), () => `freed range #${r.id} is still in memory.list()`);
    ctx.throws(`window() of a mapping whose range was freed`, () => map.window(0, 4096), []);
    ctx.throws(`a second memory.free(range #${r.id})`, () => gpu.memory.free(r), []);
    ctx.throws(`memory.map() of the freed range #${r.id}`, () => gpu.memory.map(r), []);
  }),

  defineCheck('memory', 'host-mapping', 'a host mapping reads back what it wrote, refuses windows outside it, and is dead after unmap()', async (ctx) => {
    const gpu = await ctx.open();
    const r = reserve(ctx, gpu, { size: 4n * MiB });
    await roundTrip(ctx, gpu, r, MiB, 12, 0xa5c3_5a3c, 'host');
    const map = ctx.attemptSync(`memory.map(range #${r.id}, 1 MiB at +1 MiB)`, () => gpu.memory.map(r, { offset: MiB, size: MiB }));
    ctx.expect(map.size === MiB && map.offset === MiB, () => `memory.map(…, { offset: 1 MiB, size: 1 MiB }) returned a mapping of ${size(map.size)} at +${hex(map.offset)}`);
    ctx.throws('window(1 MiB - 4 KiB, 8 KiB) of a 1 MiB mapping (past its end)', () => map.window(Number(MiB) - 4096, 8192), []);
    ctx.throws('memory.map() of 8 MiB of a 4 MiB range', () => gpu.memory.map(r, { size: 8n * MiB }), []);
    map.unmap();
    ctx.throws('read() of a mapping after unmap()', () => map.read(0, 4), []);
  }),

  defineCheck('memory', 'device-view', 'bytes written through a host mapping are the bytes the device holds', async (ctx) => {
    ctx.need(ctx.fixture.deviceView, 'device-side view of FB bytes (deviceView.readFb)');
    const gpu = await ctx.open();
    const r = reserve(ctx, gpu, { size: 4n * MiB, align: 2n * MiB });
    await roundTrip(ctx, gpu, r, MiB, 4092, 0x1357_9bdf, 'device');
  }),

  defineCheck('memory', 'above-4gib', 'ranges above 4 GiB, and windows past 4 GiB into a larger mapping, reach the right device bytes', async (ctx) => {
    const gpu = await ctx.open();
    const total = gpu.memory.totalBytes;
    if (total < 4n * GiB + 16n * MiB) return ctx.skip(`the FB (${size(total)}) has no bytes above 4 GiB`);
    const via = ctx.fixture.deviceView !== undefined ? 'device' : 'host';
    const high = reserve(ctx, gpu, { size: 4n * MiB, at: 4n * GiB + 8n * MiB });
    await roundTrip(ctx, gpu, high, 0n, 4092, 0x2468_ace0, via);
    ctx.attemptSync(`memory.free(range #${high.id})`, () => gpu.memory.free(high));
    if (total >= 4n * GiB + 128n * MiB) {
      // One range larger than 4 GiB, mapped whole: a window at +4 GiB + 4 KiB of that mapping.
      const large = reserve(ctx, gpu, { size: 4n * GiB + 64n * MiB, align: 2n * MiB });
      await roundTrip(ctx, gpu, large, 0n, Number(4n * GiB + 4096n), 0x0f1e_2d3c, via);
    } else {
      // The same through a mapping that starts at +4 GiB - 4 MiB of a range crossing 4 GiB.
      const crossing = reserve(ctx, gpu, { size: 4n * GiB + 16n * MiB, align: 2n * MiB });
      await roundTrip(ctx, gpu, crossing, 4n * GiB - 4n * MiB, Number(4n * MiB + 4096n), 0x0f1e_2d3c, via);
    }
  }),

  defineCheck('memory', 'fill', 'fill() writes its 32-bit pattern over exactly the asked part of a range', async (ctx) => {
    const gpu = await ctx.open();
    const r = reserve(ctx, gpu, { size: 2n * MiB });
    await ctx.attempt(`memory.fill(range #${r.id}, 0xa5a5a5a5)`, () => gpu.memory.fill(r, 0xa5a5a5a5));
    await ctx.attempt(`memory.fill(range #${r.id}, 0x0, 8 KiB at +64 KiB)`, () => gpu.memory.fill(r, 0, { offset: 64n * KiB, size: 8n * KiB }));
    const map = ctx.attemptSync(`memory.map(range #${r.id})`, () => gpu.memory.map(r));
    const bytes = ctx.attemptSync('reading the filled range', () => map.read(0, Number(r.size)));
    map.unmap();
    const lo = Number(64n * KiB);
    const hi = lo + Number(8n * KiB);
    const bad = differing(bytes, (i) => (i >= lo && i < hi ? 0 : 0xa5));
    ctx.expect(bad.count === 0, () => `after fill(0xa5a5a5a5) of ${span(r.offset, r.size)} and fill(0) of 8 KiB at +64 KiB, ${bad.count} bytes hold the wrong value ` +
      `(first at FB offset ${hex(r.offset + BigInt(bad.first))})`);
    await ctx.rejects(`memory.fill() of 6 bytes (not whole 32-bit words)`, () => gpu.memory.fill(r, 1, { offset: 0n, size: 6n }), []);
  }),

  defineCheck('memory', 'verify', 'the optional verify() finds the first word that differs from the pattern, or none', async (ctx) => {
    const gpu = await ctx.open();
    const verify = ctx.need(gpu.memory.verify?.bind(gpu.memory), 'FramebufferMemory.verify (optional in the contract)');
    const r = reserve(ctx, gpu, { size: 2n * MiB });
    await ctx.attempt(`memory.fill(range #${r.id}, 0x5a5a5a5a)`, () => gpu.memory.fill(r, 0x5a5a5a5a));
    const clean = await ctx.attempt('verify() of the filled range', () => verify(r, 0x5a5a5a5a));
    ctx.expect(clean === null, () => `verify() of a range filled with 0x5a5a5a5a reported a difference at +${hex(clean!)}`);
    const at = 1n * MiB + 4096n + 8n;
    const map = ctx.attemptSync(`memory.map(range #${r.id})`, () => gpu.memory.map(r));
    map.write(Number(at), Uint8Array.of(0, 0, 0, 0));
    map.unmap();
    const found = await ctx.attempt('verify() after changing one word', () => verify(r, 0x5a5a5a5a));
    ctx.expect(found === at, () => `verify() after changing the word at +${hex(at)} reported ${found === null ? 'no difference' : `+${hex(found)}`}`);
  }),

  defineCheck('memory', 'hash-pages', 'the optional hashPages() gives equal pages equal hashes and changes only the hash of a changed page', async (ctx) => {
    const gpu = await ctx.open();
    const hashPages = ctx.need(gpu.memory.hashPages, 'FramebufferMemory.hashPages (optional in the contract)');
    const r = reserve(ctx, gpu, { size: 64n * KiB });
    await ctx.attempt(`memory.fill(range #${r.id}, 0x01020304)`, () => gpu.memory.fill(r, 0x01020304));
    const before = await ctx.attempt('hashPages() of 16 pages', () => hashPages(r));
    ctx.expect(before.length === 16, () => `hashPages() of a 64 KiB range returned ${before.length} hashes, not 16 (4 KiB pages)`);
    ctx.expect(new Set(before).size === 1, () => 'hashPages() gave 16 pages with equal bytes different hashes');
    const map = ctx.attemptSync(`memory.map(range #${r.id})`, () => gpu.memory.map(r));
    map.write(5 * 4096 + 100, Uint8Array.of(0xff));
    map.unmap();
    const after = await ctx.attempt('hashPages() after changing page 5', () => hashPages(r));
    const changed = [...after.keys()].filter((i) => after[i] !== before[i]);
    ctx.expect(changed.length === 1 && changed[0] === 5, () => `after changing one byte of page 5, hashPages() changed the hashes of pages [${changed.join(', ')}]`);
  }),
];
