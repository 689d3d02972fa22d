/**
 * End to end: the REAL `bin/vgpud.mjs` process on a temp socket and state dir, driven by the REAL
 * `bin/vgpuctl.mjs` process.
 *
 * Suite 1 loads the in-memory fake manager through `plugins.paths` (an out-of-tree plugin, as an operator would):
 * it tests the daemon process, socket, signals and CLI, not the vGPU manager.
 * The built-in plugins on a process-mode simulated GPU (restarts, kill -9, load) are in vgpud-sim.test.ts.
 */
import 'reflect-metadata';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VGPUD, ctl, root, startDaemon, type Daemon } from './helpers/daemon-harness.js';


describe('vgpud + vgpuctl processes (fake manager via plugins.paths)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vgpud-e2e-'));
  const socket = join(dir, 'vgpud.sock');
  const config = join(dir, 'vgpud.yaml');
  let daemon: Daemon;

  before(async () => {
    writeFileSync(config, `logging: {format: human}\nplugins:\n  enabled: [fake-lifecycle, api, metrics]\n  paths: [${join(root, 'test/e2e/fixtures/fake-manager-plugin.ts')}]\n`);
    daemon = await startDaemon(['--config', config, '--socket', socket, '--state-dir', join(dir, 'state')]);
  });
  after(async () => {
    if (daemon.proc.exitCode === null) daemon.proc.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('prints its socket and a status table when ready', () => {
    assert.match(daemon.out(), new RegExp(`socket: +${socket.replace(/[.]/g, '\\.')}`));
    assert.match(daemon.out(), /^0000:41:00\.0 +NVIDIA RTX 6000 Ada Generation +ready/m);
  });

  it('gpus, types and status answer over the socket', async () => {
    const g = await ctl(socket, 'gpus', '--json');
    assert.equal(g.code, 0, g.err);
    assert.equal(JSON.parse(g.out).gpus[0].bdf, '0000:41:00.0');
    const t = await ctl(socket, 'types', '--gpu', '0000:41:00.0');
    assert.match(t.out, /RTX6000-Ada-24Q/);
    const s = await ctl(socket, 'status', '--json');
    const names = JSON.parse(s.out).plugins.map((p: { name: string }) => p.name) as string[];
    // The api starts after the service it requires, metrics after the api it requires.
    assert.ok(names.indexOf('fake-lifecycle') < names.indexOf('api') && names.indexOf('api') < names.indexOf('metrics'), names.join());
  });

  it('creates and destroys through the daemon, and /metrics shows the vGPU', async () => {
    const c = await ctl(socket, 'create', '--gpu', '0000:41:00.0', '--type', '24Q', '--json');
    assert.equal(c.code, 0, c.err);
    const id = JSON.parse(c.out).vgpus[0].id as string;
    const m = await new Promise<string>((r, j) => {
      import('node:http').then(({ get }) => get({ socketPath: socket, path: '/metrics' }, (res) => {
        let b = '';
        res.on('data', (x: Buffer) => { b += x.toString(); });
        res.on('end', () => r(b));
      }).on('error', j), j);
    });
    assert.match(m, new RegExp(`vgpud_vgpu_info\\{vgpu="${id}".*state="ready".*\\} 1`));
    // The fake's 24Q guest: its 24 GiB profile less the 128 MiB heap that lives inside it.
    assert.match(m, new RegExp(`vgpud_gpu_fb_bytes\\{gpu="0000:41:00.0",kind="used"\\} ${(24n << 30n) - (128n << 20n)}`));
    assert.equal((await ctl(socket, 'destroy', id)).code, 0);
  });

  it('bad requests: clear messages and the documented exit codes', async () => {
    const usage = await ctl(socket, 'create', '--gpu', 'nope', '--type', '24Q');
    assert.equal(usage.code, 2);
    assert.match(usage.err, /not a PCI address/);
    const refused = await ctl(socket, 'create', '--gpu', '0000:99:00.0', '--type', '24Q');
    assert.equal(refused.code, 3);
    assert.match(refused.err, /no GPU 0000:99:00\.0/);
    const unreachable = await ctl(join(dir, 'nobody.sock'), 'gpus');
    assert.equal(unreachable.code, 4);
    assert.match(unreachable.err, /cannot reach vgpud/);
  });

  it('a second daemon on the same socket refuses to start and leaves the first one serving', async () => {
    const second = spawn(process.execPath, [VGPUD, '--config', config, '--socket', socket, '--state-dir', join(dir, 'state2')],
      { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    second.stderr!.on('data', (c: Buffer) => { err += c.toString(); });
    const code = await new Promise<number | null>((r) => second.once('exit', r));
    assert.equal(code, 1);
    assert.match(err, /another daemon is already answering/);
    assert.equal((await ctl(socket, 'gpus')).code, 0);
  });

  it('SIGTERM: exit code 0 and the socket is gone', async () => {
    daemon.proc.kill('SIGTERM');
    assert.equal(await daemon.exited, 0);
    assert.equal(existsSync(socket), false);
  });

  it('a stale socket file (nobody answering) is replaced at start', async () => {
    const stale = join(dir, 'stale.sock');
    // What a killed daemon leaves: a socket file with nobody behind it (a child listens, then dies by SIGKILL).
    const child = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(stale)}, () => console.log('up'))`],
      { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((r) => child.stdout!.once('data', () => r()));
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    assert.equal(existsSync(stale), true);
    const d = await startDaemon(['--config', config, '--socket', stale, '--state-dir', join(dir, 'state3')]);
    assert.equal((await ctl(stale, 'gpus')).code, 0);
    d.proc.kill('SIGTERM');
    assert.equal(await d.exited, 0);
  });
});
