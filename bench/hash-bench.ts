// Page-hash benchmark (vgpu-page-hash-v1, the migration engine's dirty-page detector). Floor measured in the same
// run: the addon's verify over the same warm range, i.e. a memcmp scan that reads every byte once — hashing cannot
// beat reading. Also reported: a 4 GiB rescan time against the 300 ms migration downtime budget (written pages, and
// a sparse arena where 1 % of the pages hold data: holes are hashed without being read).
// Last line (parsed by tooling): hash: addon_gbps=X.XX fallback_gbps=X.XX scan_gbps=X.XX ratio=X.XX rescan_4gib_ms=N
import { loadavg } from 'node:os';
import { loadAddon, loadNativeOps } from '../native/index.js';
import { fallbackOps } from '../native/fallback.js';
import { bestOf, fmt, gbps } from './lib/timing.js';

const GiB = 2 ** 30;
const SIZE = Number(process.env.HASH_BENCH_GIB ?? 1) * GiB;
const REPS = 3;
const load = (): string => loadavg().map((x) => x.toFixed(2)).join(' ');
console.log(`load at start: ${load()} (2-core machine: anything above ~0.5 means other work shares the cores)`);

const addonErr = loadAddon();
const ops = addonErr instanceof Error ? undefined : loadNativeOps();
let addonGbps = NaN;
let scanGbps = NaN;
let rescanMs = NaN;
if (ops && ops.kind === 'native') {
  const a = ops.createArena({ size: BigInt(SIZE) });
  await a.fill(0n, a.size, 0x3c3c3c3c, { release: false }); // warm: no page fault inside the timed runs
  const tScan = await bestOf(REPS, () => a.verify(0n, a.size, 0x3c3c3c3c));
  const tHash = await bestOf(REPS, () => a.hashPages(0n, a.size));
  scanGbps = gbps(SIZE, tScan);
  addonGbps = gbps(SIZE, tHash);
  rescanMs = (4 * GiB) / (addonGbps * 1e9) * 1e3;
  console.log(`addon hashPages (4 KiB pages, warm): ${fmt(addonGbps)} GB/s; memcmp scan floor (verify): ${fmt(scanGbps)} GB/s; ` +
    `spec C floor for a 64-bit hash (hardware-and-perf.md §8.1, not this run): 8.3 GB/s`);
  a.close();

  // 4 GiB sparse arena, 1 % of the pages written (spread out): what a rescan of a mostly idle guest costs.
  const s = ops.createArena({ size: 4n << 30n });
  const stride = 100n * 4096n;
  for (let o = 0n; o < s.size; o += stride) s.store32(o, 1);
  const tSparse = await bestOf(REPS, () => s.hashPages(0n, s.size));
  console.log(`addon 4 GiB rescan: written pages ${rescanMs.toFixed(0)} ms (from the rate above); ` +
    `sparse (1 % written) ${(tSparse * 1e3).toFixed(0)} ms; budget 300 ms`);
  s.close();
} else {
  console.log(`addon unavailable: ${addonErr instanceof Error ? addonErr.message : 'forced off'}`);
}

const FB = 256 * 2 ** 20;
const js = fallbackOps.createArena({ size: BigInt(FB), backing: 'sab' });
await js.fill(0n, js.size, 0x3c3c3c3c);
const fallbackGbps = gbps(FB, await bestOf(REPS, () => js.hashPages(0n, js.size)));
console.log(`fallback hashPages (pure TS, 256 MiB SAB): ${fmt(fallbackGbps)} GB/s`);
js.close();
console.log(`load at end: ${load()}`);
console.log(`hash: addon_gbps=${fmt(addonGbps)} fallback_gbps=${fmt(fallbackGbps)} scan_gbps=${fmt(scanGbps)} ` +
  `ratio=${fmt(addonGbps / scanGbps)} rescan_4gib_ms=${rescanMs.toFixed(0)}`);
