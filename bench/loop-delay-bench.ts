// Event-loop delay during 4 GiB jobs: the "monitorEventLoopDelay max under 20 ms while a 4 GiB scrub runs",
// measured here rather than asserted in a test (the machines are shared: other sessions and the hypervisor stall
// every task now and then). Each job is run LOOP_REPS times; for each run the max delay (2 ms resolution) is taken
// with the job and over an idle window of the same length right after it, so a stall of the whole machine shows
// in the idle figure too. The tests assert the part that cannot be noise: the loop keeps turning while a job runs
// (test/native/arena-loop-delay.solo.test.ts).
// Env: LOOP_GIB (4), LOOP_REPS (3), VGPUD_NO_NATIVE=1 to measure the fallback alone.
// Last line: loop-delay: addon_max_ms=… fallback_max_ms=… idle_max_ms=… bound_ms=20 within_bound=yes|no
import { loadavg } from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { NativeOps, SharedArena } from '../native/native-ops.js';
import { loadAddon, loadNativeOps } from '../native/index.js';
import { fallbackOps } from '../native/fallback.js';

const GIB = BigInt(process.env.LOOP_GIB ?? 4);
const REPS = Number(process.env.LOOP_REPS ?? 3);
const BOUND_MS = 20;
const load = (): string => loadavg().map((x) => x.toFixed(2)).join(' ');

async function maxDelayDuring(work: () => Promise<unknown>): Promise<[number, number]> {
  const h = monitorEventLoopDelay({ resolution: 2 });
  const t0 = performance.now();
  h.enable();
  try {
    await work();
  } finally {
    h.disable();
  }
  return [h.max / 1e6, performance.now() - t0];
}

interface Leg { maxMs: number; idleMs: number }

/** Worst delay of each job over REPS runs, with the worst idle-window delay beside it. */
async function measure(name: string, ops: NativeOps, backing: 'memfd' | 'sab'): Promise<Leg> {
  const size = GIB << 30n;
  const a: SharedArena = ops.createArena({ size, backing });
  const jobs: Array<[string, () => Promise<unknown>]> = [
    ['fill (touched)', () => a.fill(0n, size, 0x5a5a5a5a, { release: false })],
    ['verify', () => a.verify(0n, size, 0x5a5a5a5a)],
    ...(ops.kind === 'native' ? [['hashPages', () => a.hashPages(0n, size)] as [string, () => Promise<unknown>]] : []),
    ['zero scrub', () => a.fill(0n, size, 0)],
  ];
  const leg: Leg = { maxMs: 0, idleMs: 0 };
  try {
    await a.fill(0n, size, 0x5a5a5a5a, { release: false }); // first touch, not measured (page faults; see docs)
    for (const [job, run] of jobs) {
      const runs: string[] = [];
      for (let i = 0; i < REPS; i++) {
        if (job === 'zero scrub' && i > 0) await a.fill(0n, size, 0x5a5a5a5a, { release: false }); // pages back
        const [ms, took] = await maxDelayDuring(run);
        const [idle] = await maxDelayDuring(() => new Promise((r) => setTimeout(r, Math.max(200, took))));
        leg.maxMs = Math.max(leg.maxMs, ms);
        leg.idleMs = Math.max(leg.idleMs, idle);
        runs.push(`${ms.toFixed(1)} (idle ${idle.toFixed(1)}, job ${took.toFixed(0)} ms)`);
      }
      console.log(`${name} ${GIB} GiB ${job}: max loop delay ms ${runs.join(', ')}`);
    }
  } finally {
    a.close();
  }
  return leg;
}

console.log(`load at start: ${load()}`);
const addonErr = loadAddon();
const addon = addonErr instanceof Error || process.env.VGPUD_NO_NATIVE === '1' ? undefined : loadNativeOps();
if (addon === undefined) console.log(`addon not measured: ${addonErr instanceof Error ? addonErr.message.split('\n')[0] : 'VGPUD_NO_NATIVE=1'}`);
const a = addon ? await measure('addon', addon, 'memfd') : undefined;
const f = await measure('fallback', fallbackOps, 'sab');
console.log(`load at end: ${load()}`);
const worst = Math.max(a?.maxMs ?? 0, f.maxMs);
const idle = Math.max(a?.idleMs ?? 0, f.idleMs);
console.log(`loop-delay: addon_max_ms=${a ? a.maxMs.toFixed(1) : 'n/a'} fallback_max_ms=${f.maxMs.toFixed(1)} ` +
  `idle_max_ms=${idle.toFixed(1)} bound_ms=${BOUND_MS} within_bound=${worst < BOUND_MS ? 'yes' : 'no'}`);
