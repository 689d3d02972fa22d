/**
 * Opening files in a directory the daemon owns without trusting what sits there: a planted symbolic link, a FIFO,
 * a device node, a file of another user or a hard link to someone else's file is refused instead of being read,
 * appended to or truncated (the state journal and the per-vGPU log files use these).
 *
 * O_NOFOLLOW makes open(2) fail with ELOOP when the last path component is a symbolic link (open(2), Linux
 * man-pages); O_NONBLOCK keeps an open of a planted FIFO from blocking the event loop; fstat on the opened
 * descriptor (not a stat of the path) is what decides, so the check and the use see the same file.
 */
import { closeSync, constants, fchmodSync, fstatSync, openSync, type Stats } from 'node:fs';
import { open, unlink, type FileHandle } from 'node:fs/promises';

/** Why a file was refused. */
export type FileRefusal = 'symlink' | 'not-regular' | 'foreign-owner' | 'hard-linked' | 'too-large';

export class UnsafeFileError extends Error {
  constructor(readonly path: string, readonly refusal: FileRefusal, readonly detail: string) {
    super(`${path} ${detail}`);
    this.name = 'UnsafeFileError';
  }
}

export function isUnsafeFileError(e: unknown): e is UnsafeFileError {
  return e instanceof UnsafeFileError;
}

const READ_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;
const APPEND_FLAGS = constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW | constants.O_NONBLOCK;
const CREATE_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

/** The daemon's effective uid (undefined where the platform has none). */
export function ownUid(): number | undefined {
  return typeof process.geteuid === 'function' ? process.geteuid() : undefined;
}

/** Throw UnsafeFileError unless `st` is a regular file of ours with one name. */
export function assertOwnRegular(path: string, st: Stats): void {
  if (!st.isFile()) throw new UnsafeFileError(path, 'not-regular', 'is not a regular file');
  const uid = ownUid();
  if (uid !== undefined && st.uid !== uid) {
    throw new UnsafeFileError(path, 'foreign-owner', `belongs to uid ${st.uid}, not to the daemon's uid ${uid}`);
  }
  // A second name could be a hard link planted to a file elsewhere: writing "our" file would change that one.
  if (st.nlink !== 1) throw new UnsafeFileError(path, 'hard-linked', `has ${st.nlink} hard links`);
}

function loopToRefusal(path: string, e: unknown): never {
  if ((e as NodeJS.ErrnoException).code === 'ELOOP') throw new UnsafeFileError(path, 'symlink', 'is a symbolic link (not followed)');
  throw e;
}

/** Read a whole file of ours (at most `maxBytes`), never following a link. */
export async function readOwnFile(path: string, maxBytes: number): Promise<Buffer> {
  let fh: FileHandle;
  try {
    fh = await open(path, READ_FLAGS);
  } catch (e) {
    loopToRefusal(path, e);
  }
  try {
    const st = await fh.stat();
    assertOwnRegular(path, st);
    if (st.size > maxBytes) throw new UnsafeFileError(path, 'too-large', `is ${st.size} bytes, more than the ${maxBytes} a record can be`);
    return await fh.readFile();
  } finally {
    await fh.close();
  }
}

/**
 * Open a file of ours for appending (created 0600), never following a link; an existing file with looser
 * permissions is tightened to 0600. Returns the descriptor (synchronous: the log writer is).
 */
export function openOwnForAppend(path: string): number {
  let fd: number;
  try {
    fd = openSync(path, APPEND_FLAGS, 0o600);
  } catch (e) {
    loopToRefusal(path, e);
  }
  try {
    const st = fstatSync(fd);
    assertOwnRegular(path, st);
    if ((st.mode & 0o077) !== 0) fchmodSync(fd, 0o600);
    return fd;
  } catch (e) {
    closeSync(fd);
    throw e;
  }
}

/**
 * Create `path` afresh (0600) for writing: O_EXCL never opens what is already there, so a planted link or file
 * is never written through. An entry already there (a temp file a crash left, or a planted one) is unlinked —
 * unlink removes a link itself, not its target — and the create is tried once more.
 */
export async function createOwnFile(path: string): Promise<FileHandle> {
  try {
    return await open(path, CREATE_FLAGS, 0o600);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  }
  await unlink(path).catch(() => {});
  return open(path, CREATE_FLAGS, 0o600);
}
