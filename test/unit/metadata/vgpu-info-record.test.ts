/** The RM-control payload codec the simulated GSP uses to read uploaded types. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode, isVgpuError, VgpuError } from '../../../core/contracts/exceptions.js';
import {
  decodeAddVgpuTypeParams,
  decodeVgpuInfoRecord,
  encodeAddVgpuTypeParams,
  encodeVgpuInfoRecord,
  kernelTypeFromInfo,
  type VgpuInfoRecord,
} from '../../../core/metadata/vgpu-info-record.js';

/** The RFC v1 hard-coded L40-1B record (seed spec §3.2), as far as our layout carries it. */
const l40_1b: VgpuInfoRecord = {
  id: 869, name: 'NVIDIA L40-1B', vgpuClass: 'NVS', maxInstance: 32, numHeads: 4, maxResolutionX: 5120, maxResolutionY: 2880,
  maxPixels: 16_384_000, frlConfig: 45, cudaEnabled: false, eccSupported: false, multiVgpuSupported: false,
  vdevId: 0x26b5176d, pdevId: 0x26b5, fbLength: 1n << 30n, gspHeapSize: 32n << 20n, fbReservation: 0n, bar1LengthMiB: 256, series: 'B',
};

function metaErr(fn: () => unknown, offset: number, field: string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof VgpuError && e.code === ErrorCode.Metadata, String(e));
    assert.deepEqual(e.details, { offset, field });
    return true;
  });
}

describe('vgpu info record', () => {
  it('is 160 bytes with fields at the documented offsets', () => {
    const b = encodeVgpuInfoRecord(l40_1b);
    const dv = new DataView(b.buffer);
    assert.equal(b.byteLength, 160);
    assert.equal(dv.getUint32(0, true), 869);
    assert.equal(new TextDecoder().decode(b.subarray(4, 17)), 'NVIDIA L40-1B');
    assert.equal(new TextDecoder().decode(b.subarray(36, 39)), 'NVS');
    assert.equal(dv.getUint32(68, true), 32);
    assert.equal(dv.getUint32(72, true), 4);
    assert.equal(dv.getUint32(84, true), 16_384_000);
    assert.equal(dv.getUint32(88, true), 45);
    assert.equal(dv.getBigUint64(104, true), 0x26b5176dn);
    assert.equal(dv.getBigUint64(120, true), 1n << 30n);
    assert.equal(dv.getBigUint64(144, true), 256n);
    assert.equal(b[152], 'B'.charCodeAt(0));
  });
  it('round-trips one record and a params payload', () => {
    assert.deepEqual(decodeVgpuInfoRecord(encodeVgpuInfoRecord(l40_1b)), l40_1b);
    const second = { ...l40_1b, id: 870, name: 'NVIDIA L40-2B', fbLength: 2n << 30n, maxInstance: 24 };
    const payload = encodeAddVgpuTypeParams({ discardVgpuTypes: true, infos: [l40_1b, second] });
    assert.equal(payload.byteLength, 8 + 2 * 160);
    assert.deepEqual(decodeAddVgpuTypeParams(payload), { discardVgpuTypes: true, infos: [l40_1b, second] });
  });
  it('derives the kernel record from the GSP record', () => {
    assert.deepEqual(kernelTypeFromInfo(l40_1b), {
      id: 869, name: 'NVIDIA L40-1B', vdevId: 0x26b5176d, pdevId: 0x26b5, fbLength: 1n << 30n, gspHeapSize: 32n << 20n,
      bar1LengthMiB: 256, maxInstance: 32, eccSupported: false, fbReservation: 0n,
    });
  });
  it('refuses to encode what it could not decode', () => {
    assert.throws(() => encodeVgpuInfoRecord({ ...l40_1b, name: 'x'.repeat(32) }), (e) => isVgpuError(e, ErrorCode.InvalidArgument));
    assert.throws(() => encodeVgpuInfoRecord({ ...l40_1b, series: 'Z' as 'Q' }), (e) => isVgpuError(e, ErrorCode.InvalidArgument));
    assert.throws(() => encodeAddVgpuTypeParams({ discardVgpuTypes: true, infos: [] }), (e) => isVgpuError(e, ErrorCode.InvalidArgument));
  });
  it('decoding errors name the offset (shifted by baseOffset) and field', () => {
    const payload = encodeAddVgpuTypeParams({ discardVgpuTypes: false, infos: [l40_1b] });
    const bad = (edit: (dv: DataView, b: Uint8Array) => void) => {
      const b = payload.slice();
      edit(new DataView(b.buffer), b);
      return b;
    };
    metaErr(() => decodeAddVgpuTypeParams(payload.subarray(0, 5)), 5, 'add_vgpu_type_params');
    metaErr(() => decodeAddVgpuTypeParams(bad((_, b) => { b[0] = 2; })), 0, 'discardVgpuTypes');
    metaErr(() => decodeAddVgpuTypeParams(bad((_, b) => { b[2] = 1; })), 2, 'padding');
    metaErr(() => decodeAddVgpuTypeParams(bad((dv) => dv.setUint32(4, 2, true))), 4, 'vgpuInfoCount');
    metaErr(() => decodeAddVgpuTypeParams(bad((dv) => dv.setUint32(4, 0, true))), 4, 'vgpuInfoCount');
    metaErr(() => decodeAddVgpuTypeParams(bad((dv) => dv.setUint32(8 + 92, 7, true)), { baseOffset: 1000 }), 1000 + 8 + 92, 'vgpuInfo[0].cudaEnabled');
    metaErr(() => decodeAddVgpuTypeParams(bad((_, b) => { b[8 + 152] = 0x5a; })), 8 + 152, 'vgpuInfo[0].series');
    metaErr(() => decodeAddVgpuTypeParams(bad((_, b) => { b[8 + 159] = 1; })), 8 + 159, 'vgpuInfo[0].reserved');
    metaErr(() => decodeAddVgpuTypeParams(bad((_, b) => b.fill(0x41, 8 + 36, 8 + 68))), 8 + 36, 'vgpuInfo[0].vgpuClass');
    metaErr(() => decodeAddVgpuTypeParams(bad((dv) => dv.setBigUint64(8 + 104, 1n << 40n, true))), 8 + 104, 'vgpuInfo[0].vdevId');
  });
});
