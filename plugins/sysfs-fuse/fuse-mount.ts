/**
 * Mount and unmount a FUSE filesystem served by this process, with no libfuse and no fusermount3: open /dev/fuse,
 * and let util-linux `mount` make the mount(2) call with that descriptor passed as its fd 3 (the kernel takes the
 * `fd=` option in the mounting process's context: fs/fuse/inode.c). `-i` keeps mount(8) from running a
 * /sbin/mount.fuse* helper, so nothing but the syscall happens. This needs CAP_SYS_ADMIN (root); an unprivileged
 * mount would need fusermount3, which hands the descriptor back over a Unix socket (SCM_RIGHTS) — Node cannot
 * receive descriptors (docs/reference/fuse-protocol.md).
 *
 * A mount whose server died fails every access with ENOTCONN until it is unmounted, so a stale mount of ours at the
 * same place (a `kill -9` of the last daemon) is unmounted before mounting again, and unmount falls back to a lazy
 * unmount plus an abort of the connection (/sys/fs/fuse/connections/<dev>/abort), which ends the reader's read.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { ErrorCode, VgpuError } from '../../core/contracts/exceptions.js';

/** The mount's filesystem type as /proc/self/mountinfo shows it ("fuse.<subtype>"). */
export const FUSE_FSTYPE = 'fuse.vgpud';

export interface FuseMount {
  fd: number;
  dir: string;
  /** The connection's number (the mount's device minor): names /sys/fs/fuse/connections/<n>. */
  connection: number | undefined;
}

function run(cmd: string, args: string[], fds: number[] = []): Promise<{ code: number | null; err: string }> {
  return new Promise((resolvePromise) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe', ...fds] });
    let err = '';
    p.stderr!.on('data', (c: Buffer) => { err += c.toString(); });
    p.on('error', (e) => resolvePromise({ code: -1, err: e.message }));
    p.on('close', (code) => resolvePromise({ code, err: err.trim() }));
  });
}

/**
 * Our mount at `dir`, from /proc/self/mountinfo (mount point with octal escapes decoded; "major:minor" of the
 * connection), or undefined. Never stat(2) the mount point from the serving thread: the kernel would wait for a
 * reply only this thread can send.
 */
export function ourMountAt(dir: string): { connection: number } | undefined {
  const want = resolve(dir);
  let text: string;
  try {
    text = readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return undefined;
  }
  let found: { connection: number } | undefined;
  for (const line of text.split('\n')) {
    const [left, right] = line.split(' - ');
    if (left === undefined || right === undefined) continue;
    const fields = left.split(' ');
    const mountPoint = fields[4]?.replace(/\\(\d{3})/g, (_m, o: string) => String.fromCharCode(Number.parseInt(o, 8)));
    if (mountPoint === want && right.split(' ')[0] === FUSE_FSTYPE) found = { connection: Number(fields[2]?.split(':')[1] ?? Number.NaN) };
  }
  return found;
}

export async function mountFuse(dir: string, opts: { source?: string } = {}): Promise<FuseMount> {
  const abs = resolve(dir);
  if (ourMountAt(abs) === undefined && (!existsSync(abs) || !statSync(abs).isDirectory())) {
    throw new VgpuError(ErrorCode.Config, `the sysfs mount point ${abs} is not a directory`, {
      hint: 'create the directory first (mkdir -p), or pass another with --sysfs-mount', details: { dir: abs },
    });
  }
  const stale = ourMountAt(abs);
  // A mount of an earlier daemon (killed with -9): ENOTCONN for every access until unmounted.
  if (stale !== undefined && !(await unmountPath(abs))) await abortConnection(stale.connection);
  let fd: number;
  try {
    fd = openSync('/dev/fuse', 'r+');
  } catch (cause) {
    throw new VgpuError(ErrorCode.UnsupportedDevice, `cannot open /dev/fuse: ${(cause as Error).message}`, {
      hint: 'load the fuse module (modprobe fuse) and run vgpud as root to present the sysfs tree', cause,
    });
  }
  const uid = process.getuid?.() ?? 0;
  const gid = process.getgid?.() ?? 0;
  const options = [
    'fd=3', 'rootmode=40000', `user_id=${uid}`, `group_id=${gid}`, 'default_permissions', 'allow_other', 'nosuid', 'nodev', 'noexec',
  ].join(',');
  const r = await run('mount', ['-i', '-t', FUSE_FSTYPE, '-o', options, opts.source ?? 'vgpud-sysfs', abs], [fd]);
  if (r.code !== 0) {
    closeSync(fd);
    throw new VgpuError(ErrorCode.PermissionDenied, `mounting the sysfs tree at ${abs} failed: ${r.err || `mount exited ${String(r.code)}`}`, {
      hint: 'presenting the tree needs root (CAP_SYS_ADMIN) and util-linux mount; see docs/real-hosts.md', details: { dir: abs },
    });
  }
  return { fd, dir: abs, connection: ourMountAt(abs)?.connection };
}

/**
 * Unmount and make sure the connection ends (so a reader blocked in read(2) gets ENODEV): a plain unmount ends it;
 * a busy mount (a shell inside it, an open file) is unmounted lazily and its connection aborted. 'lazy' means the
 * abort could not be written: the connection lives on until its last open file closes.
 */
export async function unmountFuse(m: Pick<FuseMount, 'dir' | 'connection'>): Promise<'unmounted' | 'aborted' | 'lazy'> {
  if (await unmountPath(m.dir)) return 'unmounted';
  return (await abortConnection(m.connection)) ? 'aborted' : 'lazy';
}

/** true: unmounted for good; false: only lazily (the connection lives while files are open). */
async function unmountPath(dir: string): Promise<boolean> {
  if ((await run('umount', [dir])).code === 0) return true;
  await run('umount', ['-l', dir]);
  return false;
}

/**
 * Write /sys/fs/fuse/connections/<n>/abort (Linux Documentation/filesystems/fuse.rst), mounting the fusectl
 * filesystem there first when the system has not (systemd usually has). Resolves true when the abort was written.
 */
export async function abortConnection(connection: number | undefined): Promise<boolean> {
  if (connection === undefined || !Number.isInteger(connection)) return false;
  const dir = '/sys/fs/fuse/connections';
  const path = `${dir}/${connection}/abort`;
  if (!existsSync(path)) await run('mount', ['-t', 'fusectl', 'fusectl', dir]);
  try {
    writeFileSync(path, '1');
    return true;
  } catch {
    return false;
  }
}
