// Scrub benchmark: fill throughput of the addon (and of the fallback) against the C library's own fill of the same
// value over the same memory, measured in the same run (the floor):
//  * warm memory (every page already written once): pattern 0xa5a5a5a5 against memset, 0x0badf00d against wmemset
//    (memset cannot express it), and zero (no page release) against memset(0) — zero stores run much faster than any
//    other pattern on some CPUs, so zero is only ever compared with zero;
//  * first touch (fresh pages of a new sparse arena): the addon's fill against a memset over a fresh arena too.
// The floor is one libc call per 1 GiB window, run on one helper thread with the priority the addon's job threads
// take (SCHED_IDLE), so on a busy host both are scheduled alike. Floor and addon alternate round by round; the best
// of each counts, and the per-round ratios' median is printed beside it.
// Printed with the figures: the CPU (cpuid), the kernels the addon chose for it, the host's load average, and the
// worst event-loop delay seen during the addon's first-touch fill (the daemon must keep answering).
// Env: SCRUB_BENCH_GIB (default 2), SCRUB_BENCH_ROUNDS (default 5), SCRUB_BENCH_TOUCH_MIB (default 512).
// Last line (parsed by tooling): scrub: addon_gbps=X.XX fallback_gbps=X.XX memset_gbps=X.XX ratio=X.XX …
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { loadAddon, loadNativeOps } from '../native/index.js';
import { fallbackOps } from '../native/fallback.js';
import type { SharedArena } from '../native/native-ops.js';
import { bestOf, fmt, gbps } from './lib/timing.js';
import { alternate, cpuLine, kernelReport, load, median } from './lib/host.js';

const GiB = 2 ** 30;
const SIZE = Number(process.env.SCRUB_BENCH_GIB ?? 2) * GiB;
const ROUNDS = Number(process.env.SCRUB_BENCH_ROUNDS ?? 5);
const TOUCH = Number(process.env.SCRUB_BENCH_TOUCH_MIB ?? 512) * 2 ** 20;
const size = BigInt(SIZE);
const loadStart = load();
console.log(`load at start: ${loadStart}`);

const addon = loadAddon();
const ops = addon instanceof Error ? undefined : loadNativeOps();
const native = ops !== undefined && ops.kind === 'native' && !(addon instanceof Error) ? { ops, raw: addon } : undefined;
if (!native) console.log(`addon unavailable: ${addon instanceof Error ? addon.message : 'forced off'}`);
const report = kernelReport(native?.ops ?? fallbackOps);
let kernelTag = 'none';
if (typeof report === 'string') {
  console.log(`kernels: unknown (${report})`);
} else {
  console.log(`cpu: ${cpuLine(report)}`);
  kernelTag = `${report.fill.large}>=${report.fill.streamThreshold / 2 ** 20}MiB`;
  console.log(`kernels: fill < ${report.fill.streamThreshold / 2 ** 20} MiB → ${report.fill.small} (memset/wmemset), ` +
    `≥ → ${report.fill.large}${report.overridden ? ' (pinned by VGPUD_KERNELS)' : ''}`);
}

/** 1 GiB windows over the arena (a Buffer stops at 4 GiB; the floor needs a Buffer). */
function windows(a: SharedArena, bytes: number): Buffer[] {
  const out: Buffer[] = [];
  for (let o = 0; o < bytes; o += GiB) out.push(a.window(BigInt(o), Math.min(GiB, bytes - o)));
  return out;
}

interface Case { name: string; pattern: number; floorName: string }
const CASES: Case[] = [
  { name: 'pattern 0xa5a5a5a5', pattern: 0xa5a5a5a5, floorName: 'memset' },
  { name: 'pattern 0x0badf00d', pattern: 0x0badf00d, floorName: 'wmemset' },
  { name: 'zero (no release)', pattern: 0, floorName: 'memset 0' },
];

let addonGbps = NaN;
let memsetGbps = NaN;
const ratios: Record<string, string> = {};
if (native) {
  const { ops: nops, raw } = native;
  const jobFloor = raw.libcFillJob;
  const floorFill = async (ws: Buffer[], pat: number): Promise<void> => {
    for (const w of ws) {
      if (jobFloor) await jobFloor(w, pat);
      else nops.memsetFloor(w, pat & 0xff); // stale addon: main-thread memset (byte patterns only)
    }
  };
  if (!jobFloor) console.log('floor: stale addon without libcFillJob — memset on the main thread (run npm run build:native)');

  // First touch: a fresh sparse arena per run for each side, the same pattern.
  const touchRatios: number[] = [];
  let bestTouchAddon = Infinity, bestTouchFloor = Infinity, touchLoopMs = 0;
  for (let i = 0; i < Math.max(1, Math.min(ROUNDS, 3)); i++) {
    const fa = nops.createArena({ size: BigInt(TOUCH) });
    const fb = nops.createArena({ size: BigInt(TOUCH) });
    const loop = monitorEventLoopDelay({ resolution: 2 });
    const tFloor = await bestOf(1, () => floorFill(windows(fb, TOUCH), 0xa5a5a5a5));
    loop.enable();
    const tAddon = await bestOf(1, () => fa.fill(0n, fa.size, 0xa5a5a5a5, { release: false }));
    loop.disable();
    touchLoopMs = Math.max(touchLoopMs, loop.max / 1e6);
    fa.close();
    fb.close();
    bestTouchAddon = Math.min(bestTouchAddon, tAddon);
    bestTouchFloor = Math.min(bestTouchFloor, tFloor);
    touchRatios.push(tFloor / tAddon);
  }
  ratios.first_touch_ratio = fmt(bestTouchFloor / bestTouchAddon);
  console.log(`first touch (${TOUCH / 2 ** 20} MiB fresh arena, 0xa5a5a5a5): addon ${fmt(gbps(TOUCH, bestTouchAddon))} GB/s, ` +
    `floor memset ${fmt(gbps(TOUCH, bestTouchFloor))} GB/s, ratio ${fmt(bestTouchFloor / bestTouchAddon)} ` +
    `(per-run median ${fmt(median(touchRatios))}; max event-loop delay during the addon's fills ${touchLoopMs.toFixed(1)} ms)`);

  // Warm memory: one arena, every page written before anything is timed.
  const arena = nops.createArena({ size });
  const ws = windows(arena, SIZE);
  await arena.fill(0n, size, 0x01010101, { release: false });
  for (const c of CASES) {
    const floor = (): Promise<void> => floorFill(ws, c.pattern);
    const fill = (): Promise<void> => arena.fill(0n, size, c.pattern, { release: false });
    await floor();
    await fill();
    const t = await alternate(ROUNDS, floor, fill);
    const bestFloor = Math.min(...t.floor), bestAddon = Math.min(...t.subject);
    const perRound = t.floor.map((f, i) => f / t.subject[i]!);
    const ratio = bestFloor / bestAddon;
    const cpuRatio = Math.min(...t.floorCpu) / Math.min(...t.subjectCpu);
    console.log(`${c.name}: addon ${fmt(gbps(SIZE, bestAddon))} GB/s, floor ${c.floorName} ${fmt(gbps(SIZE, bestFloor))} GB/s, ` +
      `ratio ${fmt(ratio)} (per-round median ${fmt(median(perRound))}, min ${fmt(Math.min(...perRound))}, ${ROUNDS} rounds; ` +
      `by CPU time ${fmt(cpuRatio)})`);
    if (c.pattern === 0xa5a5a5a5) ratios.cpu_ratio = fmt(cpuRatio);
    if (c.pattern === 0xa5a5a5a5) {
      addonGbps = gbps(SIZE, bestAddon);
      memsetGbps = gbps(SIZE, bestFloor);
    } else {
      ratios[c.pattern === 0 ? 'zero_ratio' : 'wmemset_ratio'] = fmt(ratio);
    }
  }
  // Every store loop this CPU can run, pinned in turn (setKernels, threshold 0: every slice uses it) against the same
  // floor: what the automatic choice won over. 'libc' here is the old behaviour — the C library called per 4 MiB slice.
  if (raw.setKernels !== undefined && typeof report !== 'string') {
    const alt: string[] = [];
    for (const k of report.available.fill) {
      raw.setKernels({ fill: k, streamThreshold: 0 });
      const t = await alternate(3, () => floorFill(ws, 0xa5a5a5a5), () => arena.fill(0n, size, 0xa5a5a5a5, { release: false }));
      const best = Math.min(...t.subject);
      alt.push(`${k} ${fmt(gbps(SIZE, best))} GB/s (ratio ${fmt(Math.min(...t.floor) / best)}, ` +
        `by CPU time ${fmt(Math.min(...t.floorCpu) / Math.min(...t.subjectCpu))})`);
    }
    raw.setKernels({ fill: 'auto', streamThreshold: 'auto' });
    console.log(`every kernel, pattern 0xa5a5a5a5 in every slice: ${alt.join('; ')}`);
  }
  // Zero with release: time to hand a fully written arena back (re-written before each rep).
  let tRelease = Infinity;
  for (let i = 0; i < 3; i++) {
    await arena.fill(0n, size, 0xa5a5a5a5);
    const t0 = process.hrtime.bigint();
    await arena.fill(0n, size, 0);
    tRelease = Math.min(tRelease, Number(process.hrtime.bigint() - t0) / 1e9);
  }
  console.log(`zero with release: ${(tRelease * 1e3).toFixed(1)} ms for ${SIZE / GiB} GiB (${fmt(gbps(SIZE, tRelease))} GB/s-equivalent), ` +
    `committed after: ${arena.committedBytes()} B`);
  arena.close();
}

// Fallback on a SAB of the same size, pre-faulted.
const js = fallbackOps.createArena({ size, backing: 'sab' });
await js.fill(0n, size, 0x01010101);
const tJs = await bestOf(3, () => js.fill(0n, size, 0xa5a5a5a5));
const fallbackGbps = gbps(SIZE, tJs);
console.log(`fallback fill 0xa5a5a5a5 on a pre-faulted SAB: ${fmt(fallbackGbps)} GB/s`);
if (Number.isNaN(memsetGbps)) {
  const buf = js.window(0n, Math.min(SIZE, GiB));
  memsetGbps = gbps(buf.length, await bestOf(3, () => fallbackOps.memsetFloor(buf, 0xa5)));
}
js.close();

const loadEnd = load();
console.log(`load at end: ${loadEnd}`);
const cpu = typeof report === 'string' ? 'unknown' : (report.cpu.brand || report.cpu.arch);
console.log(`scrub: addon_gbps=${fmt(addonGbps)} fallback_gbps=${fmt(fallbackGbps)} memset_gbps=${fmt(memsetGbps)} ` +
  `ratio=${fmt(addonGbps / memsetGbps)} ${Object.entries(ratios).map(([k, v]) => `${k}=${v}`).join(' ')} ` +
  `kernel=${kernelTag} cpu="${cpu}" load="${loadStart} → ${loadEnd}"`);
