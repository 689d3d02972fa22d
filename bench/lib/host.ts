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

/**
 * Time `floor` and `subject` alternately for `rounds` rounds (floor first in odd rounds, subject first in even ones)
 * so drift in the host's load hits both alike. Returns each one's times in seconds, per round.
 */
export async function alternate(rounds: number, floor: () => unknown, subject: () => unknown): Promise<{ floor: number[]; subject: number[] }> {
  const time = async (f: () => unknown): Promise<number> => {
    const t0 = process.hrtime.bigint();
    await f();
    return Number(process.hrtime.bigint() - t0) / 1e9;
  };
  const out = { floor: [] as number[], subject: [] as number[] };
  for (let i = 0; i < rounds; i++) {
    if (i % 2 === 0) {
      out.floor.push(await time(floor));
      out.subject.push(await time(subject));
    } else {
      out.subject.push(await time(subject));
      out.floor.push(await time(floor));
    }
  }
  return out;
}
