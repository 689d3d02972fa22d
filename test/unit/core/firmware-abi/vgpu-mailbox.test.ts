import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  CONFIG_PARAMS_PAYLOAD, CONFIG_SNAPSHOT_SIZE, CTRL_BUFFER, GSP_PLUGIN_BOOTLOADED, MgmtHeap, RESPONSE_BUFFER,
  VF_PRIV_DOORBELL_OFFSET, VgpuRpcMsg, configSnapshotBytes, decodeBmeState, decodeConfigParams, doorbellValue,
  encodeBmeState, encodeConfigParams, gfidFromDoorbell, initialCtrlHeader, logArea, vgpuRpcMsgName,
} from '../../../../core/firmware-abi/index.js';
import { isVgpuError } from '../../../../core/contracts/exceptions.js';

test('mgmt-heap regions are back to back and match the spec offsets', () => {
  const KiB = 1024;
  assert.equal(MgmtHeap.INIT_TASK_LOG_OFFSET, 0x204000);
  assert.equal(MgmtHeap.VGPU_TASK_LOG_OFFSET, 0x224000);
  assert.equal(MgmtHeap.KERNEL_LOG_OFFSET, 0x264000);
  assert.equal(MgmtHeap.COMM_BUFF_SIZE, 2_572_288);
  // comm_buff_size = 3×4K + 2M + 4K + 128K + 256K + 64K (docs/reference/create-order.md)
  assert.equal(MgmtHeap.COMM_BUFF_SIZE, 3 * 4 * KiB + 2048 * KiB + 4 * KiB + 128 * KiB + 256 * KiB + 64 * KiB);
  const chain: [number, number][] = [
    [MgmtHeap.CTRL_OFFSET, MgmtHeap.CTRL_SIZE], [MgmtHeap.RESPONSE_OFFSET, MgmtHeap.RESPONSE_SIZE],
    [MgmtHeap.MESSAGE_OFFSET, MgmtHeap.MESSAGE_SIZE], [MgmtHeap.MIGRATION_OFFSET, MgmtHeap.MIGRATION_SIZE],
    [MgmtHeap.ERROR_OFFSET, MgmtHeap.ERROR_SIZE], [MgmtHeap.INIT_TASK_LOG_OFFSET, MgmtHeap.INIT_TASK_LOG_SIZE],
    [MgmtHeap.VGPU_TASK_LOG_OFFSET, MgmtHeap.VGPU_TASK_LOG_SIZE], [MgmtHeap.KERNEL_LOG_OFFSET, MgmtHeap.KERNEL_LOG_SIZE],
  ];
  let end = 0;
  for (const [off, size] of chain) { assert.equal(off, end); end = off + size; }
  assert.equal(end, MgmtHeap.COMM_BUFF_SIZE);
  assert.deepEqual(logArea('vgpu-task'), { offset: 0x224000, size: 256 * KiB });
});

test('control buffer field offsets (natural alignment) and the bring-up header', () => {
  const expected: Record<string, number> = {
    version: 0, message_type: 4, message_seq_num: 8, response_buff_offset: 16, message_buff_offset: 24,
    migration_buff_offset: 32, error_buff_offset: 40, migration_buf_cpu_access_offset: 48,
    is_migration_in_progress: 52, error_buff_cpu_get_idx: 56, attached_vgpu_count: 60, host_info: 64,
  };
  for (const f of CTRL_BUFFER.fields) assert.equal(f.offset, expected[f.name], f.name);
  assert.equal(CTRL_BUFFER.size, 64 + 16 * 28);
  assert.ok(CTRL_BUFFER.size <= MgmtHeap.CTRL_SIZE);
  const bytes = CTRL_BUFFER.encode(initialCtrlHeader());
  const v = new DataView(bytes.buffer);
  assert.equal(v.getUint32(0, true), 1);
  assert.equal(v.getBigUint64(16, true), 0x1000n);
  assert.equal(v.getBigUint64(24, true), 0x2000n);
  assert.equal(v.getBigUint64(32, true), 0x3000n);
  assert.equal(v.getBigUint64(40, true), 0x203000n);
  const d = CTRL_BUFFER.decode(CTRL_BUFFER.encode({ message_seq_num: GSP_PLUGIN_BOOTLOADED, host_info: [{ vgpu_type_id: 941 }] }));
  assert.equal(d.message_seq_num, 0x4e654a6f);
  assert.equal(d.host_info[0]?.vgpu_type_id, 941);
  assert.equal(d.host_info.length, 16);
});

test('response buffer offsets (570 layout)', () => {
  assert.equal(RESPONSE_BUFFER.offsetOf('message_seq_num_processed'), 4);
  assert.equal(RESPONSE_BUFFER.offsetOf('result_code'), 8);
  assert.equal(RESPONSE_BUFFER.offsetOf('surface'), 24);
  assert.equal(RESPONSE_BUFFER.offsetOf('error_buff_gsp_put_idx'), 24 + 4 * 72);
  assert.equal(RESPONSE_BUFFER.offsetOf('frl_config'), 324);
  assert.equal(RESPONSE_BUFFER.size, 328);
  const d = RESPONSE_BUFFER.decode(RESPONSE_BUFFER.encode({ message_seq_num_processed: 5, result_code: 0x1f, surface: [{}, { rect_width: 1920, is_flip_pending: true }] }));
  assert.equal(d.message_seq_num_processed, 5);
  assert.equal(d.result_code, 0x1f);
  assert.equal(d.surface[1]?.rect_width, 1920);
  assert.equal(d.surface[1]?.is_flip_pending, true);
});

test('message types 1..15 and names', () => {
  assert.equal(VgpuRpcMsg.VERSION_NEGOTIATION, 1);
  assert.equal(VgpuRpcMsg.SETUP_CONFIG_PARAMS_AND_INIT, 2);
  assert.equal(VgpuRpcMsg.RESET, 3);
  assert.equal(VgpuRpcMsg.UPDATE_BME_STATE, 13);
  assert.equal(VgpuRpcMsg.MAX, 15);
  const values = Object.values(VgpuRpcMsg).sort((a, b) => a - b);
  assert.deepEqual(values, Array.from({ length: 15 }, (_, i) => i + 1));
  assert.equal(vgpuRpcMsgName(13), 'UPDATE_BME_STATE');
  assert.equal(vgpuRpcMsgName(15), 'MSG_15');
});

test('doorbell: PF BAR0 0xB82200, gfid*32+17, and its inverse', () => {
  assert.equal(VF_PRIV_DOORBELL_OFFSET, 0xb80000 + 0x2200);
  assert.equal(doorbellValue(1), 49);
  assert.equal(doorbellValue(32), 1041);
  assert.equal(gfidFromDoorbell(1041), 32);
  assert.equal(gfidFromDoorbell(1040), null);
  assert.equal(gfidFromDoorbell(17), null);
  assert.throws(() => doorbellValue(0), (e) => isVgpuError(e, 'VGPU_EINVAL'));
});

test('BME payload: {enable, allowed} in 2 bytes', () => {
  const b = encodeBmeState({ enable: true });
  assert.deepEqual([...b], [1, 0]);
  assert.deepEqual(decodeBmeState(b), { enable: true, allowed: false });
});

test('config params: layout, the 88-byte snapshot and its decoded defaults', () => {
  assert.equal(CONFIG_PARAMS_PAYLOAD.offsetOf('host_page_size'), 64);
  assert.equal(CONFIG_PARAMS_PAYLOAD.offsetOf('rev1'), 72);
  assert.equal(CONFIG_PARAMS_PAYLOAD.offsetOf('rev3'), 81);
  assert.equal(CONFIG_PARAMS_PAYLOAD.offsetOf('placement_id'), 84);
  // rev4 follows 14 bytes of bools + u16 after offset 72 and is padded from 86 to 88 (raised in review of RFC v2
  // patch 10)
  assert.equal(CONFIG_PARAMS_PAYLOAD.offsetOf('rev4'), 88);
  assert.equal(CONFIG_PARAMS_PAYLOAD.offsetOf('rev7'), 104);
  assert.equal(CONFIG_PARAMS_PAYLOAD.size, 112);
  const snap = configSnapshotBytes();
  assert.equal(snap.length, CONFIG_SNAPSHOT_SIZE);
  assert.deepEqual([...snap.subarray(0, 16)], [0x24, 0xef, 0x8f, 0xf7, 0x3e, 0xd5, 0x11, 0xef, 0xae, 0x36, 0x97, 0x58, 0xb1, 0xcb, 0x0c, 0x87]);
  const d = decodeConfigParams(snap);
  assert.equal(d.migration_feature, 0x4000);
  assert.equal(d.hypervisor_type, 4);
  assert.equal(d.host_cpu_arch, 2);
  assert.equal(d.host_page_size, 4096n);
  assert.equal(d.linux_interrupt_optimization, true);
  assert.equal(d.rev2, true);
  assert.equal(d.enable_console_vnc, true);
  assert.equal(d.vgpu_type, 869);
  assert.equal(d.num_channels, 64);
  assert.equal(d.num_plugin_channels, 3);
  assert.equal(d.swizz_id, 0xffffffff);
  assert.equal(d.enable_uvm, false);
  assert.equal(d.vmm_migration_supported, false);
  assert.equal(d.use_non_stall_linux_events, false);
  assert.equal(d.placement_id, 0);
  // byte-level spot checks against hand-computed offsets
  const v = new DataView(snap.buffer);
  assert.equal(v.getUint32(52, true), 0x4000);
  assert.equal(snap[76], 1);
  assert.equal(snap[78], 1);
  assert.equal(snap[79], 1);
});

test('config params: v2 overrides on top of the snapshot', () => {
  const bytes = encodeConfigParams({ dbdf: 0x4104, vgpu_device_instance_id: 0xc1d00004, vgpu_type: 941, vm_pid: 777, num_channels: 64, num_plugin_channels: 1, placement_id: 3 });
  assert.equal(bytes.length, 112);
  const d = decodeConfigParams(bytes);
  assert.equal(d.dbdf, 0x4104);
  assert.equal(d.vgpu_device_instance_id, 0xc1d00004);
  assert.equal(d.vgpu_type, 941);
  assert.equal(d.swizz_id, 0);
  assert.equal(d.num_plugin_channels, 1);
  assert.equal(d.placement_id, 3);
  assert.equal(d.hypervisor_type, 4);
  assert.equal(d.rev6, 0);
});
