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

test('a full state dir is 507 Insufficient Storage, also when it stopped a create half-way', () => {
  assert.equal(httpStatusFor('VGPU_ESTATEFULL'), 507);
  assert.equal(httpStatusFor('VGPU_ECREATE', { step: 'rm-client', cause: 'VGPU_ESTATEFULL' }), 507);
  assert.equal(httpStatusFor('VGPU_EJOURNAL'), 500);
});
