/**
 * The daemon gives freed memory back once, when it has been quiet for a while after a burst: never on every event,
 * never while idle (no timer when nothing happened).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { idleRelease, type IdleRelease } from '../../../bin/daemon/idle-memory.js';

/** An idle release whose release only counts. */
function counted(quietMs: number, busy?: () => boolean): { idle: IdleRelease; released: () => number } {
  let n = 0;
  return { idle: idleRelease(() => { n++; }, quietMs, busy), released: () => n };
}

describe('idle memory release', () => {
  it('releases once, quietMs after the LAST of a burst of touches', (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const { idle, released } = counted(5000);
    idle.touch();
    t.mock.timers.tick(3000);
    idle.touch(); // a create 3 s into the burst restarts the quiet period
    t.mock.timers.tick(3000);
    assert.equal(released(), 0, 'not 5 s after the last event yet');
    idle.touch();
    t.mock.timers.tick(4999);
    assert.equal(released(), 0);
    t.mock.timers.tick(1);
    assert.equal(released(), 1);
    t.mock.timers.tick(60_000);
    assert.equal(released(), 1, 'nothing more while nothing happens');
  });

  it('arms again for the next burst, and close() cancels a pending release', (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const { idle, released } = counted(1000);
    idle.touch();
    t.mock.timers.tick(1000);
    idle.touch();
    t.mock.timers.tick(1000);
    assert.equal(released(), 2);
    idle.touch();
    idle.close();
    t.mock.timers.tick(10_000);
    assert.equal(released(), 2);
  });

  it('waits while the process is busy without a bus event (a migration\'s pre-copy), then releases', (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const busyPeriods = [true, true, false];
    const { idle, released } = counted(1000, () => busyPeriods.shift() ?? false);
    idle.touch();
    t.mock.timers.tick(1000);
    t.mock.timers.tick(1000);
    assert.equal(released(), 0, 'two busy quiet periods: no pause of the event loop yet');
    t.mock.timers.tick(1000);
    assert.equal(released(), 1);
    t.mock.timers.tick(10_000);
    assert.equal(released(), 1);
  });
});
