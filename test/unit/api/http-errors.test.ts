import { test } from 'node:test';
import assert from 'node:assert/strict';
import { httpStatusFor } from '../../../plugins/api/http-errors.js';

test('a create step error takes its cause family: out of FB is a refusal (409), a firmware failure the daemon\'s (500)', () => {
  assert.equal(httpStatusFor('VGPU_ECREATE', { step: 'mgmt-heap', cause: 'VGPU_ENOSPC' }), 409);
  assert.equal(httpStatusFor('VGPU_ECREATE', { step: 'bootload', cause: 'VGPU_ERPC' }), 500);
  assert.equal(httpStatusFor('VGPU_ECREATE', { step: 'bootload', cause: 'VGPU_ETIMEDOUT' }), 500);
  assert.equal(httpStatusFor('VGPU_ECREATE'), 500);
  assert.equal(httpStatusFor('VGPU_ENOSPC'), 409);
});
