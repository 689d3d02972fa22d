// Startup benchmark: how long `vgpuctl --help` takes from the shell, against `node -e 0` (the floor: a Node process
// that loads nothing), measured in the same run. Target (issue 15): ≤ 2× the floor.
// Each round starts every subject once, in rotating order, so a change in the host's load hits them alike; the
// median and the minimum over the rounds are printed, and the ratio of the medians.
// Subjects: the floor; `vgpuctl --help` as installed (bin/vgpuctl.mjs: the stale-build check, then dist/); the
// compiled entry without the launcher (what the check costs); `vgpud --help`; and, for reference, vgpuctl from the
// TypeScript sources through tsx (VGPUD_RUN_FROM=source: what every start cost before the compiled build).
// Needs an up-to-date dist/ (`npm run build`); builds it first when it is stale.
// Env: STARTUP_BENCH_ROUNDS (default 15).
// Last line (parsed by tooling): startup: node_ms=N vgpuctl_help_ms=N ratio=X.XX …
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { assetPath } from '../core/runtime/package-root.js';
import { load, median } from './lib/host.js';

const ROUNDS = Number(process.env.STARTUP_BENCH_ROUNDS ?? 15);
const root = assetPath();
const loadStart = load();
console.log(`load at start: ${loadStart}; cpu: ${cpus()[0]?.model ?? 'unknown'} (${cpus().length} cores); node ${process.version}`);

const build = spawnSync(process.execPath, [join(root, 'tools', 'build.mjs'), '--if-stale'], { cwd: root, stdio: 'inherit' });
if (build.status !== 0) {
  console.error('startup bench: the build failed; run `npm run build` and read its errors');
  process.exit(1);
}

interface Subject { name: string; args: string[]; env?: Record<string, string> }
const subjects: Subject[] = [
  { name: 'node -e 0', args: ['-e', '0'] },
  { name: 'vgpuctl --help (bin/vgpuctl.mjs)', args: [join(root, 'bin', 'vgpuctl.mjs'), '--help'] },
  { name: 'vgpuctl --help (dist/bin/vgpuctl.js, no launcher)', args: [join(root, 'dist', 'bin', 'vgpuctl.js'), '--help'] },
  { name: 'vgpud --help (bin/vgpud.mjs)', args: [join(root, 'bin', 'vgpud.mjs'), '--help'] },
  { name: 'vgpuctl --help from source (tsx)', args: [join(root, 'bin', 'vgpuctl.mjs'), '--help'], env: { VGPUD_RUN_FROM: 'source' } },
];

/**
 * CPU time of our reaped children so far, ms (/proc/self/stat fields cutime + cstime, in USER_HZ = 100 ticks/s on
 * Linux): summed over the rounds it shows what each start costs without the time it waited for a core.
 */
function childCpuMs(): number {
  try {
    const stat = readFileSync('/proc/self/stat', 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // fields from 3 (state) on
    return (Number(f[13]) + Number(f[14])) * 10; // fields 16 and 17
  } catch {
    return NaN;
  }
}

const cpu: number[] = [];

function runOnce(s: Subject, i: number): number {
  const c0 = childCpuMs();
  const t0 = process.hrtime.bigint();
  const r = spawnSync(process.execPath, s.args, { cwd: root, env: { ...process.env, ...s.env }, stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  cpu[i] = (cpu[i] ?? 0) + childCpuMs() - c0;
  if (r.status !== 0) throw new Error(`${s.name} exited with ${r.status}: ${r.stderr}`);
  // A stale-build warning would mean the bench measured the tsx fallback: fail instead of printing a wrong figure.
  if (s.env?.VGPUD_RUN_FROM === undefined && r.stderr.includes('dist/ is')) throw new Error(`${s.name}: ${r.stderr.trim()}`);
  return ms;
}

const times = subjects.map(() => [] as number[]);
subjects.forEach((s, i) => runOnce(s, i)); // warm the page cache for every file each one reads
cpu.fill(0);
for (let round = 0; round < ROUNDS; round++) {
  for (let k = 0; k < subjects.length; k++) {
    const i = (round + k) % subjects.length;
    times[i]!.push(runOnce(subjects[i]!, i));
  }
}
const med = times.map(median);
const cpuMean = cpu.map((c) => c / ROUNDS);
for (let i = 0; i < subjects.length; i++) {
  console.log(`${subjects[i]!.name}: median ${med[i]!.toFixed(1)} ms, min ${Math.min(...times[i]!).toFixed(1)} ms, ` +
    `${(med[i]! / med[0]!).toFixed(2)}× node -e 0; CPU ${cpuMean[i]!.toFixed(0)} ms per start (${(cpuMean[i]! / cpuMean[0]!).toFixed(2)}×)`);
}
const loadEnd = load();
console.log(`load at end: ${loadEnd}`);
console.log(`startup: node_ms=${med[0]!.toFixed(1)} vgpuctl_help_ms=${med[1]!.toFixed(1)} ratio=${(med[1]! / med[0]!).toFixed(2)} ` +
  `vgpud_help_ratio=${(med[3]! / med[0]!).toFixed(2)} launcher_ms=${(med[1]! - med[2]!).toFixed(1)} ` +
  `from_source_ratio=${(med[4]! / med[0]!).toFixed(2)} cpu_ratio=${(cpuMean[1]! / cpuMean[0]!).toFixed(2)} target=2.00 load="${loadStart} → ${loadEnd}"`);
