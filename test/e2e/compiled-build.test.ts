/**
 * End to end on the COMPILED build (dist/, what `npm ci` leaves and what `npm start` and the systemd units run):
 * `npm run build` if dist/ is stale, then the real bins with VGPUD_RUN_FROM=dist (they refuse to fall back to the
 * sources): vgpuctl --help; vgpud with --spawn-sim, which starts the compiled vgpu-sim process (GSP worker threads
 * included) in a temp dir; a vGPU created, listed and destroyed through vgpuctl; the simulator stopped with
 * `npm run sim:stop`'s module. Every spawn path and the data-file lookup (the default metadata catalogue) run as
 * compiled JavaScript here.
 */
import 'reflect-metadata';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { listDescriptors, pidAlive } from '../../hal/sim/device/sim-descriptor.js';
import { ctl, GPU, root, setRunFrom, startDaemon, writeSimConfig, type Daemon } from './helpers/daemon-harness.js';

function run(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; out: string; err: string }> {
  return new Promise((r) => {
    execFile(process.execPath, args, { cwd: root, env: { ...process.env, ...env } }, (error, out, err) => {
      r({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, out, err });
    });
  });
}

describe('the compiled build (dist/) runs the daemon, the simulator and the CLI', { timeout: 900_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'vgpud-compiled-'));
  const simDir = join(dir, 'sim');
  const socket = join(dir, 'vgpud.sock');
  const config = join(dir, 'vgpud.yaml');
  // Private HOME/XDG dirs: nothing the daemon derives from them may land in a shared default.
  const env = { HOME: dir, XDG_RUNTIME_DIR: dir, XDG_STATE_HOME: join(dir, 'xdg-state'), VGPUD_RUN_FROM: 'dist' };
  let daemon: Daemon | undefined;

  before(() => {
    // Build when stale (CI: `npm ci` already did, this is a no-op). Output inherited: a type error shows here.
    const b = spawnSync(process.execPath, [join(root, 'tools', 'build.mjs'), '--if-stale'], { cwd: root, stdio: 'inherit' });
    assert.equal(b.status, 0, 'npm run build failed');
    setRunFrom('dist');
    writeSimConfig(config, simDir);
  });
  after(async () => {
    if (daemon !== undefined && daemon.proc.exitCode === null && daemon.proc.signalCode === null) {
      daemon.proc.kill('SIGKILL');
      await daemon.exited;
    }
    for (const d of listDescriptors(simDir).live) if (pidAlive(d.pid)) process.kill(d.pid, 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('vgpuctl --help runs from dist/', async () => {
    const r = await run([join(root, 'bin', 'vgpuctl.mjs'), '--help'], env);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /^Usage: vgpuctl /m);
    assert.equal(r.err, '', 'no stale-build warning, no fallback');
  });

  it('vgpud --spawn-sim starts the compiled simulator and serves vgpuctl', async () => {
    daemon = await startDaemon(['--config', config, '--socket', socket, '--state-dir', join(dir, 'state'), '--spawn-sim'],
      { env: { ...process.env, ...env } });
    const [sim] = listDescriptors(simDir).live;
    assert.ok(sim !== undefined, 'the daemon published a running simulator');
    const cmdline = readFileSync(`/proc/${sim.pid}/cmdline`, 'utf8').split('\0');
    assert.ok(cmdline.includes(join(root, 'dist', 'hal', 'ada-lovelace', 'sim', 'vgpu-sim.js')), cmdline.join(' '));
    assert.ok(!cmdline.some((a) => a.includes('tsx')), `no TypeScript loader in the simulator: ${cmdline.join(' ')}`);

    const created = await ctl(socket, 'create', '--gpu', GPU, '--type', 'RTX6000-Ada-4Q', '--json');
    assert.equal(created.code, 0, created.err);
    const [v] = (JSON.parse(created.out) as { vgpus: { id: string; state: string }[] }).vgpus;
    assert.equal(v?.state, 'ready');
    const listed = await ctl(socket, 'list', '--json');
    assert.deepEqual((JSON.parse(listed.out) as { vgpus: { id: string }[] }).vgpus.map((x) => x.id), [v.id]);
    const destroyed = await ctl(socket, 'destroy', v.id);
    assert.equal(destroyed.code, 0, destroyed.err);

    daemon.proc.kill('SIGTERM');
    assert.equal(await daemon.exited, 0, daemon.out());
  });

  it('the simulator stops through sim:stop\'s module, compiled', async () => {
    const r = await run([join(root, 'bin', 'run.mjs'), 'bin/sim-stop', simDir], env);
    assert.equal(r.code, 0, r.out + r.err);
    assert.deepEqual(listDescriptors(simDir).live, []);
  });
});
