/**
 * The create/destroy soak both lifecycle soak tests run (mock HAL and simulator): `cycles` destroys of vGPUs made on
 * `vfs` VFs with types drawn at random, a live VF destroyed when drawn again. A create the heterogeneous policy
 * refuses for want of room (VGPU_ENOSPC) is counted, any other error fails the soak. Everything left is destroyed.
 */
import { isVgpuError } from '../../core/contracts/exceptions.js';

export interface SoakTarget<T> {
  create(vf: number, type: T): Promise<{ id: string }>;
  destroy(id: string): Promise<unknown>;
}

export interface SoakResult {
  /** Creates that succeeded: one per destroyed vGPU (the `cycles`), plus those still live at the end. */
  created: number;
  /** Creates refused with VGPU_ENOSPC. */
  refused: number;
  /** Indexes into `types` created at least once. */
  made: Set<number>;
}

export async function soakCycles<T>(lc: SoakTarget<T>, types: readonly T[], opts: { cycles: number; vfs: number; seed: number }): Promise<SoakResult> {
  let seed = opts.seed;
  // The high bits: an LCG's low bits cycle with a short period (seed % 4 would repeat every 4 draws).
  const rand = (n: number): number => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return (seed >>> 16) % n; };
  const live = new Map<number, string>(); // vf → vGPU id
  const made = new Set<number>();
  let cycles = 0;
  let refused = 0;
  let created = 0;
  while (cycles < opts.cycles) {
    const vf = rand(opts.vfs);
    const id = live.get(vf);
    if (id !== undefined) {
      await lc.destroy(id);
      live.delete(vf);
      cycles++;
      continue;
    }
    const k = rand(types.length);
    try {
      live.set(vf, (await lc.create(vf, types[k]!)).id);
      made.add(k);
      created++;
    } catch (e) {
      // No room for that type next to the live ones: the policy refuses it at call time and nothing is made.
      if (!isVgpuError(e, 'VGPU_ENOSPC')) throw e;
      refused++;
    }
  }
  for (const id of live.values()) await lc.destroy(id);
  return { created, refused, made };
}
