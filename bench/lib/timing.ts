// Tiny timing helpers shared by benchmarks: best-of-N wall time and GB/s formatting.
export async function bestOf(n: number, run: () => unknown): Promise<number> {
  let best = Infinity;
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    await run();
    best = Math.min(best, Number(process.hrtime.bigint() - t0) / 1e9);
  }
  return best;
}

export const gbps = (bytes: number, seconds: number): number => bytes / seconds / 1e9;
export const fmt = (x: number): string => x.toFixed(2);
