/**
 * Whether this machine can mount a FUSE filesystem the way the sysfs presenter does (root, /dev/fuse, util-linux
 * mount): undefined when it can, else the reason, which the tests pass to `skip` so a skipped test says why.
 */
import { spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';

let cached: string | undefined | null = null;

export function fuseUnavailable(): string | undefined {
  if (cached !== null) return cached;
  cached = probe();
  return cached;
}

function probe(): string | undefined {
  if (process.platform !== 'linux') return `FUSE tests need Linux (this is ${process.platform})`;
  if (process.getuid?.() !== 0) return 'FUSE tests need root: mounting needs CAP_SYS_ADMIN';
  try {
    accessSync('/dev/fuse', constants.R_OK | constants.W_OK);
  } catch {
    return 'FUSE tests need /dev/fuse (modprobe fuse)';
  }
  const m = spawnSync('mount', ['--version'], { encoding: 'utf8' });
  if (m.status !== 0) return 'FUSE tests need util-linux mount';
  return undefined;
}
