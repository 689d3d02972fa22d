/**
 * Copy-engine scrub correctness (core/contracts/channels.ts `CopyChannel`, core/contracts/scrubber.ts): the daemon's
 * own scrubber (plugins/scrub, the upstream procedure: CE channel on the last CHID, memset pushbuffer, semaphore and
 * non-stall interrupt) runs on the HAL's copy channel over a range between two neighbours filled with a pattern.
 * Afterwards every byte of the range is zero, both neighbours are untouched, and the scrub's channel and semaphore
 * page are gone from the books. With a device view the bytes are read the way the device holds them, so a HAL whose
 * host mapping and device disagree cannot pass.
 */
import type { PhysicalGpu } from '../../core/contracts/hal.js';
import type { FbRange } from '../../core/contracts/memory.js';
import { monotonicClock } from '../../core/clock.js';
import { EventBusImpl } from '../../core/event-bus.js';
import { CeScrubber } from '../../plugins/scrub/ce-scrubber.js';
import { parseScrubConfig } from '../../plugins/scrub/scrub-config.js';
import type { CheckContext } from '../check-context.js';
import { defineCheck } from '../check.js';
import { differing, hex, patternByte, plural, size, span } from '../describe.js';

const MiB = 1n << 20n;
const PAGE = 4096;
const PATTERN = 0xa5a5a5a5;
const OWNER = 'conformance';

type View = 'device' | 'host';

async function readBytes(ctx: CheckContext, gpu: PhysicalGpu, via: View, range: FbRange, offset: bigint, length: number): Promise<Uint8Array> {
  const at = range.offset + offset;
  if (via === 'device') {
    return ctx.attempt(`deviceView.readFb(${hex(at)}, ${length})`, () => ctx.fixture.deviceView!.readFb(ctx.bdf, at, length));
  }
  const map = ctx.attemptSync(`memory.map(range #${range.id})`, () => gpu.memory.map(range));
  try {
    return ctx.attemptSync(`reading ${length} bytes at FB offset ${hex(at)} through a host mapping`, () => Uint8Array.from(map.read(Number(offset), length)));
  } finally {
    map.unmap();
  }
}

async function scrubBetweenNeighbours(ctx: CheckContext, via: View): Promise<void> {
  const gpu = await ctx.openBooted();
  if (!gpu.caps.has('ce-chan-alloc') || !gpu.caps.has('pushbuf-submit')) {
    ctx.skip("the HAL offers no copy-engine scrub (caps lack 'ce-chan-alloc' or 'pushbuf-submit')");
  }
  const where = via === 'device' ? "read through the device's view" : 'read through a host mapping';
  // Three adjacent ranges: A (1 MiB) | B (2 MiB, scrubbed) | C (1 MiB).
  const block = ctx.attemptSync('memory.reserve(4 MiB, align 2 MiB)', () => gpu.memory.reserve({ size: 4n * MiB, align: 2n * MiB, owner: OWNER, label: 'probe' }));
  ctx.attemptSync('memory.free(the probe range)', () => gpu.memory.free(block));
  const at = (offset: bigint, length: bigint, label: string): FbRange => {
    const r = ctx.attemptSync(`memory.reserve(${size(length)} at ${hex(block.offset + offset)})`, () =>
      gpu.memory.reserve({ size: length, at: block.offset + offset, owner: OWNER, label }));
    ctx.defer(`freeing FB range #${r.id}`, () => { if (gpu.memory.list().some((x) => x.id === r.id)) gpu.memory.free(r); });
    return r;
  };
  const a = at(0n, MiB, 'neighbour-below');
  const b = at(MiB, 2n * MiB, 'scrubbed');
  const c = at(3n * MiB, MiB, 'neighbour-above');
  for (const r of [a, b, c]) await ctx.attempt(`memory.fill(range #${r.id}, ${hex(PATTERN)})`, () => gpu.memory.fill(r, PATTERN));
  const seeded = await readBytes(ctx, gpu, via, b, 0n, PAGE);
  const unseeded = differing(seeded, (i) => patternByte(PATTERN, i));
  ctx.expect(unseeded.count === 0, () => `memory.fill(${hex(PATTERN)}) of ${span(b.offset, b.size)} is not what the FB holds (${where}): ` +
    `${unseeded.count} of the first ${PAGE} bytes differ`);

  const chids = ctx.attemptSync('channels.alloc(8)', () => gpu.channels.alloc(8, OWNER));
  ctx.defer('freeing the CHID range', () => gpu.channels.free(chids));
  const fbBefore = gpu.memory.list().map((r) => r.id).join(',');
  const chidsBefore = JSON.stringify(gpu.channels.list());
  const scrubber = new CeScrubber(new EventBusImpl(ctx.logger), ctx.logger, monotonicClock, () =>
    ({ ...parseScrubConfig({ hostFallback: false }, ctx.settings.scrubTimeoutMs) }));
  await ctx.attempt(`the copy-engine scrub of ${span(b.offset, b.size)} (channel on CHID ${chids.offset + chids.count - 1})`, () =>
    scrubber.scrub({ gpu, range: b, chids, vgpuId: OWNER, reason: 'destroy', timeoutMs: ctx.settings.scrubTimeoutMs }), ctx.settings.scrubTimeoutMs + 5000);

  const wiped = await readBytes(ctx, gpu, via, b, 0n, Number(b.size));
  const left = differing(wiped, () => 0);
  ctx.expect(left.count === 0, () => `scrub of FB range #${b.id} ${span(b.offset, b.size)} left ${plural(left.count, 'non-zero byte')}, ` +
    `first at FB offset ${hex(b.offset + BigInt(left.first))} (${where})`);
  const below = await readBytes(ctx, gpu, via, a, a.size - BigInt(PAGE), PAGE);
  const above = await readBytes(ctx, gpu, via, c, 0n, PAGE);
  for (const [name, bytes, base] of [['below', below, a.offset + a.size - BigInt(PAGE)], ['above', above, c.offset]] as const) {
    const hit = differing(bytes, (i) => patternByte(PATTERN, i));
    ctx.expect(hit.count === 0, () => `scrub of ${span(b.offset, b.size)} wrote outside its range: ${plural(hit.count, 'byte')} of the neighbour ${name} changed, ` +
      `first at FB offset ${hex(base + BigInt(hit.first))} (${where})`);
  }
  const fbAfter = gpu.memory.list().map((r) => r.id).join(',');
  ctx.expect(fbAfter === fbBefore, () => `after the scrub the FB books list ranges [${fbAfter}], before it [${fbBefore}]: the scrub's semaphore page was not freed`);
  ctx.expect(JSON.stringify(gpu.channels.list()) === chidsBefore, () => `after the scrub the CHID books changed: ${JSON.stringify(gpu.channels.list())}`);
}

export const scrubChecks = [
  defineCheck('scrub', 'zeroes-range', 'a copy-engine scrub zeroes exactly its range (read through a host mapping) and frees its channel and semaphore', (ctx) =>
    scrubBetweenNeighbours(ctx, 'host')),
  defineCheck('scrub', 'device-view', 'a copy-engine scrub zeroes exactly its range as the device itself holds the bytes', async (ctx) => {
    ctx.need(ctx.fixture.deviceView, 'device-side view of FB bytes (deviceView.readFb)');
    await scrubBetweenNeighbours(ctx, 'device');
  }),
];
