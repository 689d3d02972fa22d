/** The writer: fixed layout, deterministic, and it never emits a file the reader refuses. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode, isVgpuError } from '../../../core/contracts/exceptions.js';
import { buildMetadata, encodeMetadataUnchecked } from '../../../core/metadata/metadata-writer.js';
import { metadataCrc32 } from '../../../core/metadata/metadata-format.js';
import { sampleBlob, sampleSpec, sampleType } from './metadata-test-helpers.js';

describe('metadata writer', () => {
  it('lays out the header, blob headers and records at the upstream offsets', () => {
    const b = buildMetadata(sampleSpec());
    const dv = new DataView(b.buffer);
    assert.equal(new TextDecoder().decode(b.subarray(0, 8)), 'NVVGPUMT');
    assert.equal(dv.getUint32(8, true), metadataCrc32(b.subarray(16)));
    assert.equal(dv.getBigUint64(16, true), 18n);
    assert.equal(dv.getBigUint64(24, true), 1n);
    assert.equal(new TextDecoder().decode(b.subarray(160, 167)), '570.144');
    assert.equal(b[167], 0);
    assert.equal(dv.getBigUint64(224, true), 2n);
    // blob 0: type 0, size 16 + 56 + 2*96 + 5
    assert.equal(dv.getBigUint64(232, true), 0n);
    assert.equal(dv.getBigUint64(240, true), 269n);
    assert.equal(dv.getBigUint64(248, true), 0x26b5n); // device_id
    assert.equal(dv.getBigUint64(272, true), 192n); // kernel_struct_size
    assert.equal(dv.getBigUint64(280, true), 2n); // num_kernel_structs
    assert.equal(dv.getBigUint64(288, true), 0x20804003n); // gsp_rmctrl_cmd
    assert.equal(dv.getBigUint64(296, true), 5n); // gsp_rmctrl_size
    // record 0 at 304: id, name at +4, vdev at +40, fb at +56, bar1 at +72, max_instance at +80
    assert.equal(dv.getUint32(304, true), 869);
    assert.equal(new TextDecoder().decode(b.subarray(308, 322)), 'TEST 26b5-869Q');
    assert.equal(dv.getBigUint64(344, true), 0x26b50365n);
    assert.equal(dv.getBigUint64(360, true), 1n << 30n);
    assert.equal(dv.getBigUint64(376, true), 256n);
    assert.equal(dv.getUint32(384, true), 32);
    assert.deepEqual([...b.subarray(496, 501)], [1, 2, 3, 4, 5]);
  });
  it('is deterministic', () => {
    assert.deepEqual(buildMetadata(sampleSpec()), buildMetadata(sampleSpec()));
  });
  it('refuses values that do not fit their field with InvalidArgument naming it', () => {
    const long = { ...sampleSpec(), blobs: [{ ...sampleBlob(0x26b5, []), types: [sampleType(0x26b5, 1, { name: 'N'.repeat(32) })] }] };
    assert.throws(() => encodeMetadataUnchecked(long), (e) => isVgpuError(e, ErrorCode.InvalidArgument) && e.details.field === 'blobs[0].types[0].name');
    assert.throws(() => encodeMetadataUnchecked({ ...sampleSpec(), features: new Uint8Array(3) }), (e) => isVgpuError(e, ErrorCode.InvalidArgument) && e.details.field === 'features');
  });
  it('buildMetadata refuses a spec the reader would refuse, with the reader\'s offset and field', () => {
    const spec = { ...sampleSpec(), blobs: [sampleBlob(0x26b5, [1]), sampleBlob(0x26b5, [2])] };
    assert.throws(() => buildMetadata(spec), (e) => isVgpuError(e, ErrorCode.Metadata) && e.details.field === 'blob[1].device_id');
    const noTypes = { ...sampleSpec(), blobs: [sampleBlob(0x26b5, [])] };
    assert.throws(() => buildMetadata(noTypes), (e) => isVgpuError(e, ErrorCode.Metadata) && e.details.field === 'blob[0].num_kernel_structs');
  });
});
