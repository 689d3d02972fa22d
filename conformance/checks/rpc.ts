/**
 * The RPC round trip (core/contracts/firmware.ts `allocClient`, `control`, `freeClient`): an RM client is allocated
 * with distinct handles, a control resolves with ITS reply (also with others in flight), a client can be allocated
 * under a handle the caller chose (the journal's write-ahead depends on it), and a freed client is refused.
 *
 * The controls are the ones the vGPU manager itself sends at bring-up (GSP_GET_FEATURES, GPU_GET_VMMU_SEGMENT_SIZE,
 * GPU_QUERY_ECC_STATUS), so any firmware that can run vGPUs answers them.
 */
import type { RmClient } from '../../core/contracts/firmware.js';
import {
  GPU_GET_VMMU_SEGMENT_SIZE_PARAMS, GPU_QUERY_ECC_STATUS_PARAMS, GSP_GET_FEATURES_PARAMS, RmControl, decodeEccStatus, decodeGspFeatures,
  decodeVmmuSegmentSize,
} from '../../core/firmware-abi/rm-controls.js';
import type { PhysicalGpu } from '../../core/contracts/hal.js';
import type { CheckContext } from '../check-context.js';
import { defineCheck } from '../check.js';
import { describeError, hex } from '../describe.js';

async function features(ctx: CheckContext, gpu: PhysicalGpu, client: RmClient, what = 'control GSP_GET_FEATURES'): Promise<string> {
  const params = new Uint8Array(GSP_GET_FEATURES_PARAMS.size);
  const reply = await ctx.attempt(`${what} on client ${hex(client.hClient)}`, () =>
    gpu.firmware.control(client, RmControl.GSP_GET_FEATURES, params, { timeoutMs: ctx.settings.rpcTimeoutMs }));
  ctx.expect(reply instanceof Uint8Array && reply.length === params.length,
    () => `${what} answered ${reply?.length} bytes for its ${params.length}-byte parameter block (a reply has the size of the block)`);
  return decodeGspFeatures(reply).firmwareVersion;
}

export const rpcChecks = [
  defineCheck('rpc', 'client-round-trip', 'an RM client is allocated, answers a control with the running version, and is freed (twice without error)', async (ctx) => {
    const gpu = await ctx.openBooted();
    const before = ctx.fixture.inspect === undefined ? undefined : await ctx.attempt('inspect.rmClients()', () => ctx.fixture.inspect!.rmClients(ctx.bdf));
    const client = await ctx.attempt('firmware.allocClient()', () => gpu.firmware.allocClient({ timeoutMs: ctx.settings.rpcTimeoutMs }));
    const handles = [client.hClient, client.hDevice, client.hSubdevice];
    ctx.expect(handles.every((h) => Number.isInteger(h) && h > 0 && h <= 0xffffffff),
      () => `allocClient() returned handles ${handles.map(hex).join(', ')}: RM handles are non-zero 32-bit values`);
    ctx.expect(new Set(handles).size === 3, () => `allocClient() returned handles ${handles.map(hex).join(', ')}: client, device and subdevice must differ`);
    const version = await features(ctx, gpu, client);
    ctx.expect(version === gpu.firmware.info().version,
      () => `control GSP_GET_FEATURES answered firmware version '${version}', boot() reported '${gpu.firmware.info().version}'`);
    if (before !== undefined) {
      const during = await ctx.attempt('inspect.rmClients()', () => ctx.fixture.inspect!.rmClients(ctx.bdf));
      ctx.expect(during === before + 1, () => `the firmware holds ${during} RM clients after one allocClient(), ${before} before it`);
    }
    await ctx.attempt(`firmware.freeClient(${hex(client.hClient)})`, () => gpu.firmware.freeClient(client, { timeoutMs: ctx.settings.rpcTimeoutMs }));
    await ctx.attempt(`a second firmware.freeClient(${hex(client.hClient)}) (the contract makes it idempotent)`, () =>
      gpu.firmware.freeClient(client, { timeoutMs: ctx.settings.rpcTimeoutMs }));
    if (before !== undefined) {
      const after = await ctx.attempt('inspect.rmClients()', () => ctx.fixture.inspect!.rmClients(ctx.bdf));
      ctx.expect(after === before, () => `the firmware still holds ${after} RM clients after freeClient(), ${before} before the allocation`);
    }
    await ctx.rejects(`control GSP_GET_FEATURES on the freed client ${hex(client.hClient)}`, () =>
      gpu.firmware.control(client, RmControl.GSP_GET_FEATURES, new Uint8Array(GSP_GET_FEATURES_PARAMS.size), { timeoutMs: ctx.settings.rpcTimeoutMs }), []);
  }),

  defineCheck('rpc', 'replies-match-calls', 'controls in flight together each resolve with their own reply', async (ctx) => {
    const gpu = await ctx.openBooted();
    const a = await ctx.attempt('firmware.allocClient()', () => gpu.firmware.allocClient({ timeoutMs: ctx.settings.rpcTimeoutMs }));
    const b = await ctx.attempt('a second firmware.allocClient()', () => gpu.firmware.allocClient({ timeoutMs: ctx.settings.rpcTimeoutMs }));
    ctx.defer('freeing the RM clients', async () => {
      await gpu.firmware.freeClient(a);
      await gpu.firmware.freeClient(b);
    });
    const opts = { timeoutMs: ctx.settings.rpcTimeoutMs };
    const calls = [
      { name: 'GSP_GET_FEATURES', client: a, cmd: RmControl.GSP_GET_FEATURES, size: GSP_GET_FEATURES_PARAMS.size,
        check: (r: Uint8Array) => decodeGspFeatures(r).firmwareVersion === gpu.firmware.info().version },
      { name: 'GPU_GET_VMMU_SEGMENT_SIZE', client: b, cmd: RmControl.GPU_GET_VMMU_SEGMENT_SIZE, size: GPU_GET_VMMU_SEGMENT_SIZE_PARAMS.size,
        check: (r: Uint8Array) => decodeVmmuSegmentSize(r) > 0n },
      { name: 'GPU_QUERY_ECC_STATUS', client: a, cmd: RmControl.GPU_QUERY_ECC_STATUS, size: GPU_QUERY_ECC_STATUS_PARAMS.size,
        check: (r: Uint8Array) => decodeEccStatus(r).units.length > 0 },
      { name: 'GSP_GET_FEATURES (second client)', client: b, cmd: RmControl.GSP_GET_FEATURES, size: GSP_GET_FEATURES_PARAMS.size,
        check: (r: Uint8Array) => decodeGspFeatures(r).firmwareVersion === gpu.firmware.info().version },
    ];
    const replies = await ctx.attempt(`${calls.length} controls sent together (${calls.map((c) => c.name).join(', ')})`, () =>
      Promise.all(calls.map((c) => gpu.firmware.control(c.client, c.cmd, new Uint8Array(c.size), opts))));
    calls.forEach((c, i) => {
      const r = replies[i]!;
      ctx.expect(r.length === c.size, () => `of ${calls.length} controls in flight together, ${c.name} resolved with ${r.length} bytes, its block has ${c.size}: ` +
        'a reply went to the wrong caller');
      let ok = false;
      let why = '';
      try {
        ok = c.check(r);
      } catch (e) {
        why = ` (${describeError(e)})`;
      }
      ctx.expect(ok, () => `of ${calls.length} controls in flight together, ${c.name} resolved with a reply that is not its own${why}`);
    });
  }),

  defineCheck('rpc', 'client-at-chosen-handle', 'allocClient({ hClient }) uses the caller\'s handle and refuses one already in use', async (ctx) => {
    const gpu = await ctx.openBooted();
    // A handle in RM's client range (0xc1xxxxxx) that no allocator of ours hands out by itself.
    const hClient = 0xc1abcd01;
    const client = await ctx.attempt(`firmware.allocClient({ hClient: ${hex(hClient)} })`, () =>
      gpu.firmware.allocClient({ hClient, timeoutMs: ctx.settings.rpcTimeoutMs }));
    ctx.defer(`freeing RM client ${hex(hClient)}`, () => gpu.firmware.freeClient(client));
    ctx.expect(client.hClient === hClient, () => `allocClient({ hClient: ${hex(hClient)} }) allocated client ${hex(client.hClient)} instead: ` +
      'a journal that wrote the handle ahead of the call could not free the client after a crash');
    await features(ctx, gpu, client, 'control GSP_GET_FEATURES on the chosen handle');
    await ctx.rejects(`a second allocClient({ hClient: ${hex(hClient)} }) while that client is live`, () =>
      gpu.firmware.allocClient({ hClient, timeoutMs: ctx.settings.rpcTimeoutMs }), []);
  }),
];
