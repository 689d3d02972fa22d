// What a benchmark line needs next to its ratio: the CPU (as the addon's cpuid sees it), the kernels chosen for it,
// and how busy the host was. Shared by bench:scrub and bench:hash.
import { cpus, loadavg } from 'node:os';
import type { KernelReport, NativeOps } from '../../native/native-ops.js';

export const load = (): string => loadavg().map((x) => x.toFixed(2)).join(' ');

const MiB = 2 ** 20;

/** "AMD EPYC 7B13 (AuthenticAMD family 25 model 1; avx2 erms fsrm; LLC 32 MiB L3; 2 cores)". */
export function cpuLine(r: KernelReport): string {
  const c = r.cpu;
  const brand = c.brand || cpus()[0]?.model || 'unknown CPU';
  const id = c.vendor ? `${c.vendor} family ${c.family} model ${c.model}` : c.arch;
  const feats = c.features.length ? `; ${c.features.join(' ')}` : '';
  const llc = c.llcBytes ? `; LLC ${c.llcBytes / MiB} MiB L${c.llcLevel}` : '';
  return `${brand} (${id}${feats}${llc}; ${cpus().length} cores)`;
}

/** The addon's kernel report, or the fallback's; a stale addon says so instead of failing the bench. */
export function kernelReport(ops: NativeOps): KernelReport | string {
  try {
    return ops.kernels();
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
}

/** Median of a non-empty list. */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export interface Alternated {
  /** Wall time per round, seconds. */
  floor: number[];
  subject: number[];
  /**
   * CPU time of the whole process per round, seconds — while a job runs the event loop only waits, so this is the
   * job threads' time. On a loaded host it shows what the loops cost without the time they spent waiting for a core.
   */
  floorCpu: number[];
  subjectCpu: number[];
}

/**
 * Time `floor` and `subject` alternately for `rounds` rounds (floor first in even rounds, subject first in odd ones)
 * so drift in the host's load hits both alike.
 */
export async function alternate(rounds: number, floor: () => unknown, subject: () => unknown): Promise<Alternated> {
  const out: Alternated = { floor: [], subject: [], floorCpu: [], subjectCpu: [] };
  const time = async (f: () => unknown, wall: number[], cpu: number[]): Promise<void> => {
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    await f();
    wall.push(Number(process.hrtime.bigint() - t0) / 1e9);
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / 1e6);
  };
  for (let i = 0; i < rounds; i++) {
    if (i % 2 === 0) {
      await time(floor, out.floor, out.floorCpu);
      await time(subject, out.subject, out.subjectCpu);
    } else {
      await time(subject, out.subject, out.subjectCpu);
      await time(floor, out.floor, out.floorCpu);
    }
  }
  return out;
}
