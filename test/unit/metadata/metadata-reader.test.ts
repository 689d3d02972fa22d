/**
 * Every check of the reader fails with the right byte offset and field, in the kernel's order. Layout of the
 * sample file (see metadata-test-helpers): header [0, 232); blob 0 (L40, 2 types, 5-byte payload) [232, 501):
 * blob header 232, type-blob header 248, records 304 and 400, payload 496; blob 1 (L4, 1 type) [501, 674).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode, isVgpuError } from '../../../core/contracts/exceptions.js';
import { parseMetadata, typesFor } from '../../../core/metadata/metadata-reader.js';
import { buildMetadata, encodeMetadataUnchecked } from '../../../core/metadata/metadata-writer.js';
import { assertMetadataError, patched, sampleBlob, sampleSpec, sampleType } from './metadata-test-helpers.js';

const good = buildMetadata(sampleSpec());
const B0 = 232; // blob 0 header
const T0 = B0 + 16; // blob 0 vgpu_type_blob_hdr
const R0 = T0 + 56; // blob 0 record 0
const B1 = 501; // blob 1 header

describe('metadata reader: layout facts of the sample', () => {
  it('is 674 bytes with two blobs and parses', () => {
    assert.equal(good.byteLength, 674);
    const f = parseMetadata(good);
    assert.deepEqual(f.blobs.map((b) => b.deviceId), [0x26b5, 0x27b8]);
    assert.deepEqual(f.blobs[0]!.types.map((t) => t.id), [869, 870]);
  });
});

describe('metadata reader: header checks', () => {
  it('refuses a file no longer than the header', () => {
    assertMetadataError(() => parseMetadata(good.subarray(0, 200)), 200, 'metadata_hdr');
    assertMetadataError(() => parseMetadata(good.subarray(0, 232)), 232, 'metadata_hdr');
    assertMetadataError(() => parseMetadata(new Uint8Array(0)), 0, 'metadata_hdr');
  });
  it('refuses a bad CRC (a truncated copy shows up here, as in the kernel)', () => {
    assertMetadataError(() => parseMetadata(patched(good, (_, b) => { b[600] = b[600]! ^ 1; }, false)), 8, 'crc32');
    assertMetadataError(() => parseMetadata(good.subarray(0, 600)), 8, 'crc32');
  });
  it('checks the CRC before the identifier (kernel order)', () => {
    assertMetadataError(() => parseMetadata(patched(good, (_, b) => { b[0] = 0x41; b[600] = b[600]! ^ 1; }, false)), 8, 'crc32');
  });
  it('refuses a bad identifier, naming the first wrong byte', () => {
    assertMetadataError(() => parseMetadata(patched(good, (_, b) => { b[3] = 0x58; })), 3, 'identifier');
  });
  it('refuses non-zero header padding (it is outside the CRC)', () => {
    assertMetadataError(() => parseMetadata(patched(good, (_, b) => { b[13] = 1; })), 13, 'padding');
  });
  it('refuses num_blobs of 0 or more than could fit', () => {
    assertMetadataError(() => parseMetadata(patched(good, (dv) => dv.setBigUint64(224, 0n, true))), 224, 'num_blobs');
    // (674 - 232) / 16 = 27 blob headers could fit at most.
    assertMetadataError(() => parseMetadata(patched(good, (dv) => dv.setBigUint64(224, 28n, true))), 224, 'num_blobs');
    assertMetadataError(() => parseMetadata(patched(good, (dv) => dv.setBigUint64(224, 1n << 63n, true))), 224, 'num_blobs');
  });
  it('refuses a num_blobs that walks past the end, or leaves trailing bytes', () => {
    assertMetadataError(() => parseMetadata(patched(good, (dv) => dv.setBigUint64(224, 3n, true))), 674, 'blob[2].header');
    assertMetadataError(() => parseMetadata(patched(good, (dv) => dv.setBigUint64(224, 1n, true))), B1, 'file_end');
  });
  it('requires the running GSP version when given', () => {
    assert.equal(parseMetadata(good, { expectedGspVersion: '570.144' }).gspVersion, '570.144');
    const e = assertMetadataError(() => parseMetadata(good, { expectedGspVersion: '570.124.04' }), 160, 'gsp_build_version');
    assert.match(e.hint, /vgpu-570\.124\.04\.bin/);
  });
  it('refuses unsupported (major, minor, version) naming the field that differs', () => {
    const withVersion = (major: number, minor: number, v: string) => encodeMetadataUnchecked({ ...sampleSpec(), vgpuMajor: major, vgpuMinor: minor, gspVersion: v });
    assertMetadataError(() => parseMetadata(withVersion(17, 1, '570.144')), 16, 'vgpu_major');
    assertMetadataError(() => parseMetadata(withVersion(18, 2, '570.144')), 24, 'vgpu_minor');
    assertMetadataError(() => parseMetadata(withVersion(18, 1, '570.145')), 160, 'gsp_build_version');
  });
  it('checks the version before the blobs (kernel order)', () => {
    const bytes = patched(encodeMetadataUnchecked({ ...sampleSpec(), vgpuMajor: 17 }), (dv) => dv.setBigUint64(B0, 1n, true));
    assertMetadataError(() => parseMetadata(bytes), 16, 'vgpu_major');
  });
  it('refuses a GSP version string that is not NUL-terminated or has junk after the NUL', () => {
    assertMetadataError(() => parseMetadata(patched(good, (_, b) => b.fill(0x35, 160, 224))), 160, 'gsp_build_version');
    assertMetadataError(() => parseMetadata(patched(good, (_, b) => { b[200] = 0x41; })), 200, 'gsp_build_version');
  });
});

describe('metadata reader: blob header checks', () => {
  it('refuses an unknown blob type', () => {
    assertMetadataError(() => parseMetadata(patched(good, (dv) => dv.setBigUint64(B0, 1n, true))), B0, 'blob[0].type');
  });
  it('refuses a blob size of 16 or less, or past the end of the file', () => {
    assertMetadataError(() => parseMetadata(patched(good, (dv) => dv.setBigUint64(B0 + 8, 16n, true))), B0 + 8, 'blob[0].size');
    assertMetadataError(() => parseMetadata(patched(good, (dv) => dv.setBigUint64(B1 + 8, 174n, true))), B1 + 8, 'blob[1].size');
  });
  it('refuses a blob too small for the vGPU-type header', () => {
    const bytes = patched(good, (dv) => { dv.setBigUint64(B0 + 8, 40n, true); dv.setBigUint64(224, 1n, true); });
    // Walk: blob 0 now ends at 272 while the file goes on: trailing bytes are reported first.
    assertMetadataError(() => parseMetadata(bytes), B0 + 40, 'file_end');
    const small = patched(good.subarray(0, B0 + 40), (dv) => { dv.setBigUint64(B0 + 8, 40n, true); dv.setBigUint64(224, 1n, true); });
    assertMetadataError(() => parseMetadata(small), B0 + 8, 'blob[0].size');
  });
});

describe('metadata reader: blob content checks', () => {
  const zeroed = (off: number) => patched(good, (dv) => dv.setBigUint64(off, 0n, true));
  it('refuses zero device_id, num_kernel_structs, kernel_struct_size, gsp_rmctrl_cmd, gsp_rmctrl_size', () => {
    assertMetadataError(() => parseMetadata(zeroed(T0)), T0, 'blob[0].device_id');
    assertMetadataError(() => parseMetadata(zeroed(T0 + 32)), T0 + 32, 'blob[0].num_kernel_structs');
    assertMetadataError(() => parseMetadata(zeroed(T0 + 24)), T0 + 24, 'blob[0].kernel_struct_size');
    assertMetadataError(() => parseMetadata(zeroed(T0 + 40)), T0 + 40, 'blob[0].gsp_rmctrl_cmd');
    assertMetadataError(() => parseMetadata(zeroed(T0 + 48)), T0 + 48, 'blob[0].gsp_rmctrl_size');
  });
  it('refuses a blob whose parts do not add up to its size', () => {
    assertMetadataError(() => parseMetadata(patched(good, (dv) => dv.setBigUint64(B1 + 16 + 48, 4n, true))), B1 + 8, 'blob[1].size');
  });
  it('refuses a record stride other than 96 even when the parts add up', () => {
    const bytes = patched(good, (dv) => { dv.setBigUint64(T0 + 24, 194n, true); dv.setBigUint64(T0 + 48, 3n, true); });
    assertMetadataError(() => parseMetadata(bytes), T0 + 24, 'blob[0].kernel_struct_size');
  });
  it('refuses two blobs for the same device (the kernel would let the last win)', () => {
    const bytes = encodeMetadataUnchecked({ ...sampleSpec(), blobs: [sampleBlob(0x26b5, [1]), sampleBlob(0x26b5, [2])] });
    assertMetadataError(() => parseMetadata(bytes), 232 + 173 + 16, 'blob[1].device_id');
  });
  it('refuses a device id wider than 16 bits and an info range outside the payload', () => {
    assertMetadataError(() => parseMetadata(patched(good, (dv) => dv.setBigUint64(T0, 0x126b5n, true))), T0, 'blob[0].device_id');
    assertMetadataError(() => parseMetadata(patched(good, (dv) => dv.setBigUint64(T0 + 8, 6n, true))), T0 + 8, 'blob[0].gsp_rmctrl_vgpu_info_offset');
  });
});

describe('metadata reader: type record checks', () => {
  const rec = (field: number) => R0 + field;
  const cases: Array<[string, number, (dv: DataView, b: Uint8Array) => void]> = [
    ['vgpu_type', 0, (dv) => dv.setUint32(rec(0), 0, true)],
    ['vgpu_type_name', 4, (_, b) => b.fill(0x41, rec(4), rec(36))],
    ['vgpu_type_name', 4, (_, b) => b.fill(0, rec(4), rec(36))],
    ['padding', 37, (_, b) => { b[rec(37)] = 1; }],
    ['vdev_id', 40, (dv) => dv.setBigUint64(rec(40), 1n << 32n, true)],
    ['vdev_id', 40, (dv) => dv.setBigUint64(rec(40), 0x176dn, true)],
    ['pdev_id', 48, (dv) => dv.setBigUint64(rec(48), 0x26b9n, true)],
    ['fb_length', 56, (dv) => dv.setBigUint64(rec(56), (1n << 30n) + 4096n, true)],
    ['fb_length', 56, (dv) => dv.setBigUint64(rec(56), 0n, true)],
    ['gsp_heap_size', 64, (dv) => dv.setBigUint64(rec(64), 1n << 20n, true)],
    ['bar1_length', 72, (dv) => dv.setBigUint64(rec(72), 300n, true)],
    ['max_instance', 80, (dv) => dv.setUint32(rec(80), 33, true)],
    ['max_instance', 80, (dv) => dv.setUint32(rec(80), 0, true)],
    ['ecc_supported', 84, (dv) => dv.setUint32(rec(84), 2, true)],
    ['fb_reservation', 88, (dv) => dv.setBigUint64(rec(88), 100n, true)],
  ];
  for (const [field, off, edit] of cases) {
    it(`refuses a bad ${field} (record offset ${off})`, () => {
      assertMetadataError(() => parseMetadata(patched(good, edit)), R0 + off, `blob[0].type[0].${field}`);
    });
  }
  it('refuses a name with a non-printable byte, naming that byte', () => {
    assertMetadataError(() => parseMetadata(patched(good, (_, b) => { b[R0 + 6] = 0x07; })), R0 + 6, 'blob[0].type[0].vgpu_type_name');
  });
  it('refuses duplicate type ids and names within a blob', () => {
    const dupId = encodeMetadataUnchecked({ ...sampleSpec(), blobs: [{ ...sampleBlob(0x26b5, []), types: [sampleType(0x26b5, 5), sampleType(0x26b5, 5, { name: 'other' })] }] });
    assertMetadataError(() => parseMetadata(dupId), R0 + 96, 'blob[0].type[1].vgpu_type');
    const dupName = encodeMetadataUnchecked({ ...sampleSpec(), blobs: [{ ...sampleBlob(0x26b5, []), types: [sampleType(0x26b5, 5, { name: 'x' }), sampleType(0x26b5, 6, { name: 'x' })] }] });
    assertMetadataError(() => parseMetadata(dupName), R0 + 96 + 4, 'blob[0].type[1].vgpu_type_name');
  });
});

describe('metadata reader: device selection and result', () => {
  it('requires a blob for the PF device when one is given', () => {
    assert.equal(parseMetadata(good, { pfDeviceId: 0x27b8 }).blobs.length, 2);
    assertMetadataError(() => parseMetadata(good, { pfDeviceId: 0x26b1 }), 232, 'blob.device_id');
  });
  it('typesFor returns the matching blob\'s types and throws VgpuError(Metadata) otherwise', () => {
    const f = parseMetadata(good);
    assert.deepEqual(typesFor(f, 0x27b8).map((t) => t.id), [900]);
    assert.throws(() => typesFor(f, 0x26b1), (e) => isVgpuError(e, ErrorCode.Metadata) && /0x26b1/.test(e.message));
  });
  it('returns a deep-frozen object that does not alias the input', () => {
    const input = good.slice();
    const f = parseMetadata(input);
    assert.ok(Object.isFrozen(f) && Object.isFrozen(f.blobs) && Object.isFrozen(f.blobs[0]) && Object.isFrozen(f.blobs[0]!.types[0]));
    const payloadBefore = f.blobs[0]!.rmctrlPayload.slice();
    input.fill(0xee);
    assert.deepEqual(f.blobs[0]!.rmctrlPayload, payloadBefore);
    assert.equal(f.blobs[0]!.types[0]!.name, 'TEST 26b5-869Q');
  });
  it('does not alias a Node Buffer either (readFile\'s result, whose slice() is a view)', () => {
    const input = Buffer.from(good);
    const f = parseMetadata(input);
    const payloadBefore = Uint8Array.from(f.blobs[0]!.rmctrlPayload);
    const featuresBefore = Uint8Array.from(f.features);
    input.fill(0xee);
    assert.deepEqual(Uint8Array.from(f.blobs[0]!.rmctrlPayload), payloadBefore);
    assert.deepEqual(Uint8Array.from(f.features), featuresBefore);
    assert.notEqual(f.blobs[0]!.rmctrlPayload.buffer, input.buffer);
  });
  it('re-serialises an accepted file to the same bytes', () => {
    assert.deepEqual(buildMetadata(parseMetadata(good)), good);
  });
});
