/**
 * A real, tiny filesystem for "the state dir is full" tests: a tmpfs of a few hundred KiB mounted on a temp dir
 * (tests run as root on CI and the dev machines; elsewhere `mount` fails and the caller skips, saying why).
 * `fill()` writes a filler file until the filesystem answers ENOSPC; `unfill()` deletes it.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface SmallFs {
  dir: string;
  fill(): void;
  unfill(): void;
  unmount(): void;
}

/** Mount a tmpfs of `kib` KiB (on `at`, created 0700, or a new temp dir); a reason string when that is impossible here. */
export function mountSmallTmpfs(kib: number, at?: string): SmallFs | string {
  const dir = at ?? mkdtempSync(join(tmpdir(), 'vgpud-smallfs-'));
  if (at !== undefined) mkdirSync(at, { recursive: true, mode: 0o700 });
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${kib}k,mode=0700`, 'tmpfs', dir], { stdio: 'pipe' });
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    return `cannot mount a small tmpfs here (needs root and mount(8)): ${(e as Error).message.split('\n')[0]}`;
  }
  const filler = join(dir, 'filler');
  return {
    dir,
    fill() {
      const fd = openSync(filler, 'a');
      const chunk = Buffer.alloc(4096, 0x5a);
      try {
        for (;;) writeSync(fd, chunk);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e;
      } finally {
        closeSync(fd);
      }
    },
    unfill() {
      unlinkSync(filler);
    },
    unmount() {
      try {
        execFileSync('umount', [dir], { stdio: 'pipe' });
      } catch {
        // Something still has a file open there: detach it now, the kernel frees it when the last one closes.
        execFileSync('umount', ['-l', dir], { stdio: 'pipe' });
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
