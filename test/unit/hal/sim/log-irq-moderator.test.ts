/**
 * The simulated GSP's log interrupt is moderated: lines written by any gfids while one interrupt is held off go out
 * as that one interrupt, naming each gfid once; nothing is armed while nothing is written. Mocked timers: the
 * hold-off passes when the test says, so nothing here depends on how fast the host is.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { LOG_IRQ_HOLDOFF_MS, LogIrqModerator } from '../../../../hal/sim/device/log-irq-moderator.js';

it('batches the lines of a hold-off into one interrupt naming each gfid once, and arms nothing while idle', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const raised: number[][] = [];
  const m = new LogIrqModerator((g) => raised.push(g));
  assert.equal(m.pending, false, 'idle: no timer');
  m.written(3);
  m.written(1);
  m.written(3);
  t.mock.timers.tick(LOG_IRQ_HOLDOFF_MS - 1);
  assert.deepEqual(raised, [], 'held off');
  m.written(2);
  t.mock.timers.tick(1);
  assert.deepEqual(raised, [[1, 2, 3]]);
  assert.equal(m.pending, false, 'nothing written since: nothing armed');
  t.mock.timers.tick(10 * LOG_IRQ_HOLDOFF_MS);
  assert.equal(raised.length, 1, 'no interrupt without new text');
  m.written(5);
  assert.equal(m.pending, true);
  t.mock.timers.tick(LOG_IRQ_HOLDOFF_MS);
  assert.deepEqual(raised, [[1, 2, 3], [5]]);
});
