/**
 * Retention of the per-vGPU log files (`<gpu>_vf<N>_<vgpuId>.log` and its rotations `.1` …): without it every vGPU
 * ever created leaves its files behind for good. A sweep keeps
 *  - the files of every vGPU still drained (running);
 *  - those of the last vGPU of each VF while no newer vGPU runs there (a VF's logs stay readable until it is
 *    reused, as the in-memory store promises);
 *  - of the rest (vGPUs destroyed and superseded on their VF, newest first by file time): the `keepDestroyed`
 *    newest, and none older than `keepDestroyedHours` when that is set;
 * and deletes the others. Sweeps run at start and when a vGPU ends or a VF is reused — never on a timer — one at a
 * time (a request during a sweep runs one more after it).
 */
import { lstat, readdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../../core/contracts/logger.js';

const FILE_RE = /^(.+)_vf(\d+)_(.+\.log)(?:\.\d+)?$/;

export interface RetentionSettings {
  dir: string;
  /** vGPUs (beyond each VF's last) whose files are kept after destroy, newest first. */
  keepDestroyed: number;
  /** Files of destroyed vGPUs older than this are deleted (0 = no age limit). */
  keepDestroyedHours: number;
}

interface Group {
  base: string;
  vfKey: string;
  mtimeMs: number;
  files: string[];
}

/** The base file name of a vGPU's log (what the drainer opens). */
export function logFileName(gpu: string, vf: number, vgpuId: string): string {
  return `${gpu.replace(/[^0-9a-zA-Z.]/g, '-')}_vf${vf}_${vgpuId.replace(/[^0-9a-zA-Z._-]/g, '-')}.log`;
}

export class LogRetention {
  private running: Promise<void> | null = null;
  private again = false;

  constructor(private readonly s: RetentionSettings, private readonly logger: Logger, private readonly now: () => number = Date.now) {}

  /**
   * Request a sweep. `live` returns the base names of the files still being written, `ended` the order in which
   * this run saw vGPUs end (higher = later); both are read when the sweep runs.
   */
  request(live: () => ReadonlySet<string>, ended: () => ReadonlyMap<string, number> = () => new Map()): Promise<void> {
    if (this.running !== null) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      do {
        this.again = false;
        try {
          await this.sweep(live(), ended());
        } catch (error) {
          this.logger.warn('vGPU log retention sweep failed', { dir: this.s.dir, error: (error as Error).message });
        }
      } while (this.again);
    })().finally(() => { this.running = null; });
    return this.running;
  }

  /**
   * One sweep (see the file comment); resolves with the files deleted. Newest first means: vGPUs this run saw end,
   * latest first (file times can tie: the kernel stamps them at timer-tick resolution), then the others by file time.
   */
  async sweep(live: ReadonlySet<string>, ended: ReadonlyMap<string, number> = new Map()): Promise<string[]> {
    const groups = new Map<string, Group>();
    for (const name of await readdir(this.s.dir)) {
      const m = FILE_RE.exec(name);
      if (m === null) continue;
      const base = `${m[1]}_vf${m[2]}_${m[3]}`;
      let mtimeMs: number;
      try {
        mtimeMs = (await lstat(join(this.s.dir, name))).mtimeMs;
      } catch {
        continue; // gone meanwhile (a rotation)
      }
      const g = groups.get(base) ?? { base, vfKey: `${m[1]}_vf${m[2]}`, mtimeMs: 0, files: [] };
      g.mtimeMs = Math.max(g.mtimeMs, mtimeMs);
      g.files.push(name);
      groups.set(base, g);
    }
    const liveVfs = new Set([...groups.values()].filter((g) => live.has(g.base)).map((g) => g.vfKey));
    const rank = (g: Group): number => ended.get(g.base) ?? -1;
    const byAge = [...groups.values()].filter((g) => !live.has(g.base))
      .sort((a, b) => rank(b) - rank(a) || b.mtimeMs - a.mtimeMs || b.base.localeCompare(a.base));
    const lastOfVf = new Set<string>();
    const candidates: Group[] = [];
    for (const g of byAge) {
      // The newest files of a VF nobody runs on now are that VF's logs: kept until the VF is reused.
      if (!liveVfs.has(g.vfKey) && !lastOfVf.has(g.vfKey)) {
        lastOfVf.add(g.vfKey);
        continue;
      }
      candidates.push(g);
    }
    const maxAgeMs = this.s.keepDestroyedHours * 3_600_000;
    const doomed = candidates.filter((g, i) => i >= this.s.keepDestroyed || (maxAgeMs > 0 && this.now() - g.mtimeMs > maxAgeMs));
    const deleted: string[] = [];
    for (const g of doomed) {
      for (const f of g.files) {
        try {
          await unlink(join(this.s.dir, f)); // a link is removed itself, never its target
          deleted.push(f);
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
        }
      }
    }
    if (deleted.length > 0) this.logger.debug('old vGPU log files deleted', { dir: this.s.dir, vgpus: doomed.length, files: deleted.length });
    return deleted;
  }
}
