import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  BOOTLOAD_PARAMS, GPU_QUERY_ECC_STATUS_PARAMS, GSP_GET_FEATURES_PARAMS, RmClass, RmControl, rmControlName,
  decodeBootloadParams, decodeEccStatus, decodeGspFeatures, decodePluginCleanupParams, decodeShutdownParams,
  decodeVmmuSegmentSize, encodeBootloadParams, encodeEccStatus, encodeGspFeatures, encodePluginCleanupParams,
  encodeShutdownParams, encodeVmmuSegmentSize,
} from '../../../../core/firmware-abi/index.js';
import { isVgpuError } from '../../../../core/contracts/exceptions.js';

const MiB = 1n << 20n;

test('command and class ids are the NVIDIA numbers', () => {
  assert.equal(RmControl.GSP_GET_FEATURES, 0x20803601);
  assert.equal(RmControl.GPU_GET_VMMU_SEGMENT_SIZE, 0x2080017e);
  assert.equal(RmControl.GPU_QUERY_ECC_STATUS, 0x2080012f);
  assert.equal(RmControl.VGPU_MGR_INTERNAL_BOOTLOAD_GSP_VGPU_PLUGIN_TASK, 0x20804001);
  assert.equal(RmControl.VGPU_MGR_INTERNAL_SHUTDOWN_GSP_VGPU_PLUGIN_TASK, 0x20804002);
  assert.equal(RmControl.VGPU_MGR_INTERNAL_PGPU_ADD_VGPU_TYPE, 0x20804003);
  assert.equal(RmControl.VGPU_MGR_INTERNAL_VGPU_PLUGIN_CLEANUP, 0x20804008);
  assert.deepEqual([RmClass.NV01_ROOT, RmClass.NV01_DEVICE_0, RmClass.NV20_SUBDEVICE_0], [0, 0x80, 0x2080]);
  assert.equal(rmControlName(0x20804001), 'VGPU_MGR_INTERNAL_BOOTLOAD_GSP_VGPU_PLUGIN_TASK');
  assert.equal(rmControlName(0x12345678), '0x12345678');
});

test('GSP_GET_FEATURES: layout and round trip, version string NUL-padded at byte 6', () => {
  assert.equal(GSP_GET_FEATURES_PARAMS.offsetOf('bValid'), 4);
  assert.equal(GSP_GET_FEATURES_PARAMS.offsetOf('bDefaultGspRmGpu'), 5);
  assert.equal(GSP_GET_FEATURES_PARAMS.offsetOf('firmwareVersion'), 6);
  assert.equal(GSP_GET_FEATURES_PARAMS.size, 72);
  const bytes = encodeGspFeatures({ gspFeatures: 0xdead, bValid: true, firmwareVersion: '570.144' });
  assert.equal(bytes.length, 72);
  assert.equal(new TextDecoder().decode(bytes.subarray(6, 13)), '570.144');
  assert.equal(bytes[13], 0);
  assert.deepEqual(decodeGspFeatures(bytes), { gspFeatures: 0xdead, bValid: true, bDefaultGspRmGpu: false, firmwareVersion: '570.144' });
  assert.throws(() => encodeGspFeatures({ firmwareVersion: 'x'.repeat(64) }), (e) => isVgpuError(e, 'VGPU_EINVAL'));
});

test('VMMU segment size: u64, only 32..512 MiB accepted', () => {
  for (const s of [32n, 64n, 128n, 256n, 512n]) {
    const b = encodeVmmuSegmentSize(s * MiB);
    assert.equal(b.length, 8);
    assert.equal(decodeVmmuSegmentSize(b), s * MiB);
  }
  assert.equal(new DataView(encodeVmmuSegmentSize(0x02000000n).buffer).getUint32(0, true), 0x02000000);
  assert.throws(() => decodeVmmuSegmentSize(encodeVmmuSegmentSize(48n * MiB)), (e) => isVgpuError(e, 'VGPU_ERPC'));
  assert.throws(() => decodeVmmuSegmentSize(new Uint8Array(4)), (e) => isVgpuError(e, 'VGPU_EINVAL'));
});

test('ECC status: 36 units of 40 bytes, tail fields at their C offsets', () => {
  assert.equal(GPU_QUERY_ECC_STATUS_PARAMS.size, 1464);
  assert.equal(GPU_QUERY_ECC_STATUS_PARAMS.offsetOf('bFatalPoisonError'), 1440);
  assert.equal(GPU_QUERY_ECC_STATUS_PARAMS.offsetOf('flags'), 1444);
  assert.equal(GPU_QUERY_ECC_STATUS_PARAMS.offsetOf('grRouteInfo'), 1448);
  const bytes = encodeEccStatus({ units: [{ enabled: true, supported: true, sbe: 7n }, { dbe: 1n }], flags: 3 });
  assert.equal(bytes[0], 1); // units[0].enabled
  assert.equal(bytes[2], 1); // units[0].supported
  assert.equal(new DataView(bytes.buffer).getBigUint64(24, true), 7n); // units[0].sbe
  assert.equal(new DataView(bytes.buffer).getBigUint64(40 + 8, true), 1n); // units[1].dbe
  const d = decodeEccStatus(bytes);
  assert.equal(d.units.length, 36);
  assert.equal(d.units[0]?.enabled, true);
  assert.equal(d.units[0]?.scrubComplete, false);
  assert.equal(d.units[1]?.dbe, 1n);
  assert.equal(d.flags, 3);
});

test('BOOTLOAD params: 570 layout offsets and total size', () => {
  const expected: Record<string, number> = {
    dbdf: 0, gfid: 4, vgpuType: 8, vmPid: 12, swizzId: 16, numChannels: 20, numPluginChannels: 24, chidOffset: 28,
    bDisableDefaultSmcExecPartRestore: 364, numGuestFbSegments: 368, guestFbPhysAddrList: 376,
    guestFbLengthList: 3448, pluginHeapMemoryPhysAddr: 6520, pluginHeapMemoryLength: 6528, ctrlBuffOffset: 6536,
    initTaskLogBuffOffset: 6544, initTaskLogBuffSize: 6552, vgpuTaskLogBuffOffset: 6560, vgpuTaskLogBuffSize: 6568,
    kernelLogBuffOffset: 6576, kernelLogBuffSize: 6584, migRmHeapMemoryPhysAddr: 6592, migRmHeapMemoryLength: 6600,
    bDeviceProfilingEnabled: 6608,
  };
  for (const f of BOOTLOAD_PARAMS.fields) assert.equal(f.offset, expected[f.name], f.name);
  assert.equal(BOOTLOAD_PARAMS.fields.length, Object.keys(expected).length);
  assert.equal(BOOTLOAD_PARAMS.size, 6616);
});

test('BOOTLOAD params: round trip with v2 values', () => {
  const heap = 0x7_0000_0000n;
  const bytes = encodeBootloadParams({
    dbdf: 0x4104, gfid: 4, vmPid: 4242, numChannels: 64, numPluginChannels: 1,
    chidOffset: [512, 0, 512], numGuestFbSegments: 1,
    guestFbPhysAddrList: [0x2_0000_0000n], guestFbLengthList: [1n << 30n],
    pluginHeapMemoryPhysAddr: heap, pluginHeapMemoryLength: 32n * MiB,
    initTaskLogBuffOffset: heap + 0x204000n, initTaskLogBuffSize: 128n * 1024n,
    bDeviceProfilingEnabled: true,
  });
  assert.equal(bytes.length, 6616);
  const view = new DataView(bytes.buffer);
  assert.equal(view.getUint32(4, true), 4);
  assert.equal(view.getUint32(28 + 2 * 4, true), 512);
  assert.equal(view.getBigUint64(376, true), 0x2_0000_0000n);
  assert.equal(view.getBigUint64(6544, true), heap + 0x204000n);
  assert.equal(bytes[6608], 1);
  const d = decodeBootloadParams(bytes);
  assert.equal(d.dbdf, 0x4104);
  assert.equal(d.vgpuType, 0);
  assert.deepEqual(d.chidOffset.slice(0, 4), [512, 0, 512, 0]);
  assert.equal(d.chidOffset.length, 84);
  assert.equal(d.guestFbLengthList[0], 1n << 30n);
  assert.equal(d.guestFbLengthList.length, 384);
  assert.equal(d.initTaskLogBuffSize, 131072n);
  assert.equal(d.bDeviceProfilingEnabled, true);
  assert.equal(d.bDisableDefaultSmcExecPartRestore, false);
});

test('BOOTLOAD params: out-of-range values are refused, not truncated', () => {
  assert.throws(() => encodeBootloadParams({ gfid: -1 }), (e) => isVgpuError(e, 'VGPU_EINVAL'));
  assert.throws(() => encodeBootloadParams({ gfid: 2 ** 32 }), (e) => isVgpuError(e, 'VGPU_EINVAL'));
  assert.throws(() => encodeBootloadParams({ chidOffset: new Array(85).fill(0) }), (e) => isVgpuError(e, 'VGPU_EINVAL'));
  assert.throws(() => encodeBootloadParams({ numGuestFbSegments: 385 }), (e) => isVgpuError(e, 'VGPU_EINVAL'));
  assert.throws(() => encodeBootloadParams({ bogus: 1 } as never), (e) => isVgpuError(e, 'VGPU_EINVAL'));
});

test('SHUTDOWN and PLUGIN_CLEANUP: {gfid u32}', () => {
  const s = encodeShutdownParams(7);
  const c = encodePluginCleanupParams(9);
  assert.deepEqual([...s], [7, 0, 0, 0]);
  assert.deepEqual([...c], [9, 0, 0, 0]);
  assert.equal(decodeShutdownParams(s).gfid, 7);
  assert.equal(decodePluginCleanupParams(c).gfid, 9);
});
