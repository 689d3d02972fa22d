/**
 * Where a GPU's device front lives: `<dir>/front-<GPU BDF>.json` (its descriptor: pid, control socket, start time),
 * `<dir>/front-<GPU BDF>.ctl` (the control socket, mode 0600) and `<dir>/front-<GPU BDF>.log` (its log). The daemon
 * finds a running front again through the descriptor (the pid is checked alive), as buses find vgpu-sim processes.
 * Written atomically (temp file + rename); removed when the front stops cleanly.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface FrontDescriptor {
  kind: 'vgpud-front';
  gpu: string;
  pid: number;
  control: string;
  dir: string;
  startedAt: string;
}

export function frontPaths(dir: string, gpu: string): { descriptor: string; control: string; log: string } {
  return {
    descriptor: join(dir, `front-${gpu}.json`),
    control: join(dir, `front-${gpu}.ctl`),
    log: join(dir, `front-${gpu}.log`),
  };
}

export function writeFrontDescriptor(d: FrontDescriptor): void {
  mkdirSync(d.dir, { recursive: true });
  const { descriptor } = frontPaths(d.dir, d.gpu);
  const tmp = `${descriptor}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(d, null, 2) + '\n');
  renameSync(tmp, descriptor);
}

/** Remove the descriptor if it is still `pid`'s (a newer front may have written its own since). */
export function removeFrontDescriptor(dir: string, gpu: string, pid: number): void {
  const { descriptor } = frontPaths(dir, gpu);
  try {
    if ((JSON.parse(readFileSync(descriptor, 'utf8')) as FrontDescriptor).pid !== pid) return;
  } catch {
    return;
  }
  rmSync(descriptor, { force: true });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The descriptor of a running front for `gpu` in `dir`, or null (none, unreadable, or its process is gone). */
export function readFrontDescriptor(dir: string, gpu: string): FrontDescriptor | null {
  const { descriptor } = frontPaths(dir, gpu);
  if (!existsSync(descriptor)) return null;
  try {
    const d = JSON.parse(readFileSync(descriptor, 'utf8')) as FrontDescriptor;
    if (d.kind !== 'vgpud-front' || typeof d.pid !== 'number' || typeof d.control !== 'string') return null;
    return alive(d.pid) ? d : null;
  } catch {
    return null;
  }
}
