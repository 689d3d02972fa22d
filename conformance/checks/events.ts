/**
 * Event delivery (core/contracts/firmware.ts `onEvent`/`events`, core/contracts/events.ts FirmwareEventRecord): an
 * event the firmware raises reaches every listener and every open stream as a record naming the GPU and the gfid it
 * concerns; an unsubscribed listener hears nothing more; a stream ends when its signal aborts and when the
 * firmware stops.
 */
import type { FirmwareEventRecord } from '../../core/contracts/events.js';
import { defineCheck } from '../check.js';

export const eventChecks = [
  defineCheck('events', 'firmware-event-delivery', 'a firmware event reaches listeners and streams tagged with its GPU and gfid; unsubscribe and abort work', async (ctx) => {
    const inject = ctx.need(ctx.fixture.firmwareEvents, 'firmware event injection (firmwareEvents.raiseRcError)');
    const gpu = await ctx.openBooted();
    const a: FirmwareEventRecord[] = [];
    const b: FirmwareEventRecord[] = [];
    const offA = gpu.firmware.onEvent((e) => { a.push(e); });
    let wakeB: (() => void) | undefined;
    const offB = gpu.firmware.onEvent((e) => { b.push(e); wakeB?.(); });
    ctx.defer('unsubscribing the listeners', () => { offA(); offB(); });
    const abort = new AbortController();
    ctx.defer('aborting the event stream', () => abort.abort());
    const streamed: FirmwareEventRecord[] = [];
    let wakeStream: (() => void) | undefined;
    const stream = (async () => {
      for await (const e of gpu.firmware.events(abort.signal)) {
        streamed.push(e);
        wakeStream?.();
      }
    })();
    stream.catch(() => {});

    const gfidOf = (list: FirmwareEventRecord[], gfid: number): FirmwareEventRecord | undefined => list.find((e) => e.gfid === gfid);
    await ctx.attempt('firmwareEvents.raiseRcError(gfid 1)', () => inject.raiseRcError(ctx.bdf, 1));
    const first = await ctx.waitFor<FirmwareEventRecord>('an RC error raised by the firmware for gfid 1 to reach onEvent', (done) => {
      wakeB = () => { const e = gfidOf(b, 1); if (e !== undefined) done(e); };
      wakeB();
    });
    ctx.expect(first.gpu === ctx.bdf, () => `the event record names GPU '${first.gpu}', not ${ctx.bdf}`);
    ctx.expect(Number.isInteger(first.eventId) && first.eventId >= 0, () => `the event record's eventId is ${String(first.eventId)}`);
    ctx.expect(typeof first.name === 'string' && first.name.length > 0, () => 'the event record has no name');
    ctx.expect(first.payload instanceof Uint8Array, () => 'the event record\'s payload is not a Uint8Array');
    ctx.expect(typeof first.at === 'number' && Number.isFinite(first.at), () => 'the event record has no timestamp (at)');
    ctx.expect(gfidOf(a, 1) !== undefined, () => 'of two onEvent listeners, only the second heard the RC error for gfid 1');
    const viaStream = await ctx.waitFor<FirmwareEventRecord>('the same event to reach a firmware.events() stream', (done) => {
      wakeStream = () => { const e = gfidOf(streamed, 1); if (e !== undefined) done(e); };
      wakeStream();
    });
    ctx.expect(viaStream.eventId === first.eventId, () => `the stream delivered event ${viaStream.eventId} where onEvent got ${first.eventId}`);

    offA();
    await ctx.attempt('firmwareEvents.raiseRcError(gfid 2)', () => inject.raiseRcError(ctx.bdf, 2));
    await ctx.waitFor('an RC error for gfid 2 to reach the listener still subscribed', (done) => {
      wakeB = () => { if (gfidOf(b, 2) !== undefined) done(undefined); };
      wakeB();
    });
    // Listeners are called one after the other for the same event: once B has it, A would have had it too.
    ctx.expect(gfidOf(a, 2) === undefined, () => 'a listener kept receiving events after its unsubscribe function was called');

    abort.abort();
    await ctx.within('the firmware.events() stream to end after its signal aborted', stream, ctx.settings.waitMs);
  }),

  defineCheck('events', 'stream-ends-when-firmware-stops', 'an open firmware.events() stream ends when the GPU is closed', async (ctx) => {
    const gpu = await ctx.openBooted();
    const stream = (async () => {
      for await (const _ of gpu.firmware.events()) { /* drain */ }
    })();
    stream.catch(() => {});
    await ctx.close(gpu);
    await ctx.within('a firmware.events() stream without a signal to end after close()', stream, ctx.settings.waitMs);
  }),
];
