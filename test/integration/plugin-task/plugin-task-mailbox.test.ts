/**
 * The simulated GSP plugin task behind the per-vGPU mailbox (docs/reference/create-order.md C6–C7,
 * docs/reference/host-rpc-mailbox.md), driven from the host side exactly as the create path does: bootload over RM,
 * control-buffer header, BOOTLOADED magic, calls rung on the shared VF doorbell. Also: error buffer and logs,
 * migration save/restore, shutdown, and host events.
 */
import 'reflect-metadata';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { PhysicalGpu } from '../../../core/contracts/hal.js';
import type { RmClient } from '../../../core/contracts/firmware.js';
import { MemoryLogger } from '../../../core/logging/memory-logger.js';
import { RmControl, encodePluginCleanupParams, encodeShutdownParams } from '../../../core/firmware-abi/rm-controls.js';
import {
  CTRL_BUFFER, GSP_PLUGIN_BOOTLOADED, MgmtHeap, VERSION_NEGOTIATION_PAYLOAD, VgpuRpcMsg, encodeBmeState, encodeConfigParams,
} from '../../../core/firmware-abi/vgpu-mailbox.js';
import { AdaHal } from '../../../hal/ada-lovelace/ada-hal.js';
import { startSimDevice, type SimDeviceHandle } from '../../../hal/ada-lovelace/sim/start-sim-device.js';
import { readErrorRecords } from '../../../hal/sim/device/plugin-task-error-buffer.js';
import { PLUGIN_RPC_VERSION } from '../../../hal/sim/device/plugin-task.js';
import { decodeContextImage } from '../../../hal/sim/device/plugin-task-context.js';
import { MailboxHost, slot, until } from './mailbox-host.js';
import { RPC_GUARD_MS } from '../../helpers/guard-timeouts.js';

const GiB = 1n << 30n;
const TYPE = 945;
let dev: SimDeviceHandle;
let gpu: PhysicalGpu;
let client: RmClient;

before(async () => {
  dev = await startSimDevice({ board: 'rtx6000-ada', bdf: '0000:41:00.0', mode: 'worker', fbBytes: 8n * GiB, gspHeartbeatMs: 50 });
  gpu = await new AdaHal().open(dev.pciInfo(), { logger: new MemoryLogger(), rpcTimeoutMs: RPC_GUARD_MS });
  await gpu.firmware.boot({ version: '570.144' });
  client = await gpu.firmware.allocClient();
});

after(async () => {
  await gpu?.close().catch(() => {});
  await dev?.stop();
});

function config(h: MailboxHost, over: Partial<Parameters<typeof encodeConfigParams>[0]> = {}): Uint8Array {
  return encodeConfigParams({
    dbdf: h.s.dbdf, vgpu_device_instance_id: client.hClient, vgpu_type: TYPE, vm_pid: h.s.vmPid,
    num_channels: h.s.numChannels, num_plugin_channels: 1, ...over,
  });
}

async function configured(gfid: number): Promise<MailboxHost> {
  const h = new MailboxHost(gpu, dev, client, slot(gfid));
  await h.bringUp();
  assert.equal((await h.call(VgpuRpcMsg.VERSION_NEGOTIATION)).result, 0);
  assert.equal((await h.call(VgpuRpcMsg.SETUP_CONFIG_PARAMS_AND_INIT, config(h))).result, 0);
  return h;
}

function errors(h: MailboxHost): ReturnType<typeof readErrorRecords> {
  const get = h.comm.readUInt32LE(CTRL_BUFFER.offsetOf('error_buff_cpu_get_idx'));
  return readErrorRecords(h.comm.subarray(MgmtHeap.ERROR_OFFSET, MgmtHeap.ERROR_OFFSET + MgmtHeap.ERROR_SIZE), get, h.response('error_buff_gsp_put_idx'));
}

/** Host side of a restore (docs/migration.md): RESTORE_STATE {total}, stream through the ring, wait for GSP GET. */
async function restore(h: MailboxHost, image: Uint8Array): Promise<number> {
  h.comm.writeUInt32LE(0, CTRL_BUFFER.offsetOf('migration_buf_cpu_access_offset'));
  const total = Buffer.alloc(8);
  total.writeBigUInt64LE(BigInt(image.byteLength));
  const r = await h.call(VgpuRpcMsg.MIGRATION_RESTORE_STATE, total);
  if (r.result !== 0) return r.result;
  // Two pieces, PUT advanced after each, as a host streaming from the network would.
  const half = image.byteLength >> 1;
  h.comm.set(image.subarray(0, half), MgmtHeap.MIGRATION_OFFSET);
  h.comm.writeUInt32LE(half, CTRL_BUFFER.offsetOf('migration_buf_cpu_access_offset'));
  await until('GSP GET at the first half', () => (h.response('migration_buf_gsp_access_offset') === half ? true : undefined));
  h.comm.set(image.subarray(half), MgmtHeap.MIGRATION_OFFSET + half);
  h.comm.writeUInt32LE(image.byteLength, CTRL_BUFFER.offsetOf('migration_buf_cpu_access_offset'));
  await until('GSP GET at the end', () => (h.response('migration_buf_gsp_access_offset') === image.byteLength ? true : undefined));
  return (await h.call(VgpuRpcMsg.MIGRATION_RESTORE_DEFERRED_STATE)).result;
}

describe('plugin task bring-up and calls', () => {
  it('writes the BOOTLOADED magic only after the host header, then answers with matching sequence numbers', async () => {
    const h = new MailboxHost(gpu, dev, client, slot(1));
    await h.bootload();
    assert.equal(await dev.controls.pluginTask(1), 'running');
    assert.notEqual(h.ctrlSeq(), GSP_PLUGIN_BOOTLOADED, 'no magic before the header');
    assert.match(h.log('init-task'), /waiting for the host's control-buffer header/);
    h.writeHeader();
    await h.waitBootloaded();

    // v2 sends VERSION_NEGOTIATION with no payload; the plugin answers in the in/out message buffer.
    h.comm.fill(0, MgmtHeap.MESSAGE_OFFSET, MgmtHeap.MESSAGE_OFFSET + 8);
    const v = await h.call(VgpuRpcMsg.VERSION_NEGOTIATION, new Uint8Array(0), VERSION_NEGOTIATION_PAYLOAD.size);
    assert.equal(v.result, 0);
    assert.equal(h.sequence, 1);
    assert.equal(h.response('message_seq_num_received'), 1);
    assert.equal(VERSION_NEGOTIATION_PAYLOAD.decode(v.reply).version_negotiated, PLUGIN_RPC_VERSION);

    const c = await h.call(VgpuRpcMsg.SETUP_CONFIG_PARAMS_AND_INIT, config(h));
    assert.equal(c.result, 0);
    assert.equal(h.response('message_seq_num_processed'), 2);
    assert.equal(h.response('message_seq_num_received'), 2);

    // The task writes a call's log line after it publishes the answer (the host does not wait for the log).
    const log = await until('the SETUP_CONFIG log line', () => (/seq 2 SETUP_CONFIG/.test(h.log('vgpu-task')) ? h.log('vgpu-task') : undefined));
    assert.match(log, /seq 1 VERSION_NEGOTIATION: ok/);
    assert.match(log, new RegExp(`seq 2 SETUP_CONFIG_PARAMS_AND_INIT: ok \\(type ${TYPE}, 64 channels`));
    assert.match(h.log('init-task'), /GSP_PLUGIN_BOOTLOADED written/);
  });

  it('with the header already there at BOOTLOAD (the lifecycle writes it first), answers with the magic at once and logs its start-up lines in order', async () => {
    const h = new MailboxHost(gpu, dev, client, slot(11));
    h.comm.fill(0, 0, MgmtHeap.MIGRATION_OFFSET);
    h.writeHeader();
    await h.bootload();
    await h.waitBootloaded();
    const lines = h.log('init-task').trimEnd().split('\n').map((l) => l.replace(/^\[[^\]]+\] /, ''));
    assert.deepEqual(lines.map((l) => (/bootloaded:/.test(l) ? 'bootloaded' : /waiting for the host/.test(l) ? 'waiting' : /GSP_PLUGIN_BOOTLOADED written/.test(l) ? 'found' : l)),
      ['bootloaded', 'waiting', 'found']);
    assert.equal((await h.call(VgpuRpcMsg.VERSION_NEGOTIATION, new Uint8Array(0), VERSION_NEGOTIATION_PAYLOAD.size)).result, 0);
    // GSP-RM's own line about the task, written once the task has started (not inside the BOOTLOAD reply).
    await until('the GSP log line of the bootload', () => /bootloaded plugin task gfid 11 \(dbdf 0x410b, 64 channels, vmPid 4011\)/.test(Buffer.from(gpu.firmware.readLog('gsp')).toString('utf8')) || undefined);
  });

  it('refuses a bad config with a non-zero result, an error-buffer record and a kernel-log line', async () => {
    const h = new MailboxHost(gpu, dev, client, slot(2));
    await h.bringUp();
    const bad = await h.call(VgpuRpcMsg.SETUP_CONFIG_PARAMS_AND_INIT, config(h, { num_channels: 32 }));
    assert.notEqual(bad.result, 0);
    const recs = errors(h);
    assert.equal(recs.length, 1);
    assert.equal(recs[0]!.seq, 1);
    assert.equal(recs[0]!.messageType, VgpuRpcMsg.SETUP_CONFIG_PARAMS_AND_INIT);
    assert.equal(recs[0]!.resultCode, bad.result);
    assert.match(recs[0]!.text, /num_channels 32/);
    assert.match(h.log('kernel'), /SETUP_CONFIG_PARAMS_AND_INIT \(seq 1\) failed/);

    const wrongDbdf = await h.call(VgpuRpcMsg.SETUP_CONFIG_PARAMS_AND_INIT, config(h, { dbdf: 0x999 }));
    assert.notEqual(wrongDbdf.result, 0);
    // The host consumes the records: GET catches up with PUT and nothing is pending.
    h.comm.writeUInt32LE(h.response('error_buff_gsp_put_idx'), CTRL_BUFFER.offsetOf('error_buff_cpu_get_idx'));
    assert.equal(errors(h).length, 0);
    // A good config after the refusals still goes through.
    assert.equal((await h.call(VgpuRpcMsg.SETUP_CONFIG_PARAMS_AND_INIT, config(h))).result, 0);
  });

  it('serves RESET, UPDATE_BME_STATE and GET_GUEST_INFO, and refuses unknown or unsimulated types', async () => {
    const h = await configured(3);
    assert.equal((await h.call(VgpuRpcMsg.UPDATE_BME_STATE, encodeBmeState({ enable: true }))).result, 0);
    assert.equal((await h.call(VgpuRpcMsg.RESET)).result, 0);
    assert.equal((await h.call(VgpuRpcMsg.GET_GUEST_INFO)).result, 0);
    assert.notEqual((await h.call(VgpuRpcMsg.CONSOLE_VNC_STATE)).result, 0);
    assert.notEqual((await h.call(77)).result, 0);
    const log = h.log('vgpu-task');
    assert.match(log, /UPDATE_BME_STATE: ok \(bus master enabled\)/);
    assert.match(log, /RESET: ok \(reset #1\)/);
    assert.equal(errors(h).length, 2);
  });

  it('answers two vGPUs that ring the shared doorbell back to back', async () => {
    const a = await configured(4);
    const b = await configured(5);
    const sa = a.post(VgpuRpcMsg.RESET);
    const sb = b.post(VgpuRpcMsg.RESET);
    await until('both replies', () => (a.response('message_seq_num_processed') === sa && b.response('message_seq_num_processed') === sb ? true : undefined));
    assert.equal(a.response('result_code'), 0);
    assert.equal(b.response('result_code'), 0);
  });
});

describe('plugin task migration messages', () => {
  it('saves the firmware context through the migration buffer and restores it on another vGPU', async () => {
    const src = await configured(6);
    assert.equal((await src.call(VgpuRpcMsg.UPDATE_BME_STATE, encodeBmeState({ enable: true }))).result, 0);
    assert.notEqual((await src.call(VgpuRpcMsg.MIGRATION_SAVE_STATE)).result, 0, 'save needs a stopped device');
    assert.equal((await src.call(VgpuRpcMsg.MIGRATION_STOP_WORK)).result, 0);
    assert.equal((await src.call(VgpuRpcMsg.MIGRATION_SAVE_STATE)).result, 0);
    assert.equal(src.response('migration_state_save_complete'), 1);
    const len = src.response('migration_buf_gsp_access_offset');
    assert.ok(len > 4096, `a few KiB of context, got ${len}`);
    const image = Uint8Array.from(src.comm.subarray(MgmtHeap.MIGRATION_OFFSET, MgmtHeap.MIGRATION_OFFSET + len));
    const saved = decodeContextImage(image);
    assert.equal(saved.srcGfid, 6);
    assert.equal(saved.vgpuType, TYPE);
    assert.equal(saved.ctx.bme.enable, true);

    const dst = await configured(7);
    assert.equal((await dst.call(VgpuRpcMsg.MIGRATION_STOP_WORK)).result, 0);
    // A corrupted image is refused at RESTORE_DEFERRED_STATE and the device stays stopped.
    const corrupt = Uint8Array.from(image);
    corrupt[200] = corrupt[200]! ^ 0xff;
    assert.notEqual(await restore(dst, corrupt), 0);
    assert.match(dst.log('kernel'), /context image rejected/);
    // An image of the older format (version 1: no VF state) is refused, saying why, rather than half-restored.
    const old = Buffer.from(image);
    old.writeUInt32LE(1, 4);
    assert.notEqual(await restore(dst, old), 0);
    assert.match(dst.log('kernel'), /image version 1 comes from an older simulator/);
    assert.equal(await restore(dst, image), 0);
    assert.equal((await dst.call(VgpuRpcMsg.MIGRATION_RESUME_WORK)).result, 0);
    // What the destination saves now carries the source's guest-visible state (its blob, BME).
    assert.equal((await dst.call(VgpuRpcMsg.MIGRATION_STOP_WORK)).result, 0);
    assert.equal((await dst.call(VgpuRpcMsg.MIGRATION_SAVE_STATE)).result, 0);
    const again = decodeContextImage(Uint8Array.from(dst.comm.subarray(MgmtHeap.MIGRATION_OFFSET, MgmtHeap.MIGRATION_OFFSET + dst.response('migration_buf_gsp_access_offset'))));
    assert.equal(again.srcGfid, 7);
    assert.deepEqual(again.ctx.blob, saved.ctx.blob);
    assert.equal(again.ctx.bme.enable, true);
    // Source rollback: cancel the save and resume.
    assert.equal((await src.call(VgpuRpcMsg.MIGRATION_CANCEL_SAVE)).result, 0);
    assert.equal(src.response('migration_state_save_complete'), 0);
    assert.equal((await src.call(VgpuRpcMsg.MIGRATION_RESUME_WORK)).result, 0);
  });

  it('refuses to restore an image of another vGPU type', async () => {
    const src = await configured(8);
    await src.call(VgpuRpcMsg.MIGRATION_STOP_WORK);
    await src.call(VgpuRpcMsg.MIGRATION_SAVE_STATE);
    const len = src.response('migration_buf_gsp_access_offset');
    const image = Uint8Array.from(src.comm.subarray(MgmtHeap.MIGRATION_OFFSET, MgmtHeap.MIGRATION_OFFSET + len));
    const dst = new MailboxHost(gpu, dev, client, slot(9));
    await dst.bringUp();
    assert.equal((await dst.call(VgpuRpcMsg.SETUP_CONFIG_PARAMS_AND_INIT, config(dst, { vgpu_type: TYPE + 1 }))).result, 0);
    await dst.call(VgpuRpcMsg.MIGRATION_STOP_WORK);
    assert.notEqual(await restore(dst, image), 0);
    assert.match(errors(dst).at(-1)!.text, /type/);
  });
});

describe('plugin task shutdown', () => {
  it('ignores (and logs) a doorbell once SHUTDOWN stopped the task; cleanup removes it', async () => {
    const h = await configured(10);
    const before = h.response('message_seq_num_processed');
    await gpu.firmware.control(client, RmControl.VGPU_MGR_INTERNAL_SHUTDOWN_GSP_VGPU_PLUGIN_TASK, encodeShutdownParams(10));
    assert.equal(await dev.controls.pluginTask(10), 'shutdown');
    const seq = h.post(VgpuRpcMsg.RESET);
    await until('the ignored-doorbell log line', () => (h.log('vgpu-task').includes(`doorbell for seq ${seq} ignored`) ? true : undefined));
    assert.equal(h.response('message_seq_num_processed'), before, 'a stopped task answers nothing');
    assert.match(h.log('init-task'), /shut down/);
    await gpu.firmware.control(client, RmControl.VGPU_MGR_INTERNAL_VGPU_PLUGIN_CLEANUP, encodePluginCleanupParams(10));
    assert.equal(await dev.controls.pluginTask(10), null);
    // Bootloading the gfid again starts a fresh task that answers from sequence 1 on.
    const again = new MailboxHost(gpu, dev, client, slot(10));
    await again.bringUp();
    assert.equal(again.response('message_seq_num_processed'), 0, 'the stale reply of the old task was cleared');
    assert.equal((await again.call(VgpuRpcMsg.VERSION_NEGOTIATION)).result, 0);
  });
});

describe('host events', () => {
  it('delivers unbind, suspend and resume to onHostEvent listeners', async () => {
    const seen: string[] = [];
    const off = gpu.onHostEvent((e) => seen.push(e.kind));
    try {
      await dev.controls.hostEvent({ kind: 'suspend' });
      await dev.controls.hostEvent({ kind: 'resume' });
      await dev.controls.hostEvent({ kind: 'unbind' });
      await until('three host events', () => (seen.length >= 3 ? true : undefined));
      assert.deepEqual(seen, ['suspend', 'resume', 'unbind']);
    } finally {
      off();
    }
  });

  it('sriov-configure changes the VF count first, then tells the listeners', async () => {
    assert.equal(gpu.vfs().length, 32);
    const seen: Array<{ kind: string; numVfs?: number; vfs: number }> = [];
    const off = gpu.onHostEvent((e) => seen.push({ ...e, vfs: gpu.vfs().length }));
    try {
      await dev.controls.hostEvent({ kind: 'sriov-configure', numVfs: 4 });
      await until('the sriov-configure event', () => (seen.length > 0 ? true : undefined));
      assert.deepEqual(seen, [{ kind: 'sriov-configure', numVfs: 4, vfs: 4 }]);
      await assert.rejects(dev.controls.hostEvent({ kind: 'sriov-configure', numVfs: 99 }), /outside 0\.\.32/);
      await dev.controls.hostEvent({ kind: 'sriov-configure', numVfs: 32 });
      await until('the second event', () => (seen.length > 1 ? true : undefined));
      assert.equal(gpu.vfs().length, 32);
    } finally {
      off();
    }
  });
});
