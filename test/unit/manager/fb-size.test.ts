import { test } from 'node:test';
import assert from 'node:assert/strict';
import { guestFbBytes, segmentsFor } from '../../../core/manager/fb-size.js';
import { VfAbiError } from '../../../core/manager/vf-abi-error.js';
import { GiB, MiB, type } from './fixture.js';

test('ECC off: fb_length; ECC on: the create-order.md C3 formula, aligned down to the segment', () => {
  const t = type(1, 'T-16Q', 16, 3, { gspHeapSize: 64n * MiB });
  const ctx = { totalFb: 48n * GiB, segmentSize: 512n * MiB };
  assert.equal(guestFbBytes(t, { ...ctx, eccEnabled: false }), 16n * GiB);
  // 48 GiB / 3 − 64 MiB = 16320 MiB → aligned down to 512 MiB = 15872 MiB
  assert.equal(guestFbBytes(t, { ...ctx, eccEnabled: true }), 15872n * MiB);
  // with a small type the nominal size is the smaller one
  assert.equal(guestFbBytes(type(2, 'T-1Q', 1, 32), { ...ctx, eccEnabled: true }), 1n * GiB);
  assert.throws(() => guestFbBytes(type(3, 'T-1B', 1, 32, { eccSupported: false }), { ...ctx, eccEnabled: true }),
    (e) => e instanceof VfAbiError && e.errno === 'ENODEV');
  assert.equal(segmentsFor(1952n * MiB, 512n * MiB), 4);
  assert.equal(segmentsFor(2048n * MiB, 512n * MiB), 4);
});
