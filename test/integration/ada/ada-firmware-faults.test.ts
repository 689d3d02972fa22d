/**
 * The Ada HAL's refusals and the simulated GSP-RM's failure modes, each seen as the typed error a caller gets:
 * old firmware, unknown or mislabelled devices, injected RPC faults (the GPU stays usable after each), a crash
 * (in-flight callers fail fast with GpuLost, listeners get the lost event), and gfid-tagged firmware events.
 */
import 'reflect-metadata';
import { afterEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode, isVgpuError } from '../../../core/contracts/exceptions.js';
import type { FirmwareEventRecord } from '../../../core/contracts/events.js';
import type { PhysicalGpu } from '../../../core/contracts/hal.js';
import type { RmClient } from '../../../core/contracts/firmware.js';
import { MemoryLogger } from '../../../core/logging/memory-logger.js';
import {
  BOOTLOAD_PARAMS, GSP_GET_FEATURES_PARAMS, RmControl, decodeGspFeatures, encodeBootloadParams, encodeShutdownParams,
  encodePluginCleanupParams,
} from '../../../core/firmware-abi/rm-controls.js';
import { AdaHal } from '../../../hal/ada-lovelace/ada-hal.js';
import { GSP_LOST_EVENT } from '../../../hal/gsp-gpu/gsp-firmware-client.js';
import { GspEvent, GspFunction } from '../../../hal/gsp/gsp-layout.js';
import { Bar0, Region } from '../../../hal/sim/device/device-layout.js';
import { startSimDevice, type SimDeviceHandle } from '../../../hal/ada-lovelace/sim/start-sim-device.js';
import { RPC_GUARD_MS } from '../../helpers/guard-timeouts.js';

const GiB = 1n << 30n;
let dev: SimDeviceHandle | undefined;
let gpu: PhysicalGpu | undefined;

afterEach(async () => {
  await gpu?.close().catch(() => {});
  await dev?.stop();
  gpu = undefined;
  dev = undefined;
});

async function bootGpu(opts: { firmwareVersion?: string; rpcTimeoutMs?: number } = {}): Promise<{ gpu: PhysicalGpu; dev: SimDeviceHandle; client: RmClient }> {
  dev = await startSimDevice({
    board: 'rtx6000-ada', bdf: '0000:41:00.0', mode: 'worker', fbBytes: 4n * GiB, gspHeartbeatMs: 50,
    ...(opts.firmwareVersion ? { firmwareVersion: opts.firmwareVersion } : {}),
  });
  // A guard only: the calls whose timeout is under test pass their own, short one.
  gpu = await new AdaHal().open(dev.pciInfo(), { logger: new MemoryLogger(), rpcTimeoutMs: opts.rpcTimeoutMs ?? RPC_GUARD_MS });
  await gpu.firmware.boot({ version: '570.144' });
  const client = await gpu.firmware.allocClient();
  return { gpu, dev, client };
}

async function version(g: PhysicalGpu, c: RmClient, timeoutMs?: number): Promise<string> {
  const params = new Uint8Array(GSP_GET_FEATURES_PARAMS.size);
  return decodeGspFeatures(await g.firmware.control(c, RmControl.GSP_GET_FEATURES, params, timeoutMs !== undefined ? { timeoutMs } : {})).firmwareVersion;
}

function code(e: unknown): string {
  return isVgpuError(e) ? e.code : `not a VgpuError: ${String(e)}`;
}

describe('Ada HAL refusals', () => {
  it('refuses a firmware image older than 570.144 without touching the device', async () => {
    dev = await startSimDevice({ board: 'l40', bdf: '0000:41:00.0', mode: 'worker', fbBytes: GiB });
    gpu = await new AdaHal().open(dev.pciInfo(), { logger: new MemoryLogger() });
    await assert.rejects(gpu.firmware.boot({ version: '535.113.01' }), (e) => code(e) === ErrorCode.FirmwareTooOld);
    assert.equal(gpu.firmware.state, 'off');
    assert.equal(await dev.controls.gspRunning(), false);
  });

  it('refuses a device whose GSP-RM reports a build below the floor, and shuts that GSP down', async () => {
    dev = await startSimDevice({ board: 'l40', bdf: '0000:41:00.0', mode: 'worker', fbBytes: GiB, firmwareVersion: '550.54.14' });
    gpu = await new AdaHal().open(dev.pciInfo(), { logger: new MemoryLogger() });
    await assert.rejects(gpu.firmware.boot({ version: '570.144' }), (e) => code(e) === ErrorCode.FirmwareTooOld && /550\.54\.14/.test((e as Error).message));
    assert.equal(gpu.firmware.state, 'off');
    assert.equal(await dev.controls.gspRunning(), false);
  });

  it('refuses an unknown PCI id with the list of supported boards', async () => {
    dev = await startSimDevice({ board: 'l4', bdf: '0000:41:00.0', mode: 'worker', fbBytes: GiB });
    const hal = new AdaHal();
    const rtx4090 = { ...dev.pciInfo(), deviceId: 0x2684 };
    assert.equal(hal.supports(rtx4090), false);
    await assert.rejects(hal.open(rtx4090, { logger: new MemoryLogger() }), (e) =>
      code(e) === ErrorCode.UnsupportedDevice && isVgpuError(e) && /rtx6000-ada/.test(e.hint) && /l4 \(0x27b8/.test(e.hint));
  });

  it('refuses a device whose NV_PMC_BOOT_0 names another chip than its PCI id', async () => {
    dev = await startSimDevice({ board: 'l4', bdf: '0000:41:00.0', mode: 'worker', fbBytes: GiB });
    dev.arena.store32(BigInt(Region.BAR0 + Bar0.PMC_BOOT_0), 0x172000a1); // GA102 (Ampere)
    await assert.rejects(new AdaHal().open(dev.pciInfo(), { logger: new MemoryLogger() }), (e) =>
      code(e) === ErrorCode.UnsupportedDevice && /BOOT_0/.test((e as Error).message));
  });
});

describe('simulated GSP-RM faults', () => {
  it('fail-call: the Nth control fails with the injected RM-side result, the next one works', async () => {
    const { gpu: g, dev: d, client } = await bootGpu();
    await d.controls.inject({ kind: 'fail-call', fn: GspFunction.GSP_RM_CONTROL, nth: 2, result: 0x55 });
    assert.equal(await version(g, client), '570.144');
    await assert.rejects(version(g, client), (e) => code(e) === ErrorCode.Busy);
    assert.equal(await version(g, client), '570.144');
  });

  it('error result: an injected NO_MEMORY result is OutOfMemory, other results are FirmwareRpc', async () => {
    const { gpu: g, dev: d, client } = await bootGpu();
    await d.controls.inject({ kind: 'fail-call', fn: GspFunction.GSP_RM_CONTROL, result: 0x51 });
    await assert.rejects(version(g, client), (e) => code(e) === ErrorCode.OutOfMemory);
    await d.controls.inject({ kind: 'fail-call', fn: GspFunction.GSP_RM_CONTROL, result: 0x1f });
    await assert.rejects(version(g, client), (e) => code(e) === ErrorCode.FirmwareRpc && isVgpuError(e) && e.details.rmStatus === 0x1f);
    assert.equal(await version(g, client), '570.144');
  });

  it('drop-reply: the caller times out alone, the GPU answers the next call', async () => {
    const { gpu: g, dev: d, client } = await bootGpu();
    await d.controls.inject({ kind: 'drop-reply', fn: GspFunction.GSP_RM_CONTROL });
    await assert.rejects(g.firmware.control(client, RmControl.GSP_GET_FEATURES, new Uint8Array(GSP_GET_FEATURES_PARAMS.size), { timeoutMs: 300 }),
      (e) => code(e) === ErrorCode.RpcTimeout);
    assert.equal(await version(g, client), '570.144');
  });

  it('delay-reply: a slow reply still arrives; a shorter timeout turns it into RpcTimeout', async () => {
    const { gpu: g, dev: d, client } = await bootGpu();
    await d.controls.inject({ kind: 'delay-reply', fn: GspFunction.GSP_RM_CONTROL, ms: 150 });
    assert.equal(await version(g, client), '570.144');
    // A reply ten times later than the caller's timeout: the caller gets RpcTimeout. GSP-RM serves one command at a
    // time (docs/reference/gsp-queues.md), so the next call is answered only after the late reply went out — and that
    // late reply, whose sequence no caller waits for any more, must be dropped, not taken as the next call's answer.
    await d.controls.inject({ kind: 'delay-reply', fn: GspFunction.GSP_RM_CONTROL, ms: 2000 });
    await assert.rejects(g.firmware.control(client, RmControl.GSP_GET_FEATURES, new Uint8Array(GSP_GET_FEATURES_PARAMS.size), { timeoutMs: 200 }),
      (e) => code(e) === ErrorCode.RpcTimeout);
    assert.equal(await version(g, client), '570.144');
  });

  it('corrupt-next-element: the damaged reply is a Checksum error for its caller only', async () => {
    const { gpu: g, dev: d, client } = await bootGpu();
    await d.controls.inject({ kind: 'corrupt-next-element' });
    // A damaged element may also be a reply that never matches: then the caller's own 2 s timeout ends it.
    await assert.rejects(version(g, client, 2000), (e) => code(e) === ErrorCode.Checksum || code(e) === ErrorCode.RpcTimeout);
    assert.equal(await version(g, client), '570.144');
  });

  it('crash: in-flight callers get GpuLost at once, listeners get the lost event, later calls fail fast', async () => {
    // The in-flight call's reply is delayed and its timeout is as long, both far past the end of the test: it can
    // only settle because of the crash, and GpuLost (not RpcTimeout, not a reply) says it was failed by it.
    const { gpu: g, dev: d, client } = await bootGpu({ rpcTimeoutMs: 600_000 });
    const lost = new Promise<FirmwareEventRecord>((resolve) => g.firmware.onEvent((e) => { if (e.eventId === GSP_LOST_EVENT) resolve(e); }));
    await d.controls.inject({ kind: 'delay-reply', fn: GspFunction.GSP_RM_CONTROL, ms: 600_000 });
    const inflight = assert.rejects(version(g, client), (e) => code(e) === ErrorCode.GpuLost);
    await d.controls.crash();
    await inflight;
    assert.equal((await lost).name, 'GSP_LOST');
    assert.equal(g.firmware.state, 'crashed');
    await assert.rejects(version(g, client), (e) => code(e) === ErrorCode.GpuLost);
  });
});

describe('simulated GSP-RM behaviour', () => {
  it('delivers an RC_TRIGGERED raised for gfid 3 to onEvent tagged with gfid 3, and MMU faults likewise', async () => {
    const { gpu: g, dev: d } = await bootGpu();
    const seen: FirmwareEventRecord[] = [];
    const two = new Promise<void>((resolve) => g.firmware.onEvent((e) => { seen.push(e); if (seen.length === 2) resolve(); }));
    await d.controls.raiseEvent({ kind: 'rc', gfid: 3, chid: 130 });
    await d.controls.raiseEvent({ kind: 'mmu-fault', gfid: 5, faultAddress: 0x1000n });
    await two;
    assert.deepEqual(seen.map((e) => [e.eventId, e.name, e.gfid, e.gpu]), [
      [GspEvent.RC_TRIGGERED, 'RC_TRIGGERED', 3, '0000:41:00.0'],
      [GspEvent.MMU_FAULT_QUEUED, 'MMU_FAULT_QUEUED', 5, '0000:41:00.0'],
    ]);
  });

  it('checks RM object handles: duplicate clients, bad parents and unknown clients are refused', async () => {
    const { gpu: g, dev: d, client } = await bootGpu();
    const before = await d.controls.rmClients();
    const other = await g.firmware.allocClient();
    assert.notEqual(other.hClient, client.hClient);
    assert.equal(await d.controls.rmClients(), before + 1);
    await g.firmware.freeClient(other);
    assert.equal(await d.controls.rmClients(), before);
    await assert.rejects(g.firmware.control(other, RmControl.GSP_GET_FEATURES, new Uint8Array(GSP_GET_FEATURES_PARAMS.size)),
      (e) => code(e) === ErrorCode.FirmwareRpc && isVgpuError(e) && e.details.rmStatus === 0x23);
    await assert.rejects(g.firmware.control(client, RmControl.GSP_GET_FEATURES, new Uint8Array(3)),
      (e) => isVgpuError(e) && e.details.rmStatus === 0x3a);
  });

  it('bootloads, shuts down and cleans up a plugin task with argument checks and per-gfid logs', async () => {
    const { gpu: g, dev: d, client } = await bootGpu();
    const seg = 64n << 20n;
    const heap = 2n * GiB;
    const good = {
      dbdf: 0x4104, gfid: 1, numChannels: 64, numPluginChannels: 1, numGuestFbSegments: 1,
      guestFbPhysAddrList: [0n], guestFbLengthList: [GiB],
      pluginHeapMemoryPhysAddr: heap, pluginHeapMemoryLength: 0x400000n,
      initTaskLogBuffOffset: heap + 0x204000n, initTaskLogBuffSize: 0x20000n,
      vgpuTaskLogBuffOffset: heap + 0x224000n, vgpuTaskLogBuffSize: 0x40000n,
      kernelLogBuffOffset: heap + 0x264000n, kernelLogBuffSize: 0x10000n,
    };
    const boot = (p: object): Promise<Uint8Array> =>
      g.firmware.control(client, RmControl.VGPU_MGR_INTERNAL_BOOTLOAD_GSP_VGPU_PLUGIN_TASK, encodeBootloadParams(p));
    const status = async (p: Promise<unknown>): Promise<unknown> => p.then(() => 0, (e) => (isVgpuError(e) ? e.details.rmStatus : e));
    assert.equal(BOOTLOAD_PARAMS.size, 6616);
    assert.equal(await status(boot({ ...good, gfid: 0 })), 0x1f, 'gfid 0 is the PF');
    assert.equal(await status(boot({ ...good, gfid: 33 })), 0x1f, 'gfid past NumVFs');
    assert.equal(await status(boot({ ...good, guestFbPhysAddrList: [seg / 2n] })), 0x1e, 'guest FB not VMMU aligned');
    assert.equal(await status(boot({ ...good, guestFbLengthList: [8n * GiB] })), 0x1e, 'guest FB past the FB');
    assert.equal(await status(boot({ ...good, pluginHeapMemoryPhysAddr: GiB / 2n })), 0x1e, 'heap inside the guest FB');
    assert.equal(await status(boot({ ...good, kernelLogBuffOffset: 0n })), 0x1e, 'log outside the heap');
    assert.equal(await d.controls.pluginTask(1), null, 'refusals leave no task behind');

    await boot(good);
    assert.equal(await d.controls.pluginTask(1), 'running');
    assert.match(new TextDecoder().decode(g.firmware.readLog('init-task', 1)), /gfid 1 bootloaded/);
    assert.equal(await status(boot(good)), 0x17, 'same gfid twice');
    assert.equal(await status(boot({ ...good, gfid: 2 })), 0x1e, 'gfid 2 overlapping gfid 1');
    assert.equal(await status(g.firmware.control(client, RmControl.VGPU_MGR_INTERNAL_VGPU_PLUGIN_CLEANUP, encodePluginCleanupParams(1))), 0x40,
      'cleanup before shutdown');
    await g.firmware.control(client, RmControl.VGPU_MGR_INTERNAL_SHUTDOWN_GSP_VGPU_PLUGIN_TASK, encodeShutdownParams(1));
    assert.equal(await d.controls.pluginTask(1), 'shutdown');
    await g.firmware.control(client, RmControl.VGPU_MGR_INTERNAL_VGPU_PLUGIN_CLEANUP, encodePluginCleanupParams(1));
    assert.equal(await d.controls.pluginTask(1), null);
    assert.equal(g.firmware.readLog('init-task', 1).byteLength, 0, 'log area released with the task');
    await boot(good); // the gfid is reusable after cleanup
  });
});
