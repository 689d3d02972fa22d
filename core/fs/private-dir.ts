/**
 * A directory that holds the daemon's private files (the state journal, per-vGPU logs): created 0700, and an
 * existing one must belong to the daemon's user and be writable by nobody else — whoever can write it can plant
 * links or swap files the daemon then trusts. A refusal is a VGPU_ECONFIG naming the command that fixes it.
 */
import { chmod, lstat, mkdir, stat } from 'node:fs/promises';
import { ErrorCode, VgpuError } from '../contracts/exceptions.js';
import { ownUid } from './own-file.js';

export interface PrivateDirOptions {
  /** What the dir is, for messages ("state dir", "vGPU log dir"). */
  what: string;
  /** Where the operator sets it (config key or flag), for the hint. */
  setting: string;
  /**
   * Refuse a symbolic link at `dir` itself (a dir the daemon makes inside another one: a planted link there would
   * move it elsewhere). The operator's own state dir may be a link they made on purpose.
   */
  noLink?: boolean;
  /** Tighten an existing dir of ours to 0700 if it lets group or others in at all (logs are tenant data). */
  tighten?: boolean;
}

export async function ensurePrivateDir(dir: string, o: PrivateDirOptions): Promise<void> {
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
  } catch (cause) {
    throw new VgpuError(ErrorCode.Config, `cannot create the ${o.what} ${dir}: ${(cause as Error).message}`, {
      hint: `pass a writable dir (${o.setting})`, details: { dir, problem: 'create' }, cause,
    });
  }
  const st = await (o.noLink === true ? lstat(dir) : stat(dir));
  if (st.isSymbolicLink()) {
    throw new VgpuError(ErrorCode.Config, `the ${o.what} ${dir} is a symbolic link; it is not followed`, {
      hint: `remove the link (rm ${dir}); the daemon creates the dir itself`, details: { dir },
    });
  }
  if (!st.isDirectory()) {
    throw new VgpuError(ErrorCode.Config, `the ${o.what} ${dir} is not a directory`, { hint: `remove it or choose another path (${o.setting})`, details: { dir } });
  }
  const uid = ownUid();
  if (uid !== undefined && st.uid !== uid) {
    throw new VgpuError(ErrorCode.Config, `the ${o.what} ${dir} belongs to uid ${st.uid}, not to the daemon's user (uid ${uid})`, {
      hint: `chown ${uid} ${dir} && chmod 0700 ${dir}, or choose a dir the daemon's user owns (${o.setting})`, details: { dir, owner: st.uid, uid },
    });
  }
  const loose = st.mode & (o.tighten === true ? 0o077 : 0o022);
  if (loose === 0) return;
  if (o.tighten === true) {
    await chmod(dir, 0o700);
    return;
  }
  const who = [(st.mode & 0o020) !== 0 ? 'its group' : '', (st.mode & 0o002) !== 0 ? 'other users' : ''].filter(Boolean).join(' and ');
  throw new VgpuError(ErrorCode.Config, `the ${o.what} ${dir} is writable by ${who} (mode 0${(st.mode & 0o777).toString(8)})`, {
    hint: `chmod 0700 ${dir}`, details: { dir, mode: `0${(st.mode & 0o777).toString(8)}` },
  });
}
