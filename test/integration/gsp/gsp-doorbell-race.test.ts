/**
 * The lost wake-up behind a GSP boot that hung under load (GSP_INIT_DONE unseen for 60 s): a producer preempted
 * between reading the sleeper's flag and clearing it. Meanwhile the sleeper woke for another reason and went to
 * sleep again; the stale clear took down the NEW sleep's flag just before that sleep was armed, its wake hit
 * nobody, and every later ring saw the flag down and sent no wake. Played here as a deterministic interleaving on
 * the real doorbells of a GSP region: the producer's two halves (announce, wakeIfSleeping) with the sleeper's
 * steps in between, the stale half run inside the sleeper's last re-check before it arms its wait. No sleeps, no
 * timing: each step waits for the previous one to have happened.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fallbackOps } from '../../../native/fallback.js';
import { GspControl, GspRegion } from '../../../hal/gsp/gsp-layout.js';
import { GspRegionView, initGspRegion, openEndpoint } from '../../../hal/gsp/gsp-queue.js';

/** A fresh GSP region with both ends' endpoints (only their doorbells are used). */
function region() {
  const arena = fallbackOps.createArena({ size: BigInt(GspRegion.SIZE), backing: 'sab' });
  const view = new GspRegionView(arena, 0n);
  initGspRegion(view);
  return { arena, view, host: openEndpoint(view, 'host'), gsp: openEndpoint(view, 'gsp') };
}

test('a producer preempted between reading the flag and clearing it cannot take down the next sleep\'s flag (no lost wake-up)', async () => {
  const { arena, view, host, gsp } = region();
  const flag = (): number => view.control(GspControl.HOST_SLEEPING);

  // Sleep 1: the host waits for the message queue.
  const sleep1 = host.inbound.sleep(() => false, Infinity);
  assert.notEqual(flag(), 0, 'sleep 1 raised its flag');
  // The GSP publishes event A and reads the flag (sleep 1's) … and is preempted before it clears it.
  const staleFlag = gsp.outbound.announce();
  assert.equal(staleFlag, flag());
  // The host wakes for another reason (the GSP's forced state-change interrupt), and drains.
  gsp.outbound.ring(true);
  assert.equal(await sleep1, 'ok');
  assert.equal(flag(), 0, 'awake: flag down');

  // Sleep 2. Its last re-check of the ring (flag raised, wait not armed yet) is where the preempted GSP thread
  // runs its second half — the worst moment: a wake now reaches nobody.
  let sleep2Flag = -1;
  const sleep2 = host.inbound.sleep(() => {
    sleep2Flag = flag();
    gsp.outbound.wakeIfSleeping(staleFlag);
    return false;
  }, Infinity);
  assert.notEqual(sleep2Flag, 0, 'sleep 2 raised its flag before re-checking');
  assert.notEqual(sleep2Flag, staleFlag, 'each sleep raises the flag to a number of its own');
  assert.equal(flag(), sleep2Flag, 'the stale clear left sleep 2\'s flag raised');

  // Event B: an ordinary ring must see the flag and wake sleep 2 (before the fix it saw it down and did not).
  const wakesBefore = gsp.outbound.wakes;
  gsp.outbound.ring();
  assert.equal(gsp.outbound.wakes, wakesBefore + 1, 'event B\'s ring sent a wake');
  assert.equal(await sleep2, 'ok', 'sleep 2 woke for event B');
  assert.equal(flag(), 0);
  arena.close();
});

test('a ring that finds the sleeper awake sends no wake, and one that finds it asleep sends exactly one', async () => {
  const { arena, host, gsp } = region();
  gsp.outbound.ring();
  assert.equal(gsp.outbound.wakes, 0, 'nobody sleeps: no wake (no syscall on the addon)');
  const s = host.inbound.sleep(() => false, Infinity);
  gsp.outbound.ring();
  gsp.outbound.ring(); // within the sleeper's wake-up window: the flag is already down, no second wake
  assert.equal(gsp.outbound.wakes, 1);
  assert.equal(await s, 'ok');
  arena.close();
});
