/**
 * The sysfs backend's only way to the kernel: read a file, read a link, list a directory, write a file. Reads are
 * synchronous (sysfs attributes are generated in memory and never block on a real host; the VgpuService contract's
 * queries are synchronous), writes asynchronous (a `current_vgpu_type` store may take the driver a while, and the
 * event loop must not wait for it). Tests replace it to play the kernel's refusals (a plain file cannot answer
 * EBUSY); everything else of the backend runs unchanged over a fake tree of plain files.
 *
 * Writes open the existing file write-only, without O_CREAT or O_TRUNC (a sysfs attribute is never created or
 * truncated), and hand the whole text to one write(2), as `echo TEXT > attr` does; the kernel's errno comes back as
 * the error's `code`.
 */
import { closeSync, openSync, readdirSync, readFileSync, readlinkSync, constants } from 'node:fs';
import { open } from 'node:fs/promises';

export interface SysfsIo {
  /** The file's text, or undefined when it does not exist (ENOENT/ENOTDIR); other errors are thrown. */
  readText(path: string): string | undefined;
  /** The link's target, or undefined when there is no such link. */
  readLink(path: string): string | undefined;
  /** Entry names of a directory (sorted), or [] when it does not exist. */
  list(dir: string): string[];
  /** One write(2) of `text`; rejects with the kernel's errno in `code`. */
  writeText(path: string, text: string): Promise<void>;
}

const absent = (e: unknown): boolean => {
  const code = (e as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR';
};

export const nodeSysfsIo: SysfsIo = {
  readText(path) {
    try {
      return readFileSync(path, 'latin1');
    } catch (e) {
      if (absent(e)) return undefined;
      throw e;
    }
  },
  readLink(path) {
    try {
      return readlinkSync(path);
    } catch (e) {
      if (absent(e) || (e as NodeJS.ErrnoException).code === 'EINVAL') return undefined;
      throw e;
    }
  },
  list(dir) {
    try {
      return readdirSync(dir).sort();
    } catch (e) {
      if (absent(e)) return [];
      throw e;
    }
  },
  async writeText(path, text) {
    const fh = await open(path, constants.O_WRONLY);
    try {
      const buf = Buffer.from(text, 'latin1');
      await fh.write(buf, 0, buf.length, null);
    } finally {
      await fh.close();
    }
  },
};

/** A synchronous existence check some callers need (a directory, e.g. a VF's `nvidia/` group). */
export function isDir(path: string): boolean {
  try {
    closeSync(openSync(path, constants.O_RDONLY | constants.O_DIRECTORY));
    return true;
  } catch {
    return false;
  }
}
