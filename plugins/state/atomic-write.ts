/**
 * Crash-safe file replacement: write a temp file in the same directory, fsync it, rename it over the target,
 * fsync the directory. After a crash at any point the target holds either the old or the new bytes, never a mix;
 * a leftover temp file is garbage the loader ignores and removes.
 *
 * The temp file is created with O_EXCL|O_NOFOLLOW (core/fs/own-file.ts): a link planted under the temp name is
 * removed, never written through. rename(2) replaces a link at the target itself rather than following it. Any
 * failure after the temp file exists (ENOSPC while writing, a failed fsync or rename) removes it again, so a full
 * filesystem does not fill up with empty temp files.
 */
import { open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { createOwnFile } from '../../core/fs/own-file.js';

export const TEMP_SUFFIX = '.tmp';

export function tempPathFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}${TEMP_SUFFIX}`);
}

export async function atomicWriteFile(path: string, data: string | Uint8Array): Promise<void> {
  const tmp = tempPathFor(path);
  const fh = await createOwnFile(tmp);
  try {
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (e) {
    await unlink(tmp).catch(() => {});
    throw e;
  }
  await fsyncDir(dirname(path));
}

/** Make a rename or unlink in `dir` durable. */
export async function fsyncDir(dir: string): Promise<void> {
  const dh = await open(dir, 'r');
  try {
    await dh.sync();
  } finally {
    await dh.close();
  }
}
