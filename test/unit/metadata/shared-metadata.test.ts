/**
 * GPUs that load the same metadata bytes share one parsed file (the default file is ~4 MiB; eight private copies
 * were most of what the daemon's memory grew by per GPU), and each still gets the errors its own parse would give.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseMetadata } from '../../../core/metadata/metadata-reader.js';
import { buildMetadata } from '../../../core/metadata/metadata-writer.js';
import { parseMetadataShared } from '../../../core/metadata/shared-metadata.js';
import { assertMetadataError, patched, sampleSpec } from './metadata-test-helpers.js';

const good = buildMetadata(sampleSpec());

describe('shared metadata parse', () => {
  it('gives every GPU reading equal bytes the same parsed file, equal to a fresh parse', () => {
    const a = parseMetadataShared(Buffer.from(good), { expectedGspVersion: '570.144', pfDeviceId: 0x26b5 });
    const b = parseMetadataShared(Buffer.from(good), { expectedGspVersion: '570.144', pfDeviceId: 0x27b8 });
    assert.equal(a, b);
    assert.deepEqual(a, parseMetadata(good));
  });

  it('parses different bytes (a rebuilt file) anew', () => {
    const spec = sampleSpec();
    const other = buildMetadata({ ...spec, blobs: spec.blobs.slice(0, 1) });
    const a = parseMetadataShared(good);
    const b = parseMetadataShared(other);
    assert.notEqual(a, b);
    assert.deepEqual(b.blobs.map((x) => x.deviceId), [0x26b5]);
  });

  it('checks the GPU\'s firmware version and device on a reused parse, with the errors a fresh parse gives', () => {
    parseMetadataShared(good);
    assertMetadataError(() => parseMetadataShared(good, { expectedGspVersion: '570.124.04' }), 160, 'gsp_build_version');
    assertMetadataError(() => parseMetadataShared(good, { pfDeviceId: 0x26b1 }), 232, 'blob.device_id');
  });

  it('still refuses a damaged file, and the failure leaves nothing cached', () => {
    const bad = patched(good, (_, b) => { b[600] = b[600]! ^ 1; }, false);
    assertMetadataError(() => parseMetadataShared(bad), 8, 'crc32');
    assertMetadataError(() => parseMetadataShared(bad), 8, 'crc32');
  });
});
