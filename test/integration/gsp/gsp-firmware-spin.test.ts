/**
 * The simulated GSP-RM looks for the host's next command right after replying, before it sleeps
 * (hal/sim/gsp/firmware-spin.ts), as an always-running GSP would see it — and an idle one sleeps at once.
 * What is observed is the firmware thread's own count of sleeps and of looks that found work, never a duration: the
 * budget here is far longer than any gap between two calls of one caller, so every next command is seen by a look.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { GspFunction } from '../../../hal/gsp/gsp-layout.js';
import { GspRegionView, openEndpoint } from '../../../hal/gsp/gsp-queue.js';
import { AUTO_CAP_US, AUTO_SPIN, spinBudgetFromEnv } from '../../../core/runtime/adaptive-spin.js';
import { makeRig, pattern, until, type Rig } from './gsp-harness.js';

const HANG = GspFunction.LOG;
/** 60 s: no gap between one caller's calls comes near it (the spin ends the moment a command is there). */
const LONG_LOOK_US = 60_000_000;

describe('simulated GSP-RM: look before sleeping', () => {
  let rig: Rig;
  before(async () => {
    rig = await makeRig({ handler: { hangFn: HANG }, firmwareSpinUs: LONG_LOOK_US, client: { spinUs: 0 } });
  });
  after(async () => rig.close());

  it('idle, it sleeps at once: a wake-up with nothing to serve sends it back to sleep without a look', async () => {
    const gsp = rig.gsp!;
    await until(async () => (await gsp.stats()).sleeps >= 1);
    const s0 = await gsp.stats();
    assert.equal(s0.spinHits + s0.spinMisses, 0, 'booted and idle: no look taken');
    // Ring its doorbell with no command behind it (a stray wake-up).
    openEndpoint(new GspRegionView(rig.arena, 0x1000n), 'host').outbound.ring(true);
    await until(async () => (await gsp.stats()).sleeps > s0.sleeps);
    const s1 = await gsp.stats();
    assert.equal(s1.spinHits + s1.spinMisses, 0, 'woken for nothing, it served nothing and did not look');
    assert.equal(s1.requests, s0.requests);
  });

  it('after a reply it sees the next command itself: a run of calls costs it no sleep in between', async () => {
    const gsp = rig.gsp!;
    const s0 = await gsp.stats();
    const calls = 20;
    for (let i = 0; i < calls; i++) {
      const p = pattern(64 + i, i);
      assert.deepEqual(await rig.client.call(GspFunction.NOP, p), p);
    }
    // A last call that never gets its answer: the look finds it, GSP-RM starts it and, with a command still being
    // served, sleeps without looking further (a spin would hold the thread that call needs).
    const hung = rig.client.call(HANG, new Uint8Array(8), { timeoutMs: 60_000 }).catch((e: unknown) => e);
    await until(async () => {
      const s = await gsp.stats();
      return s.requests === s0.requests + calls + 1 && s.sleeps > s0.sleeps;
    });
    const s1 = await gsp.stats();
    // Each next command was found either by the look or, when the host was quicker still, by the loop's own drain
    // right after the reply went out; never after a sleep.
    assert.equal(s1.sleeps - s0.sleeps, 1, 'asleep before the first call and after the last, never in between');
    assert.equal(s1.spinMisses - s0.spinMisses, 0);
    assert.ok(s1.spinHits - s0.spinHits >= 1, 'the look found commands');
    assert.ok(s1.spinHits - s0.spinHits <= calls);
    assert.equal(s1.maxOutstanding, 1, 'still one command at a time');
    await rig.client.close();
    assert.ok(await hung instanceof Error);
  });
});

describe('host: the reply wait spins by default, with a budget learned per GSP function', () => {
  let rig: Rig;
  before(async () => {
    rig = await makeRig({ client: { spinUs: spinBudgetFromEnv({}) } });
  });
  after(async () => rig.close());

  it('a first call of a function may spin up to the cap; its answer time is learned under that function', async () => {
    const s = rig.client.spin;
    assert.equal(s.budgetUs, AUTO_SPIN, 'learned unless VGPUD_GSP_SPIN_US says otherwise');
    assert.equal(s.budgetFor(GspFunction.NOP), AUTO_CAP_US, 'nothing learned yet');
    assert.equal(s.answerTime(GspFunction.NOP), undefined);
    const p = pattern(32, 1);
    assert.deepEqual(await rig.client.call(GspFunction.NOP, p), p);
    // (Whether it spun depends on whether the reply was already there when the receive loop came to look.)
    assert.ok(s.hits + s.misses <= 1);
    assert.ok((s.answerTime(GspFunction.NOP) ?? -1) > 0, 'the answer time was learned');
    assert.equal(s.answerTime(GspFunction.GSP_RM_CONTROL), undefined, 'and only for that function');
  });
});
