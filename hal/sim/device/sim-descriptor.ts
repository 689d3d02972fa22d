/**
 * The small JSON file a device process writes next to its region file so buses can find it:
 * `<dir>/<bdf>.json` describing `<dir>/<bdf>.vgpusim`. Written atomically (temp file + rename) so a reader never
 * sees half a descriptor; removed when the device stops cleanly (the region file stays: it holds the FB).
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const DESCRIPTOR_SUFFIX = '.json';
export const REGION_SUFFIX = '.vgpusim';
/** Where vgpu-sim keeps its device files when nobody says otherwise. */
export const SYSTEM_SIM_DIR = '/dev/shm/vgpud-sim';

/**
 * The default simulator directory: `$VGPUD_SIM_DIR` when set, else SYSTEM_SIM_DIR. The override lets tests and
 * several users on one host run the built-in config (`npm start`, bare `vgpud`) without sharing one simulated GPU.
 */
export function defaultSimDir(env: NodeJS.ProcessEnv = process.env): string {
  const v = env.VGPUD_SIM_DIR;
  return v !== undefined && v !== '' ? v : SYSTEM_SIM_DIR;
}

/** defaultSimDir() as this process started (the environment does not change under a running daemon). */
export const DEFAULT_SIM_DIR = defaultSimDir();

export interface SimDescriptor {
  kind: 'gsp-sim';
  board: string;
  bdf: string;
  /** Region file (process mode). */
  path: string;
  pid: number;
  fbBytes: string;
  firmwareVersion: string;
  layoutVersion: number;
  startedAt: string;
}

/** Region and descriptor paths of a device `bdf` in `dir`. */
export function simPaths(dir: string, bdf: string): { region: string; descriptor: string } {
  return { region: join(dir, `${bdf}${REGION_SUFFIX}`), descriptor: join(dir, `${bdf}${DESCRIPTOR_SUFFIX}`) };
}

export function writeDescriptor(dir: string, d: SimDescriptor): string {
  mkdirSync(dir, { recursive: true });
  const { descriptor } = simPaths(dir, d.bdf);
  const tmp = `${descriptor}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(d, null, 2) + '\n');
  renameSync(tmp, descriptor);
  return descriptor;
}

export function removeDescriptor(dir: string, bdf: string): void {
  rmSync(simPaths(dir, bdf).descriptor, { force: true });
}

/** True when process `pid` exists (signal 0 probes without sending anything). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Descriptors in `dir` whose process is alive. Unreadable or stale ones are skipped (and reported). */
export function listDescriptors(dir: string): { live: SimDescriptor[]; stale: string[] } {
  const live: SimDescriptor[] = [];
  const stale: string[] = [];
  if (!existsSync(dir)) return { live, stale };
  for (const f of readdirSync(dir)) {
    if (!f.endsWith(DESCRIPTOR_SUFFIX)) continue;
    const p = join(dir, f);
    try {
      const d = JSON.parse(readFileSync(p, 'utf8')) as SimDescriptor;
      if (d.kind !== 'gsp-sim' || typeof d.pid !== 'number' || typeof d.path !== 'string') throw new Error('not an gsp-sim descriptor');
      if (pidAlive(d.pid) && existsSync(d.path)) live.push(d);
      else stale.push(p);
    } catch {
      stale.push(p);
    }
  }
  live.sort((a, b) => a.bdf.localeCompare(b.bdf));
  return { live, stale };
}
