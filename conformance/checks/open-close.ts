/**
 * Open, detach, re-attach, close (core/contracts/hal.ts `PhysicalGpu.detach/close`, `Hal.open`): open does not boot
 * the firmware; close stops it and a closed GPU refuses work with a typed error; detach lets go of the host side
 * only, so the firmware, its RM clients and the FB contents are still there when the device is opened again — what
 * a daemon restart with running vGPUs depends on.
 */
import type { FbRange } from '../../core/contracts/memory.js';
import { GSP_GET_FEATURES_PARAMS, RmControl, decodeGspFeatures } from '../../core/firmware-abi/rm-controls.js';
import { defineCheck } from '../check.js';
import { differing, hex, patternByte, patternBytes } from '../describe.js';

const MiB = 1n << 20n;

export const openCloseChecks = [
  defineCheck('open-close', 'open-does-not-boot', 'open() maps the device without booting its firmware', async (ctx) => {
    const gpu = await ctx.open();
    ctx.expect(gpu.firmware.state === 'off', () => `right after open() of a powered-down device, firmware.state is '${gpu.firmware.state}', not 'off'`);
    ctx.expect(gpu.firmware.info().initDone === false, () => 'right after open(), firmware.info().initDone is true: open() must not boot the firmware');
  }),

  defineCheck('open-close', 'close-and-reopen', 'close() stops the firmware, a closed GPU refuses firmware calls with a VgpuError, and the device opens and boots again', async (ctx) => {
    const gpu = await ctx.openBooted();
    await ctx.close(gpu);
    ctx.expect(gpu.firmware.state !== 'running' && gpu.firmware.state !== 'booting',
      () => `after close(), firmware.state is still '${gpu.firmware.state}'`);
    const refused = { ms: ctx.settings.waitMs };
    const rpcOpts = { timeoutMs: ctx.settings.rpcTimeoutMs };
    await ctx.rejects('firmware.allocClient() on a closed GPU', () => gpu.firmware.allocClient(rpcOpts), [], refused);
    await ctx.rejects('firmware.control() on a closed GPU', () =>
      gpu.firmware.control({ hClient: 1, hDevice: 2, hSubdevice: 3 }, RmControl.GSP_GET_FEATURES, new Uint8Array(GSP_GET_FEATURES_PARAMS.size), rpcOpts),
    [], refused);
    await ctx.rejects('firmware.rpc() on a closed GPU', () => gpu.firmware.rpc(0x1, new Uint8Array(8), rpcOpts), [], refused);
    const again = await ctx.open();
    ctx.expect(again.firmware.state === 'off', () => `after close() and a new open(), firmware.state is '${again.firmware.state}', not 'off'`);
    const info = await ctx.boot(again);
    ctx.expect(info.initDone, () => 'the second boot after close() resolved without initDone');
  }),

  defineCheck('open-close', 'detach-keeps-device-state', 'after detach() a new open() re-attaches: firmware still running, RM clients and FB contents kept', async (ctx) => {
    const gpu = await ctx.openBooted();
    const client = await ctx.attempt('firmware.allocClient()', () => gpu.firmware.allocClient({ timeoutMs: ctx.settings.rpcTimeoutMs }));
    const range = ctx.attemptSync('memory.reserve(1 MiB)', () => gpu.memory.reserve({ size: MiB, owner: 'conformance', label: 'detach-probe' }));
    const pattern = 0x5eed_c0de;
    const map = ctx.attemptSync(`memory.map(range #${range.id})`, () => gpu.memory.map(range));
    ctx.attemptSync('writing 4 KiB through the host mapping', () => map.write(4096, patternBytes(pattern, 4096)));
    map.unmap();
    await ctx.detach(gpu);

    const again = await ctx.open();
    ctx.expect(again.firmware.state === 'running',
      () => `after detach() and a new open(), firmware.state is '${again.firmware.state}': detach must leave the firmware running and open must re-attach to it`);
    ctx.expect(again.firmware.info().initDone, () => 'the re-attached firmware reports initDone false');
    // The host-side books may or may not survive a detach (a restarted daemon re-reserves from its journal); the
    // bytes must.
    let kept: FbRange | undefined = again.memory.list().find((r) => r.offset === range.offset && r.size === range.size);
    if (kept === undefined) {
      kept = ctx.attemptSync(`memory.reserve(1 MiB at ${hex(range.offset)}) after re-attach`, () =>
        again.memory.reserve({ size: MiB, at: range.offset, owner: 'conformance', label: 'detach-probe' }));
    }
    const view = ctx.attemptSync('memory.map() after re-attach', () => again.memory.map(kept!));
    const bytes = ctx.attemptSync('reading through the host mapping after re-attach', () => view.read(4096, 4096));
    view.unmap();
    const bad = differing(bytes, (i) => patternByte(pattern, i));
    ctx.expect(bad.count === 0, () => `after detach() and re-attach, ${bad.count} of the 4096 bytes written at FB offset ${hex(range.offset + 4096n)} changed ` +
      `(first at ${hex(range.offset + 4096n + BigInt(bad.first))}): detach must keep the FB contents`);
    const reply = await ctx.attempt(`GSP_GET_FEATURES on RM client ${hex(client.hClient)} allocated before the detach`, () =>
      again.firmware.control(client, RmControl.GSP_GET_FEATURES, new Uint8Array(GSP_GET_FEATURES_PARAMS.size), { timeoutMs: ctx.settings.rpcTimeoutMs }));
    ctx.expect(decodeGspFeatures(reply).firmwareVersion === again.firmware.info().version,
      () => `GSP_GET_FEATURES after re-attach answered '${decodeGspFeatures(reply).firmwareVersion}', the firmware reports '${again.firmware.info().version}'`);
    await ctx.attempt(`firmware.freeClient(${hex(client.hClient)}) after re-attach`, () => again.firmware.freeClient(client));
    ctx.attemptSync('memory.free() after re-attach', () => again.memory.free(kept!));
  }),

];
