/**
 * Channel-id ranges (core/contracts/channels.ts `ChannelPool`): the pool is the size the hardware config says,
 * ranges are contiguous, inside the pool and disjoint, `at` places exactly, a taken or oversized request is refused
 * with VGPU_ENOSPC, free gives the ids back and refuses a second free. A copy-engine channel binds to a CHID its
 * caller holds, once.
 */
import { ErrorCode } from '../../core/contracts/exceptions.js';
import type { ChannelRange } from '../../core/contracts/channels.js';
import { defineCheck } from '../check.js';

const OWNER = 'conformance';
const show = (r: ChannelRange): string => `CHIDs [${r.offset}, ${r.offset + r.count})`;

export const channelChecks = [
  defineCheck('channels', 'id-ranges', 'CHID ranges are contiguous, inside the pool and disjoint; taken or oversized requests get VGPU_ENOSPC; free returns them', async (ctx) => {
    const gpu = await ctx.open();
    const pool = gpu.channels;
    const total = pool.total;
    ctx.expect(total === gpu.config.channelCount, () => `channels.total is ${total}, config.channelCount ${gpu.config.channelCount}`);
    const s0 = pool.stats();
    ctx.expect(s0.total === total && s0.used === 0, () => `a freshly opened GPU's CHID pool says ${s0.used} of ${s0.total} used (pool of ${total})`);
    const n = Math.max(1, Math.min(64, Math.floor(total / 4)));
    const a = ctx.attemptSync(`channels.alloc(${n})`, () => pool.alloc(n, OWNER));
    const b = ctx.attemptSync(`a second channels.alloc(${n})`, () => pool.alloc(n, OWNER));
    for (const r of [a, b]) {
      ctx.expect(Number.isInteger(r.offset) && r.offset >= 0 && r.offset + r.count <= total && r.count === n && r.owner === OWNER,
        () => `channels.alloc(${n}, '${OWNER}') returned ${show(r)} owned by '${r.owner}' (pool 0..${total - 1})`);
    }
    ctx.expect(a.offset + a.count <= b.offset || b.offset + b.count <= a.offset, () => `channels.alloc() handed out overlapping ${show(a)} and ${show(b)}`);
    const free = pool.stats().total - pool.stats().used;
    const at = total - 1;
    const taken = pool.list().some((r) => at >= r.offset && at < r.offset + r.count);
    let c: ChannelRange | undefined;
    if (!taken) {
      c = ctx.attemptSync(`channels.alloc(1, at ${at})`, () => pool.alloc(1, OWNER, { at }));
      ctx.expect(c.offset === at && c.count === 1, () => `channels.alloc(1, at ${at}) returned ${show(c!)}`);
    }
    ctx.throws(`channels.alloc(1, at ${a.offset}) inside the allocated ${show(a)}`, () => pool.alloc(1, OWNER, { at: a.offset }), [ErrorCode.NoSpace]);
    ctx.throws(`channels.alloc(${free + 1}) with ${free} CHIDs free`, () => pool.alloc(free + 1, OWNER), [ErrorCode.NoSpace]);
    const used = pool.stats().used;
    ctx.expect(used === 2 * n + (c !== undefined ? 1 : 0), () => `channels.stats().used is ${used} after allocating ${2 * n + (c !== undefined ? 1 : 0)} CHIDs`);
    for (const r of [a, b, ...(c !== undefined ? [c] : [])]) ctx.attemptSync(`channels.free(${show(r)})`, () => pool.free(r));
    ctx.throws(`a second channels.free(${show(a)})`, () => pool.free(a), []);
    ctx.expect(pool.stats().used === 0 && pool.list().length === 0, () => `after freeing every range the pool still lists ${JSON.stringify(pool.list())}`);
  }),

  defineCheck('channels', 'copy-channel', 'a copy-engine channel binds to a CHID its caller allocated, once; it is refused on a CHID nobody holds', async (ctx) => {
    const gpu = await ctx.openBooted();
    if (!gpu.caps.has('ce-chan-alloc')) return ctx.skip("the HAL offers no copy-engine channel (caps lack 'ce-chan-alloc')");
    const range = ctx.attemptSync('channels.alloc(8)', () => gpu.channels.alloc(8, OWNER));
    ctx.defer(`channels.free(${show(range)})`, () => gpu.channels.free(range));
    const chid = range.offset + range.count - 1;
    const ch = await ctx.attempt(`channels.allocCopyChannel(${chid})`, () => gpu.channels.allocCopyChannel(chid, OWNER));
    ctx.defer(`freeing the copy channel on CHID ${chid}`, () => ch.free());
    ctx.expect(ch.chid === chid, () => `allocCopyChannel(${chid}) returned a channel on CHID ${ch.chid}`);
    ctx.expect(Number.isInteger(ch.pushbufDwords) && ch.pushbufDwords > 0, () => `the copy channel's pushbuffer holds ${ch.pushbufDwords} dwords`);
    await ctx.rejects(`a second allocCopyChannel(${chid}) while the first is live`, () => gpu.channels.allocCopyChannel(chid, OWNER), []);
    const outside = chidOutside(gpu.channels.total, range);
    if (outside !== undefined) {
      await ctx.rejects(`allocCopyChannel(${outside}) on a CHID no range holds`, () => gpu.channels.allocCopyChannel(outside, OWNER), []);
    }
    await ctx.attempt(`freeing the copy channel on CHID ${chid}`, () => ch.free());
    const again = await ctx.attempt(`allocCopyChannel(${chid}) after the first was freed`, () => gpu.channels.allocCopyChannel(chid, OWNER));
    await ctx.attempt(`freeing the second copy channel on CHID ${chid}`, () => again.free());
  }),
];

/** A CHID of the pool outside `held`. */
function chidOutside(total: number, held: ChannelRange): number | undefined {
  if (held.offset > 0) return 0;
  return held.offset + held.count < total ? total - 1 : undefined;
}
