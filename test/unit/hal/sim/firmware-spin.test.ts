/**
 * The simulated firmware thread's look-before-sleep (hal/sim/gsp/firmware-spin.ts): it looks only after having
 * served something, returns to its own loop when its own work comes, serves another loop's work in place, and backs
 * off after a look that found nothing. No clock in the assertions: what is checked is whether it looks at all and
 * what it does with what it finds.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_FW_SPIN_US, FirmwareSpin, firmwareSpinBudgetFromEnv, type FirmwareWorkSource } from '../../../../hal/sim/gsp/firmware-spin.js';

/** A source whose work is a counter of commands waiting; serveNow takes them all. */
function source(onServe: () => void = () => {}): FirmwareWorkSource & { waiting: number; looks: number; served: number } {
  const s = {
    waiting: 0,
    looks: 0,
    served: 0,
    hasWork: () => {
      s.looks++;
      return s.waiting > 0;
    },
    serveNow: () => {
      s.served += s.waiting;
      s.waiting = 0;
      onServe();
    },
  };
  return s;
}

it('the budget comes from VGPUD_SIM_FW_SPIN_US (0 = never); unset or bad, the default', () => {
  assert.ok(DEFAULT_FW_SPIN_US > 0, 'on by default: the firmware of a real GPU is always running');
  assert.equal(firmwareSpinBudgetFromEnv({}), DEFAULT_FW_SPIN_US);
  assert.equal(firmwareSpinBudgetFromEnv({ VGPUD_SIM_FW_SPIN_US: '0' }), 0);
  assert.equal(firmwareSpinBudgetFromEnv({ VGPUD_SIM_FW_SPIN_US: '75' }), 75);
  assert.equal(firmwareSpinBudgetFromEnv({ VGPUD_SIM_FW_SPIN_US: 'lots' }), DEFAULT_FW_SPIN_US);
  assert.equal(firmwareSpinBudgetFromEnv({ VGPUD_SIM_FW_SPIN_US: '-5' }), DEFAULT_FW_SPIN_US);
  const off = new FirmwareSpin(0);
  const own = source();
  off.add(own);
  own.waiting = 1;
  assert.equal(off.beforeSleep(own, true), 'sleep', 'a zero budget never looks');
  assert.equal(own.looks, 0);
});

it('an idle firmware (nothing served since it woke) sleeps at once without looking', () => {
  const fw = new FirmwareSpin(50);
  const own = source();
  const other = source();
  fw.add(own);
  fw.add(other);
  own.waiting = 1;
  other.waiting = 1;
  assert.equal(fw.beforeSleep(own, false), 'sleep');
  assert.equal(own.looks + other.looks, 0);
  assert.deepEqual([fw.spin.hits, fw.spin.misses], [0, 0], 'a look not taken is neither a hit nor a miss');
});

it('after serving, a command of its own that is there goes back to its own loop', () => {
  const fw = new FirmwareSpin(50);
  const own = source();
  fw.add(own);
  own.waiting = 1;
  assert.equal(fw.beforeSleep(own, true), 'own');
  assert.equal(own.served, 0, 'its own loop serves it, not the spin');
  assert.deepEqual([fw.spin.hits, fw.spin.misses], [1, 0]);
});

it("another loop's work is served in place, and the look goes on for what follows it", () => {
  const fw = new FirmwareSpin(50);
  const own = source();
  // The mailbox call answered, the host sends its next GSP command: our own work appears as the other is served.
  const other = source(() => { own.waiting = 1; });
  fw.add(own);
  fw.add(other);
  other.waiting = 2;
  assert.equal(fw.beforeSleep(own, true), 'own');
  assert.equal(other.served, 2);
  assert.equal(fw.servedForOthers, 1);
  assert.deepEqual([fw.spin.hits, fw.spin.misses], [2, 0]);
});

it("after the other loop's work, nothing more: a miss, then sleep; a removed source is not looked at", () => {
  const fw = new FirmwareSpin(1);
  const own = source();
  const other = source();
  fw.add(own);
  const remove = fw.add(other);
  other.waiting = 1;
  assert.equal(fw.beforeSleep(own, true), 'sleep');
  assert.equal(other.served, 1);
  assert.deepEqual([fw.spin.hits, fw.spin.misses], [1, 1]);
  remove();
  const looked = other.looks;
  other.waiting = 1;
  while (fw.spin.next() === 0) { /* wait out the back-off of that miss */ }
  fw.spin.record(true);
  assert.equal(fw.beforeSleep(own, true), 'sleep');
  assert.equal(other.looks, looked);
  assert.equal(other.served, 1);
});

it('backs off after a look that found nothing: the next chance sleeps without looking', () => {
  const fw = new FirmwareSpin(1);
  const own = source();
  fw.add(own);
  assert.equal(fw.beforeSleep(own, true), 'sleep');
  assert.equal(fw.spin.misses, 1);
  const looks = own.looks;
  own.waiting = 1;
  assert.equal(fw.beforeSleep(own, true), 'sleep', 'skipped: the previous look missed');
  assert.equal(own.looks, looks);
  assert.equal(fw.beforeSleep(own, true), 'own', 'the back-off over, it looks again');
});
