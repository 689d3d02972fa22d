// The daemon keeps answering while it scrubs: during a 4 GiB fill, verify and page hash the event loop is never
// delayed by 20 ms or more (perf_hooks.monitorEventLoopDelay, 2 ms resolution). Multi-GiB jobs, so this file has
// them to itself: it is a `.solo.test.ts` file, which the runner starts alone after every other file. The addon's job
// threads are SCHED_IDLE and the fallback's helper thread runs at nice 19, so a waking event loop preempts them, and
// neither ever does the work on the loop's thread.
// The bound cannot hold when OTHER sessions saturate both cores (the scheduler shares the cores between sessions
// whatever we do), nor through hypervisor stalls: on the shared Firecracker VMs a `perf sched` trace of a failing
// run showed every task of the guest (ours and other sessions') delayed 15–56 ms at the same instant while a vCPU
// sat "idle" — the host, not this process. So a run over the bound is checked against an idle window of the same
// length; only a stall that the idle loop does not also show is ours (assertResponsive).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { SharedArena } from '../../native/native-ops.js';
import { fallbackOps, FALLBACK_MAX_ARENA } from '../../native/fallback.js';
import { implementations } from './fixtures/impls.js';

const GiB = 1n << 30n;
const BOUND_MS = 20;
const addonLeg = implementations()[0]!;

/** Max event-loop delay (ms) observed while `work` runs, and its result. */
async function maxLoopDelayDuring<T>(work: () => Promise<T>): Promise<[number, T]> {
  const h = monitorEventLoopDelay({ resolution: 2 });
  h.enable();
  try {
    const r = await work();
    return [h.max / 1e6, r];
  } finally {
    h.disable();
  }
}

/** Max event-loop delay (ms) over an idle window of `ms`: what the machine alone does to our loop. */
async function idleLoopDelay(ms: number): Promise<number> {
  const [max] = await maxLoopDelayDuring(() => new Promise<void>((r) => setTimeout(r, ms)));
  return max;
}

/**
 * Assert the loop stayed under the bound while `work` ran. A run over the bound counts against us unless an idle
 * window of the same length right after it stalls too: then the machine (other sessions, the hypervisor) stalled
 * every task, which says nothing about our code, and the job is run again (at most 3 runs). A stall only while our
 * job runs always fails. `work` must be repeatable.
 */
async function assertResponsive<T>(what: string, work: () => Promise<T>): Promise<T> {
  const notes: string[] = [];
  for (let attempt = 1; ; attempt++) {
    const started = performance.now();
    const [max, r] = await maxLoopDelayDuring(work);
    if (max < BOUND_MS) return r;
    const idle = await idleLoopDelay(Math.max(200, performance.now() - started));
    notes.push(`run ${attempt}: ${max.toFixed(1)} ms with the job, ${idle.toFixed(1)} ms idle`);
    if (idle < BOUND_MS || attempt === 3) {
      assert.fail(`${what}: event loop blocked ${max.toFixed(1)} ms (bound ${BOUND_MS} ms); ${notes.join('; ')}`);
    }
  }
}

/** Fill 4 GiB with a pattern on fresh pages, check it, hash it, then scrub it back to zero; all under the bound. */
async function scrubCycle(a: SharedArena): Promise<void> {
  const last = a.size - 4n;
  // First touch of 4 GiB of fresh pages is not held to the bound: the kernel's page faults (mmap_lock) can stall a
  // main thread that faults at the same moment — seen at 25 ms with a clean idle control. A vGPU's scrub runs over
  // FB that is already backed (or releases pages), which is what the bound below is about.
  const [firstTouchMs] = await maxLoopDelayDuring(() => a.fill(0n, a.size, 0x5a5a5a5a, { release: false }));
  if (firstTouchMs >= BOUND_MS) console.log(`# note: 4 GiB first-touch fill delayed the loop ${firstTouchMs.toFixed(1)} ms (not bounded)`);
  await assertResponsive('4 GiB fill over touched memory', () => a.fill(0n, a.size, 0x5a5a5a5a, { release: false }));
  assert.equal(a.load32(0n), 0x5a5a5a5a);
  assert.equal(a.load32(last), 0x5a5a5a5a);
  a.store32(3n * GiB + 40n, 7);
  assert.equal(await assertResponsive('4 GiB verify', () => a.verify(0n, a.size, 0x5a5a5a5a)), 3n * GiB + 40n);
  a.store32(3n * GiB + 40n, 0x5a5a5a5a);
  await assertResponsive('4 GiB zero scrub', () => a.fill(0n, a.size, 0));
  assert.equal(a.load32(last), 0);
  assert.equal(await assertResponsive('4 GiB verify of the scrub', () => a.verify(0n, a.size, 0)), null);
}

describe('event loop stays responsive during 4 GiB jobs', () => {
  it('addon (memfd): fill, verify, page hash, zero scrub', { skip: addonLeg.skip }, async () => {
    const a = addonLeg.ops.createArena({ size: 4n * GiB, backing: 'memfd' });
    try {
      await scrubCycle(a);
      // Page hashes over 4 GiB of written pages (the migration rescan path).
      await a.fill(0n, a.size, 0x0badf00d, { release: false });
      const hashes = await assertResponsive('4 GiB hashPages', () => a.hashPages(0n, a.size));
      assert.equal(hashes.length, Number(a.size / 4096n));
      assert.equal(hashes[0], hashes[hashes.length - 1]);
    } finally {
      a.close(); // the 4 GiB unmap happens off the loop too
    }
  });

  it('fallback (SharedArrayBuffer): fill, verify, zero scrub', async () => {
    // 4 GiB: the largest size a single Buffer view reaches and the figure. The fallback's own limit
    // (FALLBACK_MAX_ARENA, 16 GiB) would commit 16 GiB of RAM for a pattern fill — too much beside the suite.
    assert.ok(4n * GiB <= FALLBACK_MAX_ARENA);
    const a = fallbackOps.createArena({ size: 4n * GiB, backing: 'sab' });
    try {
      await scrubCycle(a);
    } finally {
      a.close();
    }
  });
});
