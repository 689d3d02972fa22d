/**
 * Before listening on the control socket: a socket file nobody answers on is left over from a crashed daemon and
 * is removed; a socket somebody answers on belongs to a running daemon and we refuse to start (deleting it would
 * silently cut that daemon off from its clients); anything that is not a socket is never deleted.
 */
import { connect } from 'node:net';
import { lstat, mkdir, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { ErrorCode, VgpuError } from '../../core/contracts/exceptions.js';

/** true = something accepted a connection; false = refused (stale). */
export function socketAnswers(path: string, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ path });
    const timer = setTimeout(() => { s.destroy(); resolve(true); }, timeoutMs); // a hung listener is still a listener
    s.once('connect', () => { clearTimeout(timer); s.destroy(); resolve(true); });
    s.once('error', () => { clearTimeout(timer); resolve(false); });
  });
}

export async function prepareSocketPath(path: string): Promise<{ removedStale: boolean }> {
  await mkdir(dirname(path), { recursive: true, mode: 0o750 });
  let st;
  try {
    st = await lstat(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { removedStale: false };
    throw e;
  }
  if (!st.isSocket()) {
    throw new VgpuError(ErrorCode.Busy, `${path} exists and is not a socket`, {
      hint: 'choose another --socket path or remove that file yourself; vgpud never deletes it', details: { path },
    });
  }
  if (await socketAnswers(path)) {
    throw new VgpuError(ErrorCode.Busy, `another daemon is already answering on ${path}`, {
      hint: 'stop it first (systemctl stop vgpud, or SIGTERM its pid), or start this one with another --socket',
      details: { path },
    });
  }
  await unlink(path);
  return { removedStale: true };
}
