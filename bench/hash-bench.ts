// Page-hash benchmark (vgpu-page-hash-v1, the migration engine's dirty-page detector). Floor measured in the same
// run: the addon's verify over the same warm range — a memcmp scan that reads every byte once on the same job threads
// at the same priority; hashing cannot beat reading. Floor and hash alternate round by round; the best of each
// counts, and the per-round ratios' median is printed beside it. Also reported: a 4 GiB rescan time against the
// 300 ms migration downtime budget (written pages, and a sparse arena where 1 % of the pages hold data: holes are
// hashed without being read), and the CPU, the kernel chosen for it and the host's load.
// Env: HASH_BENCH_GIB (default 1), HASH_BENCH_ROUNDS (default 5).
// Last line (parsed by tooling): hash: addon_gbps=X.XX fallback_gbps=X.XX scan_gbps=X.XX ratio=X.XX rescan_4gib_ms=N …
import { loadAddon, loadNativeOps } from '../native/index.js';
import { fallbackOps } from '../native/fallback.js';
import { bestOf, fmt, gbps } from './lib/timing.js';
import { alternate, cpuLine, kernelReport, load, median } from './lib/host.js';

const GiB = 2 ** 30;
const SIZE = Number(process.env.HASH_BENCH_GIB ?? 1) * GiB;
const ROUNDS = Number(process.env.HASH_BENCH_ROUNDS ?? 5);
const loadStart = load();
console.log(`load at start: ${loadStart} (2-core machine: anything above ~0.5 means other work shares the cores)`);

const addonErr = loadAddon();
const ops = addonErr instanceof Error ? undefined : loadNativeOps();
const report = kernelReport(ops ?? fallbackOps);
let kernel = 'none';
if (typeof report === 'string') {
  console.log(`kernels: unknown (${report})`);
} else {
  kernel = report.pageHash;
  console.log(`cpu: ${cpuLine(report)}`);
  console.log(`kernel: pageHash ${report.pageHash} (available: ${report.available.pageHash.join(', ')})` +
    `${report.overridden ? ' (pinned by VGPUD_KERNELS)' : ''}`);
}
let addonGbps = NaN;
let scanGbps = NaN;
let rescanMs = NaN;
let medianRatio = NaN;
let cpuRatio = NaN;
if (ops && ops.kind === 'native') {
  const a = ops.createArena({ size: BigInt(SIZE) });
  await a.fill(0n, a.size, 0x3c3c3c3c, { release: false }); // warm: no page fault inside the timed runs
  const scan = (): Promise<unknown> => a.verify(0n, a.size, 0x3c3c3c3c);
  const hash = (): Promise<unknown> => a.hashPages(0n, a.size);
  await scan();
  await hash();
  const t = await alternate(ROUNDS, scan, hash);
  scanGbps = gbps(SIZE, Math.min(...t.floor));
  addonGbps = gbps(SIZE, Math.min(...t.subject));
  medianRatio = median(t.floor.map((f, i) => f / t.subject[i]!));
  cpuRatio = Math.min(...t.floorCpu) / Math.min(...t.subjectCpu);
  rescanMs = (4 * GiB) / (addonGbps * 1e9) * 1e3;
  console.log(`addon hashPages (4 KiB pages, warm): ${fmt(addonGbps)} GB/s; memcmp scan floor (verify): ${fmt(scanGbps)} GB/s; ` +
    `ratio ${fmt(addonGbps / scanGbps)} (per-round median ${fmt(medianRatio)}, ${ROUNDS} rounds; by CPU time ${fmt(cpuRatio)})`);
  // Every page-hash kernel this CPU can run, pinned in turn, against the same scan.
  const raw = addonErr instanceof Error ? undefined : addonErr;
  if (raw?.setKernels !== undefined && typeof report !== 'string') {
    const alt: string[] = [];
    for (const k of report.available.pageHash) {
      raw.setKernels({ pageHash: k });
      const r = await alternate(3, scan, hash);
      alt.push(`${k} ${fmt(gbps(SIZE, Math.min(...r.subject)))} GB/s (ratio ${fmt(Math.min(...r.floor) / Math.min(...r.subject))}, ` +
        `by CPU time ${fmt(Math.min(...r.floorCpu) / Math.min(...r.subjectCpu))})`);
    }
    raw.setKernels({ pageHash: 'auto' });
    console.log(`every kernel (against the scan in the same rounds): ${alt.join('; ')}`);
  }
  a.close();

  // 4 GiB sparse arena, 1 % of the pages written (spread out): what a rescan of a mostly idle guest costs.
  const s = ops.createArena({ size: 4n << 30n });
  const stride = 100n * 4096n;
  for (let o = 0n; o < s.size; o += stride) s.store32(o, 1);
  const tSparse = await bestOf(3, () => s.hashPages(0n, s.size));
  console.log(`addon 4 GiB rescan: written pages ${rescanMs.toFixed(0)} ms (from the rate above); ` +
    `sparse (1 % written) ${(tSparse * 1e3).toFixed(0)} ms; budget 300 ms`);
  s.close();
} else {
  console.log(`addon unavailable: ${addonErr instanceof Error ? addonErr.message : 'forced off'}`);
}

const FB = 256 * 2 ** 20;
const js = fallbackOps.createArena({ size: BigInt(FB), backing: 'sab' });
await js.fill(0n, js.size, 0x3c3c3c3c);
const fallbackGbps = gbps(FB, await bestOf(3, () => js.hashPages(0n, js.size)));
console.log(`fallback hashPages (pure TS, 256 MiB SAB): ${fmt(fallbackGbps)} GB/s`);
js.close();
const loadEnd = load();
console.log(`load at end: ${loadEnd}`);
const cpu = typeof report === 'string' ? 'unknown' : (report.cpu.brand || report.cpu.arch);
console.log(`hash: addon_gbps=${fmt(addonGbps)} fallback_gbps=${fmt(fallbackGbps)} scan_gbps=${fmt(scanGbps)} ` +
  `ratio=${fmt(addonGbps / scanGbps)} median_ratio=${fmt(medianRatio)} cpu_ratio=${fmt(cpuRatio)} rescan_4gib_ms=${rescanMs.toFixed(0)} ` +
  `kernel=${kernel} cpu="${cpu}" load="${loadStart} → ${loadEnd}"`);
