/**
 * An operator's first hour, end to end with the real binaries and no config file:
 *
 *  1. The README's path: `npm start` (the built-in config: one simulated RTX 6000 Ada whose vgpu-sim it starts,
 *     the per-user default socket and state dir), `vgpuctl` finding that socket by itself, stopping the daemon by
 *     SIGTERM to npm (what a service manager or `kill` sends; npm must not leave the daemon behind), then
 *     `npm run sim:stop`.
 *  2. The acceptance: the example in `vgpud --help` (`vgpud --socket S --state-dir D`, no config) starts
 *     its simulator, serves `vgpuctl create --count 2` of RTX6000-Ada-24Q, survives kill -9 with both vGPUs kept
 *     (restart: same ids, re-attached), and destroys them.
 *
 * Nothing touches the real defaults: HOME, XDG_RUNTIME_DIR and XDG_STATE_HOME point into a temp dir and
 * $VGPUD_SIM_DIR names a private simulator dir. The default socket of root is the system one (/run/vgpud), so a
 * test running as root starts the npm path as the unprivileged user `nobody`, as an operator trying it would be.
 */
import 'reflect-metadata';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { listDescriptors, pidAlive } from '../../hal/sim/device/sim-descriptor.js';
import { ensureDefaultMetadata } from '../../metadata/default-metadata.js';
import { GPU, VGPUD, ctl, root, startDaemon, vgpuctl, type Daemon } from './helpers/daemon-harness.js';

const NOBODY = 65534;
const asRoot = process.getuid?.() === 0;
/** The user the operator's commands run as: ourselves, or `nobody` when we are root. */
const user = asRoot ? { uid: NOBODY, gid: NOBODY } : {};
/** As `nobody` the checkout must be readable (a clone under /root is not): otherwise the npm path cannot run here. */
const npmSkip = asRoot && spawnSync(process.execPath, ['-e', 'require("fs").accessSync(process.argv[1], 4)', join(root, 'package.json')], { uid: NOBODY, gid: NOBODY }).status !== 0
  ? 'as root the README path runs as the unprivileged user nobody (root\'s default socket is the system one), and nobody cannot read this checkout'
  : false;

function run(cmd: string, args: string[], opts: { env: NodeJS.ProcessEnv; uid?: number; gid?: number }): Promise<{ code: number; out: string; err: string }> {
  return new Promise((r) => {
    execFile(cmd, args, { cwd: root, ...opts }, (error, stdout, stderr) => {
      r({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, out: stdout, err: stderr });
    });
  });
}

/** A private operator environment: home, runtime and state dirs, simulator dir; owned by the operator. */
function operatorEnv(dir: string, simDir: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    HOME: join(dir, 'home'), XDG_RUNTIME_DIR: join(dir, 'run'), XDG_STATE_HOME: join(dir, 'state'), VGPUD_SIM_DIR: simDir,
    npm_config_update_notifier: 'false', npm_config_fund: 'false', npm_config_audit: 'false',
  };
  // Inherited settings that would point the commands elsewhere than the defaults under test.
  for (const k of ['VGPUD_SOCKET', 'NOTIFY_SOCKET', 'npm_config_prefix', 'npm_config_cache']) delete env[k];
  for (const d of [dir, env.HOME!, env.XDG_RUNTIME_DIR!, env.XDG_STATE_HOME!, simDir]) {
    mkdirSync(d, { recursive: true, mode: 0o700 });
    if (asRoot) chownSync(d, NOBODY, NOBODY);
  }
  return env;
}

interface Vgpu { id: string; state: string; vf: number; fb: { offset: string } }

describe('an operator\'s first hour: npm start, bare vgpud (real processes, no config file)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vgpud-first-hour-'));
  const shm = mkdtempSync('/dev/shm/vgpud-first-hour-');
  const started: Daemon[] = [];
  const simPids = (simDir: string): number[] => listDescriptors(simDir).live.map((d) => d.pid);

  before(() => {
    if (asRoot) chownSync(dir, NOBODY, NOBODY);
    if (asRoot) chownSync(shm, NOBODY, NOBODY);
    // metadata/out is built on demand; as `nobody` the daemon could not write into the checkout.
    ensureDefaultMetadata();
  });
  after(() => {
    for (const d of started) {
      if (d.proc.exitCode === null && d.proc.signalCode === null) d.proc.kill('SIGKILL');
      // A daemon npm failed to stop is no child of ours: find it by the pid it printed.
      const pid = Number(d.out().match(/vgpud ready \(pid (\d+)\)/)?.[1] ?? 0);
      if (pid > 0 && pidAlive(pid)) process.kill(pid, 'SIGKILL');
    }
    for (const sub of ['npm', 'bare']) for (const pid of simPids(join(shm, sub))) process.kill(pid, 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    rmSync(shm, { recursive: true, force: true });
  });

  it('npm start (README): default socket and state dir, vgpuctl finds it; SIGTERM to npm stops the daemon; npm run sim:stop', { skip: npmSkip }, async () => {
    const simDir = join(shm, 'npm');
    const env = operatorEnv(join(dir, 'npm'), simDir);
    const npm = await startDaemon([], { command: ['npm', 'start'], env, ...user });
    started.push(npm);
    const socket = join(env.XDG_RUNTIME_DIR!, 'vgpud.sock');
    assert.match(npm.out(), new RegExp(`socket: +${socket.replace(/[.]/g, '\\.')}\\n`), 'the per-user default socket');
    assert.match(npm.out(), new RegExp(`state dir: +${join(env.XDG_STATE_HOME!, 'vgpud').replace(/[.]/g, '\\.')}\\n`));
    assert.match(npm.out(), /started simulated GPU \(vgpu-sim, detached\)/);
    const daemonPid = Number(npm.out().match(/vgpud ready \(pid (\d+)\)/)![1]);
    assert.notEqual(daemonPid, npm.proc.pid, 'npm runs the daemon as its child');
    const [simPid] = simPids(simDir);
    assert.ok(simPid !== undefined, 'the simulator runs in $VGPUD_SIM_DIR');

    const types = await vgpuctl(['types'], { env, ...user });
    assert.equal(types.code, 0, types.err);
    assert.match(types.out, /RTX6000-Ada-24Q/);

    npm.proc.kill('SIGTERM');
    assert.equal(await npm.exited, 0, npm.out());
    assert.match(npm.out(), /shutting down; vGPUs are left as they are/, 'the daemon got the signal');
    assert.equal(pidAlive(daemonPid), false, 'no daemon left behind npm');
    assert.equal(existsSync(socket), false, 'the socket is removed');
    assert.equal((await vgpuctl(['status'], { env, ...user })).code, 4, 'nobody answers any more');
    assert.equal(pidAlive(simPid), true, 'the simulated GPU outlives the daemon, like a card');

    const stop = await run('npm', ['run', 'sim:stop'], { env, ...user });
    assert.equal(stop.code, 0, stop.out + stop.err);
    assert.match(stop.out, new RegExp(`stopped vgpu-sim ${GPU} \\(pid ${simPid}\\)`));
    assert.equal(pidAlive(simPid), false);
    assert.deepEqual(simPids(simDir), []);
  });

  it('acceptance: the example of `vgpud --help` with no config starts its simulator, creates 2×24Q, keeps them across kill -9, destroys them', async () => {
    const help = await run(process.execPath, [VGPUD, '--help'], { env: process.env });
    assert.equal(help.code, 0);
    const example = help.out.match(/Example:\n +(vgpud .*)\n/)?.[1];
    assert.equal(example, 'vgpud --socket /tmp/vgpud.sock --state-dir /tmp/vgpud-state', 'the help shows one example');
    const simDir = join(shm, 'bare');
    const env = operatorEnv(join(dir, 'bare'), simDir);
    const socket = join(dir, 'bare', 'vgpud.sock');
    const state = join(dir, 'bare', 'vgpud-state');
    // The example's own flags, with private paths (as root: the paths are explicit, no system default is used).
    const args = example!.split(' ').slice(1).map((a) => (a === '/tmp/vgpud.sock' ? socket : a === '/tmp/vgpud-state' ? state : a));
    assert.deepEqual(args, ['--socket', socket, '--state-dir', state]);

    let d = await startDaemon(args, { env });
    started.push(d);
    assert.match(d.out(), /started simulated GPU \(vgpu-sim, detached\)/, 'bare vgpud starts the simulated GPU it needs');
    const c = await ctl(socket, 'create', '--gpu', GPU, '--type', 'RTX6000-Ada-24Q', '--count', '2', '--json');
    assert.equal(c.code, 0, c.err);
    const made = (JSON.parse(c.out) as { vgpus: Vgpu[] }).vgpus;
    assert.equal(made.length, 2);

    d.proc.kill('SIGKILL');
    await d.exited;
    d = await startDaemon(args, { env });
    started.push(d);
    assert.match(d.out(), /simulated GPU already running/, 'the restart attaches to the running simulator');
    assert.equal(d.out().match(/re-attached a running vGPU/g)?.length, 2, d.out());
    const l = await ctl(socket, 'list', '--json');
    assert.equal(l.code, 0, l.err);
    const kept = (JSON.parse(l.out) as { vgpus: Vgpu[] }).vgpus;
    assert.deepEqual(kept.map((v) => [v.id, v.vf, v.fb.offset, v.state]), made.map((v) => [v.id, v.vf, v.fb.offset, 'ready']));

    for (const v of made) assert.equal((await ctl(socket, 'destroy', v.id)).code, 0);
    assert.deepEqual((JSON.parse((await ctl(socket, 'list', '--json')).out) as { vgpus: Vgpu[] }).vgpus, []);
    d.proc.kill('SIGTERM');
    assert.equal(await d.exited, 0);
    const stop = await run('npm', ['run', 'sim:stop'], { env });
    assert.equal(stop.code, 0, stop.out + stop.err);
    assert.deepEqual(simPids(simDir), []);
  });
});
