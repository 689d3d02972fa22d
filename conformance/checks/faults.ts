/**
 * The firmware's failure modes as a caller sees them (core/contracts/firmware.ts `RpcOptions.timeoutMs`, the
 * VGPU_ETIMEDOUT / VGPU_ECHECKSUM / VGPU_ELOST codes), where the fixture can cause them on the device: a lost reply
 * times out its own caller and nobody else, a damaged reply fails its caller, and after either the GPU answers the
 * next call. A dead firmware fails every call at once with VGPU_ELOST (never by running into a timeout), and a
 * close, re-open and boot bring the GPU back.
 */
import { ErrorCode } from '../../core/contracts/exceptions.js';
import type { RmClient } from '../../core/contracts/firmware.js';
import type { PhysicalGpu } from '../../core/contracts/hal.js';
import { GSP_GET_FEATURES_PARAMS, RmControl, decodeGspFeatures } from '../../core/firmware-abi/rm-controls.js';
import type { CheckContext } from '../check-context.js';
import { defineCheck } from '../check.js';

function getFeatures(gpu: PhysicalGpu, client: RmClient, timeoutMs: number): Promise<Uint8Array> {
  return gpu.firmware.control(client, RmControl.GSP_GET_FEATURES, new Uint8Array(GSP_GET_FEATURES_PARAMS.size), { timeoutMs });
}

async function bootedWithClient(ctx: CheckContext): Promise<{ gpu: PhysicalGpu; client: RmClient }> {
  const gpu = await ctx.openBooted();
  const client = await ctx.attempt('firmware.allocClient()', () => gpu.firmware.allocClient({ timeoutMs: ctx.settings.rpcTimeoutMs }));
  return { gpu, client };
}

async function answersNext(ctx: CheckContext, gpu: PhysicalGpu, client: RmClient, after: string): Promise<void> {
  const reply = await ctx.attempt(`the control after ${after}`, () => getFeatures(gpu, client, ctx.settings.rpcTimeoutMs));
  ctx.expect(decodeGspFeatures(reply).firmwareVersion === gpu.firmware.info().version,
    () => `the control after ${after} resolved with a reply that is not its own (GSP_GET_FEATURES answered '${decodeGspFeatures(reply).firmwareVersion}')`);
}

export const faultChecks = [
  defineCheck('faults', 'lost-reply-times-out', 'a control whose reply is lost fails with VGPU_ETIMEDOUT after its timeoutMs, and the next control works', async (ctx) => {
    const drop = ctx.need(ctx.fixture.faults?.dropNextReply, 'fault injection of a lost reply (faults.dropNextReply)');
    const { gpu, client } = await bootedWithClient(ctx);
    await ctx.attempt('arming faults.dropNextReply', () => drop(ctx.bdf));
    const t = ctx.settings.shortTimeoutMs;
    await ctx.rejects(`a control whose reply was dropped, with timeoutMs ${t},`, () => getFeatures(gpu, client, t), [ErrorCode.RpcTimeout],
      { ms: ctx.settings.waitMs });
    await answersNext(ctx, gpu, client, 'a lost reply');
  }),

  defineCheck('faults', 'corrupt-reply-fails-caller', 'a control whose reply arrives damaged fails with VGPU_ECHECKSUM (or VGPU_ETIMEDOUT), and the next control works', async (ctx) => {
    const corrupt = ctx.need(ctx.fixture.faults?.corruptNextReply, 'fault injection of a corrupted reply (faults.corruptNextReply)');
    const { gpu, client } = await bootedWithClient(ctx);
    await ctx.attempt('arming faults.corruptNextReply', () => corrupt(ctx.bdf));
    // A damaged header can hide whose reply it was: then the caller cannot be told and times out instead.
    const t = Math.max(ctx.settings.shortTimeoutMs, 1000);
    await ctx.rejects(`a control whose reply was corrupted, with timeoutMs ${t},`, () => getFeatures(gpu, client, t),
      [ErrorCode.Checksum, ErrorCode.RpcTimeout], { ms: ctx.settings.waitMs });
    await answersNext(ctx, gpu, client, 'a corrupted reply');
  }),

  defineCheck('faults', 'crash-fails-fast', 'after a firmware crash every call fails at once with VGPU_ELOST, the state says crashed, and close/open/boot recovers', async (ctx) => {
    const crash = ctx.need(ctx.fixture.faults?.crash, 'fault injection of a firmware crash (faults.crash)');
    const { gpu, client } = await bootedWithClient(ctx);
    await ctx.attempt('faults.crash', () => crash(ctx.bdf));
    // The call gets a long timeout: only a HAL that noticed the crash answers within the kit's wait.
    const long = Math.max(ctx.settings.waitMs * 4, 60_000);
    await ctx.rejects(`a control sent after the firmware crashed (timeoutMs ${long})`, () => getFeatures(gpu, client, long), [ErrorCode.GpuLost],
      { ms: ctx.settings.waitMs });
    ctx.expect(gpu.firmware.state === 'crashed', () => `after the crash, firmware.state is '${gpu.firmware.state}', not 'crashed'`);
    await ctx.rejects('firmware.allocClient() after the crash', () => gpu.firmware.allocClient({ timeoutMs: long }), [ErrorCode.GpuLost],
      { ms: ctx.settings.waitMs });
    await ctx.close(gpu);
    const again = await ctx.openBooted();
    const c2 = await ctx.attempt('firmware.allocClient() after recovering from the crash', () =>
      again.firmware.allocClient({ timeoutMs: ctx.settings.rpcTimeoutMs }));
    await answersNext(ctx, again, c2, 'recovering from a crash');
    await ctx.attempt('firmware.freeClient() after recovering from the crash', () => again.firmware.freeClient(c2));
  }),
];
