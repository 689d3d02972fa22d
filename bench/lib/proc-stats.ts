// What /proc says about a process and the host: CPU time, resident memory, load, CPU model. Linux only.
import { readFileSync } from 'node:fs';

/** Clock ticks per second of /proc/<pid>/stat times (USER_HZ; 100 on every Linux this runs on). */
const TICKS_PER_SECOND = 100;

/** User + system CPU seconds a process (all its threads) has used so far; with `tid`, that one thread's. */
export function cpuSeconds(pid: number, tid?: number): number {
  const stat = readFileSync(tid === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${tid}/stat`, 'utf8');
  // Field 2 (comm) may contain spaces and parentheses: split after its closing ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // After comm: state is fields[0], so utime (field 14) is fields[11] and stime (field 15) fields[12].
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
}

/** Resident set size in bytes (VmRSS). */
export function rssBytes(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

/** Resident memory of a process in bytes: all of it (VmRSS), private (RssAnon) and shared-memory pages (RssShmem). */
export function rssParts(pid: number): { rss: number; anon: number; shmem: number } {
  const st = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string): number => Number(new RegExp(`^${k}:\\s+(\\d+) kB$`, 'm').exec(st)?.[1] ?? 0) * 1024;
  return { rss: kb('VmRSS'), anon: kb('RssAnon'), shmem: kb('RssShmem') };
}

/**
 * The peaks of rssParts over a stretch of work, sampled every `everyMs` (a bench only: the sampler is its own
 * timer). A process that has gone is skipped.
 */
export function rssPeaks(pids: number[], everyMs = 100): { stop(): Array<{ rss: number; anon: number; shmem: number }> } {
  const peaks = pids.map(() => ({ rss: 0, anon: 0, shmem: 0 }));
  const sample = (): void => {
    pids.forEach((pid, i) => {
      try {
        const r = rssParts(pid);
        const p = peaks[i]!;
        p.rss = Math.max(p.rss, r.rss); p.anon = Math.max(p.anon, r.anon); p.shmem = Math.max(p.shmem, r.shmem);
      } catch { /* gone */ }
    });
  };
  sample();
  const t = setInterval(sample, everyMs);
  return { stop: () => { clearInterval(t); sample(); return peaks; } };
}

export function loadAverage(): string {
  return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
}

export function cpuModel(): string {
  const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
  return `${m?.[1]?.trim() ?? 'unknown CPU'} × ${readFileSync('/proc/cpuinfo', 'utf8').match(/^processor\s*:/gm)?.length ?? '?'}`;
}

/** CPU (% of one core) and RSS of each pid over `seconds`, sampled at the start and the end only. */
export async function idleWindow(pids: number[], seconds: number): Promise<Array<{ pid: number; cpuPct: number; rss: number }>> {
  const before = pids.map((p) => cpuSeconds(p));
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const wall = (performance.now() - t0) / 1000;
  return pids.map((pid, i) => ({ pid, cpuPct: ((cpuSeconds(pid) - before[i]!) / wall) * 100, rss: rssBytes(pid) }));
}

export function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
}
