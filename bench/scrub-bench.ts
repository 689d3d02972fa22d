// Scrub benchmark: fill throughput of the addon and the fallback against a single plain memset of the same value
// on the same size, measured in the same run (the floor). Arenas are pre-faulted first, so the main numbers are
// warm-memory bandwidth; first-touch (fresh pages) is reported on its own line.
// Also printed: the machine's load average at start and end (2 cores, shared VMs: say how busy it was next to the
// figures) and the worst event-loop delay seen during the addon's fills (the daemon must keep answering: < 20 ms).
// Last line (parsed by tooling): scrub: addon_gbps=X.XX fallback_gbps=X.XX memset_gbps=X.XX ratio=X.XX
import { loadavg } from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { loadAddon, loadNativeOps } from '../native/index.js';
import { fallbackOps } from '../native/fallback.js';
import { bestOf, fmt, gbps } from './lib/timing.js';

const SIZE = Number(process.env.SCRUB_BENCH_GIB ?? 2) * 2 ** 30;
const size = BigInt(SIZE);
const PATTERN = 0xa5a5a5a5;
const REPS = 3;
const load = (): string => loadavg().map((x) => x.toFixed(2)).join(' ');
console.log(`load at start: ${load()}`);

const addonErr = loadAddon();
const ops = addonErr instanceof Error ? undefined : loadNativeOps();
if (!ops || ops.kind !== 'native') console.log(`addon unavailable: ${addonErr instanceof Error ? addonErr.message : 'forced off'}`);

// Floor: one memset over a pre-faulted 2 GiB region. A Buffer stops at 4 GiB, fine for the default size; the
// floor runs on the addon's own mapping through 1 GiB windows so both touch the same kind of memory (shmem).
let addonGbps = NaN;
let memsetGbps = NaN;
if (ops && ops.kind === 'native') {
  const arena = ops.createArena({ size });
  const windows: Buffer[] = [];
  for (let o = 0; o < SIZE; o += 2 ** 30) windows.push(arena.window(BigInt(o), Math.min(2 ** 30, SIZE - o)));
  const loop = monitorEventLoopDelay({ resolution: 2 });
  loop.enable();
  const firstTouch = await bestOf(1, () => arena.fill(0n, size, PATTERN));
  loop.disable();
  const firstTouchLoopMs = loop.max / 1e6;
  console.log(`first-touch: addon fill 0x${PATTERN.toString(16)} on fresh pages ${fmt(gbps(SIZE, firstTouch))} GB/s ` +
    `(max event-loop delay meanwhile ${firstTouchLoopMs.toFixed(1)} ms)`);
  const memset = (byte: number): void => windows.forEach((w) => ops.memsetFloor(w, byte));
  memset(0xa5); // pre-fault done above; one warm-up pass
  const tMemset = await bestOf(REPS, () => memset(0xa5));
  const tAddon = await bestOf(REPS, () => arena.fill(0n, size, PATTERN, { release: false }));
  const tMemset0 = await bestOf(REPS, () => memset(0));
  const tAddon0 = await bestOf(REPS, () => arena.fill(0n, size, 0, { release: false }));
  console.log(`zero: addon fill 0 (no release) ${fmt(gbps(SIZE, tAddon0))} GB/s, memset 0 ${fmt(gbps(SIZE, tMemset0))} GB/s, ratio ${fmt(tMemset0 / tAddon0)}`);
  // Zero with release: time to hand a fully written arena back (re-written before each rep).
  let tRelease = Infinity;
  for (let i = 0; i < REPS; i++) {
    await arena.fill(0n, size, PATTERN);
    const t0 = process.hrtime.bigint();
    await arena.fill(0n, size, 0);
    tRelease = Math.min(tRelease, Number(process.hrtime.bigint() - t0) / 1e9);
  }
  console.log(`zero-with-release: ${fmt(gbps(SIZE, tRelease))} GB/s-equivalent (${(tRelease * 1e3).toFixed(1)} ms for ${SIZE / 2 ** 30} GiB), committed after: ${arena.committedBytes()} B`);
  addonGbps = gbps(SIZE, tAddon);
  memsetGbps = gbps(SIZE, tMemset);
  console.log(`pattern 0x${PATTERN.toString(16)}: addon fill ${fmt(addonGbps)} GB/s, memset floor ${fmt(memsetGbps)} GB/s`);
  arena.close();
}

// Fallback on a SAB of the same size, pre-faulted.
const js = fallbackOps.createArena({ size, backing: 'sab' });
await js.fill(0n, size, 0x01010101);
const tJs = await bestOf(REPS, () => js.fill(0n, size, PATTERN));
const fallbackGbps = gbps(SIZE, tJs);
console.log(`fallback fill 0x${PATTERN.toString(16)} on a pre-faulted SAB: ${fmt(fallbackGbps)} GB/s`);
if (Number.isNaN(memsetGbps)) {
  const buf = js.window(0n, Math.min(SIZE, 2 ** 30));
  memsetGbps = gbps(buf.length, await bestOf(REPS, () => fallbackOps.memsetFloor(buf, 0xa5)));
}
js.close();

console.log(`load at end: ${load()}`);
console.log(`scrub: addon_gbps=${fmt(addonGbps)} fallback_gbps=${fmt(fallbackGbps)} memset_gbps=${fmt(memsetGbps)} ratio=${fmt(addonGbps / memsetGbps)}`);
