/**
 * The ADD_VGPU_TYPE payload in NVIDIA's NVA081_CTRL_VGPU_INFO layout (r570.144): the offsets below are worked out by
 * hand from the header's field list and C alignment (docs/reference/metadata-format.md), not read back from the
 * code, so a slip in the field list or the alignment rules fails here.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode, isVgpuError, VgpuError } from '../../../core/contracts/exceptions.js';
import {
  ADD_VGPU_TYPE_PARAMS,
  decodeAddVgpuTypeParams,
  decodeVgpuInfoRecord,
  encodeAddVgpuTypeParams,
  encodeVgpuInfoRecord,
  kernelTypeFromInfo,
  NVA081_CTRL_VGPU_INFO,
  type VgpuInfoRecord,
} from '../../../core/metadata/vgpu-info-record.js';

/** The RFC v1 hard-coded L40-1B record (RFC v1 vgpu_types.c), as far as this project models it. */
const l40_1b: VgpuInfoRecord = {
  id: 869, name: 'NVIDIA L40-1B', vgpuClass: 'NVS', license: 'GRID-Virtual-PC,2.0;Quadro-Virtual-DWS,5.0;GRID-Virtual-WS,2.0;GRID-Virtual-WS-Ext,2.0',
  maxInstance: 32, numHeads: 4, maxResolutionX: 5120, maxResolutionY: 2880,
  maxPixels: 16_384_000, frlConfig: 45, cudaEnabled: false, eccSupported: false, multiVgpuSupported: false,
  vdevId: 0x26b5176d, pdevId: 0x26b5, profileSize: 1n << 30n, fbLength: 1n << 30n, gspHeapSize: 32n << 20n, fbReservation: 0n,
  bar1LengthMiB: 256, frlEnable: true, series: 'B',
};

/** Hand-worked offsets: 4+32+32+128+128 = 324 for maxInstance; ten u32 to 364; vdevId aligned up to 368; … */
const OFF = {
  maxInstance: 324, numHeads: 328, maxPixels: 340, frlConfig: 344, cudaEnabled: 348, multiVgpuSupported: 360,
  vdevId: 368, pdevId: 376, profileSize: 384, fbLength: 392, gspHeapSize: 400, encoderCapacity: 424, bar1Length: 432,
  frlEnable: 440, adapterName: 444, adapterNameUnicode: 508, licensedProductName: 700, vgpuExtraParams: 828,
  gpuInstanceProfileId: 4948, placementSize: 4952, homogeneousPlacementIds: 4960, heterogeneousPlacementIds: 5092,
  size: 5224,
};

function metaErr(fn: () => unknown, offset: number, field: string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof VgpuError && e.code === ErrorCode.Metadata, String(e));
    assert.deepEqual(e.details, { offset, field });
    return true;
  });
}

describe('NVA081_CTRL_VGPU_INFO record (r570.144 layout)', () => {
  it('has the field offsets and size C gives the header declaration', () => {
    const f = (n: string): number => NVA081_CTRL_VGPU_INFO.field(n).offset;
    assert.equal(f('maxInstance'), OFF.maxInstance);
    assert.equal(f('vdevId'), OFF.vdevId);
    assert.equal(f('profileSize'), OFF.profileSize);
    assert.equal(f('encoderCapacity'), OFF.encoderCapacity);
    assert.equal(f('bar1Length'), OFF.bar1Length);
    assert.equal(f('frlEnable'), OFF.frlEnable);
    assert.equal(f('adapterName_Unicode'), OFF.adapterNameUnicode);
    assert.equal(f('licensedProductName'), OFF.licensedProductName);
    assert.equal(f('vgpuExtraParams'), OFF.vgpuExtraParams);
    assert.equal(f('gpuInstanceProfileId'), OFF.gpuInstanceProfileId);
    assert.equal(f('placementSize'), OFF.placementSize);
    assert.equal(f('homogeneousPlacementIds'), OFF.homogeneousPlacementIds);
    assert.equal(f('heterogeneousPlacementIds'), OFF.heterogeneousPlacementIds);
    assert.equal(NVA081_CTRL_VGPU_INFO.size, OFF.size);
    // The params: NvBool, NvU32 at 4, then the 8-aligned fixed array of NVA081_MAX_VGPU_TYPES_PER_PGPU (0x40) records.
    assert.deepEqual([ADD_VGPU_TYPE_PARAMS.vgpuInfoCount, ADD_VGPU_TYPE_PARAMS.vgpuInfo, ADD_VGPU_TYPE_PARAMS.bytes], [4, 8, 8 + 0x40 * 5224]);
  });
  it('puts the values where the real GSP reads them', () => {
    const b = encodeVgpuInfoRecord(l40_1b);
    const dv = new DataView(b.buffer);
    assert.equal(b.byteLength, OFF.size);
    assert.equal(dv.getUint32(0, true), 869);
    assert.equal(new TextDecoder().decode(b.subarray(4, 17)), 'NVIDIA L40-1B');
    assert.equal(new TextDecoder().decode(b.subarray(36, 39)), 'NVS');
    assert.equal(new TextDecoder().decode(b.subarray(196, 196 + 15)), 'GRID-Virtual-PC');
    assert.equal(dv.getUint32(OFF.maxInstance, true), 32);
    assert.equal(dv.getUint32(OFF.numHeads, true), 4);
    assert.equal(dv.getUint32(OFF.maxPixels, true), 16_384_000);
    assert.equal(dv.getUint32(OFF.frlConfig, true), 45);
    assert.equal(dv.getBigUint64(OFF.vdevId, true), 0x26b5176dn);
    assert.equal(dv.getBigUint64(OFF.pdevId, true), 0x26b5n);
    assert.equal(dv.getBigUint64(OFF.profileSize, true), 1n << 30n);
    assert.equal(dv.getBigUint64(OFF.fbLength, true), 1n << 30n);
    assert.equal(dv.getBigUint64(OFF.gspHeapSize, true), 32n << 20n);
    assert.equal(dv.getBigUint64(OFF.bar1Length, true), 256n);
    assert.equal(dv.getUint32(OFF.frlEnable, true), 1);
    // Fields this project does not model stay zero (signature, extra params, placements).
    assert.ok(b.subarray(68, 196).every((x) => x === 0));
    assert.ok(b.subarray(OFF.adapterName, OFF.size).every((x) => x === 0));
  });
  it('round-trips one record and a params payload', () => {
    assert.deepEqual(decodeVgpuInfoRecord(encodeVgpuInfoRecord(l40_1b)), l40_1b);
    const second = { ...l40_1b, id: 870, name: 'NVIDIA L40-2B', profileSize: 2n << 30n, fbLength: 1920n << 20n, maxInstance: 24 };
    const payload = encodeAddVgpuTypeParams({ discardVgpuTypes: true, infos: [l40_1b, second] });
    assert.equal(payload.byteLength, ADD_VGPU_TYPE_PARAMS.bytes);
    assert.deepEqual(decodeAddVgpuTypeParams(payload), { discardVgpuTypes: true, infos: [l40_1b, second] });
  });
  it('derives the kernel record from the GSP record (the guest FB, not the profile)', () => {
    assert.deepEqual(kernelTypeFromInfo({ ...l40_1b, fbLength: 960n << 20n }), {
      id: 869, name: 'NVIDIA L40-1B', vdevId: 0x26b5176d, pdevId: 0x26b5, fbLength: 960n << 20n, gspHeapSize: 32n << 20n,
      bar1LengthMiB: 256, maxInstance: 32, eccSupported: false, fbReservation: 0n,
    });
  });
  it('refuses to encode what it could not decode', () => {
    const invalid = (r: VgpuInfoRecord): void => assert.throws(() => encodeVgpuInfoRecord(r), (e) => isVgpuError(e, ErrorCode.InvalidArgument));
    invalid({ ...l40_1b, name: 'x'.repeat(32) });
    invalid({ ...l40_1b, series: 'Q' });
    invalid({ ...l40_1b, fbLength: 2n << 30n });
    invalid({ ...l40_1b, license: 'é' });
    assert.throws(() => encodeAddVgpuTypeParams({ discardVgpuTypes: true, infos: [] }), (e) => isVgpuError(e, ErrorCode.InvalidArgument));
  });
  it('decoding errors name the offset (shifted by baseOffset) and field', () => {
    const payload = encodeAddVgpuTypeParams({ discardVgpuTypes: false, infos: [l40_1b] });
    const bad = (edit: (dv: DataView, b: Uint8Array) => void) => {
      const b = payload.slice();
      edit(new DataView(b.buffer), b);
      return b;
    };
    const r0 = 8;
    metaErr(() => decodeAddVgpuTypeParams(payload.subarray(0, 5)), 5, 'add_vgpu_type_params');
    metaErr(() => decodeAddVgpuTypeParams(payload.subarray(0, payload.byteLength - 8)), payload.byteLength - 8, 'add_vgpu_type_params');
    metaErr(() => decodeAddVgpuTypeParams(bad((_, b) => { b[0] = 2; })), 0, 'discardVgpuTypes');
    metaErr(() => decodeAddVgpuTypeParams(bad((_, b) => { b[2] = 1; })), 2, 'padding');
    // A count past the uploaded records reaches a zeroed slot: type id 0 is the invalid type.
    metaErr(() => decodeAddVgpuTypeParams(bad((dv) => dv.setUint32(4, 2, true))), r0 + OFF.size, 'vgpuInfo[1].vgpuType');
    metaErr(() => decodeAddVgpuTypeParams(bad((dv) => dv.setUint32(4, 0, true))), 4, 'vgpuInfoCount');
    metaErr(() => decodeAddVgpuTypeParams(bad((dv) => dv.setUint32(4, 0x41, true))), 4, 'vgpuInfoCount');
    metaErr(() => decodeAddVgpuTypeParams(bad((dv) => dv.setUint32(r0 + OFF.cudaEnabled, 7, true)), { baseOffset: 1000 }), 1000 + r0 + OFF.cudaEnabled, 'vgpuInfo[0].cudaEnabled');
    metaErr(() => decodeAddVgpuTypeParams(bad((_, b) => { b[r0 + 16] = 0x5a; })), r0 + 4, 'vgpuInfo[0].vgpuName');
    metaErr(() => decodeAddVgpuTypeParams(bad((_, b) => b.fill(0x41, r0 + 36, r0 + 68))), r0 + 36, 'vgpuInfo[0].vgpuClass');
    metaErr(() => decodeAddVgpuTypeParams(bad((dv) => dv.setBigUint64(r0 + OFF.vdevId, 1n << 40n, true))), r0 + OFF.vdevId, 'vgpuInfo[0].vdevId');
    metaErr(() => decodeAddVgpuTypeParams(bad((dv) => dv.setBigUint64(r0 + OFF.fbLength, 2n << 30n, true))), r0 + OFF.fbLength, 'vgpuInfo[0].fbLength');
    metaErr(() => decodeAddVgpuTypeParams(bad((dv) => dv.setUint32(r0 + OFF.maxInstance, 33, true))), r0 + OFF.maxInstance, 'vgpuInfo[0].maxInstance');
  });
  it('ignores the slots past vgpuInfoCount, as GSP-RM reads only count entries', () => {
    const payload = encodeAddVgpuTypeParams({ discardVgpuTypes: true, infos: [l40_1b] });
    payload.fill(0xff, 8 + 2 * OFF.size, 8 + 3 * OFF.size);
    assert.equal(decodeAddVgpuTypeParams(payload).infos.length, 1);
  });
});
