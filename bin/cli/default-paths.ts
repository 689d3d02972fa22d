/**
 * Where the control socket and the state dir are when nobody says: system paths as root (what the systemd unit
 * creates), per-user paths otherwise, so `npm start` works without privileges.
 */
import { homedir } from 'node:os';
import { join } from 'node:path';

export function defaultSocketPath(env: NodeJS.ProcessEnv = process.env, uid = process.getuid?.() ?? 0): string {
  if (uid === 0) return '/run/vgpud/vgpud.sock';
  if (env.XDG_RUNTIME_DIR) return join(env.XDG_RUNTIME_DIR, 'vgpud.sock');
  return `/tmp/vgpud-${uid}.sock`;
}

export function defaultStateDir(env: NodeJS.ProcessEnv = process.env, uid = process.getuid?.() ?? 0): string {
  if (uid === 0) return '/var/lib/vgpud';
  return join(env.XDG_STATE_HOME ?? join(homedir(), '.local', 'state'), 'vgpud');
}

/** The socket vgpuctl talks to: --socket, then $VGPUD_SOCKET, then the default. */
export function clientSocketPath(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  return flag ?? env.VGPUD_SOCKET ?? defaultSocketPath(env);
}
