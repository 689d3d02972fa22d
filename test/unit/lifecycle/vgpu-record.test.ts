/**
 * A vGPU's own log (`vgpuctl logs`): each line carries the time it was WRITTEN (the record keeps the time and
 * formats on read, off the create path), in order, and only the last 1000 lines are kept; and its UUID.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { VirtualFunction } from '../../../core/contracts/hal.js';
import type { TypeSelection } from '../../../core/manager/type-policy.js';
import { VgpuRecord, dashedUuid } from '../../../plugins/lifecycle/vgpu-record.js';
import { TYPES } from './lifecycle-rig.js';

function record(): VgpuRecord {
  const vf = { index: 0, gfid: 1, bdf: '0000:41:00.4' } as unknown as VirtualFunction;
  const type = TYPES[0]!;
  const sel = { vf: 0, type, fbBytes: type.fbLength, placement: { id: 0, slots: 1, owner: 'vf0' } } as TypeSelection;
  return new VgpuRecord('vgpu-1', '0000:41:00.0', vf, type, sel);
}

test('log lines are stamped with the time they were written, not read, and keep their order', (t) => {
  t.mock.timers.enable({ apis: ['Date'], now: Date.parse('2026-03-01T10:00:00.000Z') });
  const rec = record();
  rec.log('state (new) → creating');
  t.mock.timers.tick(1234);
  rec.log('ready');
  t.mock.timers.tick(60_000); // reading later changes nothing
  assert.deepEqual(rec.logLines(), ['2026-03-01T10:00:00.000Z state (new) → creating', '2026-03-01T10:00:01.234Z ready']);
});

test('only the last 1000 lines are kept', () => {
  const rec = record();
  for (let i = 0; i < 1005; i++) rec.log(`line ${i}`);
  const lines = rec.logLines();
  assert.equal(lines.length, 1000);
  assert.match(lines[0]!, / line 5$/);
  assert.match(lines.at(-1)!, / line 1004$/);
});

test('each vGPU gets its own random version-4 UUID (as crypto.randomUUID makes them)', () => {
  const seen = new Set<string>();
  for (let i = 0; i < 2000; i++) {
    const text = dashedUuid(record().uuid);
    assert.match(text, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    seen.add(text);
  }
  assert.equal(seen.size, 2000);
});
