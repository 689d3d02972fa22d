/**
 * systemd readiness, end to end: the REAL daemon under a NOTIFY_SOCKET tells the service manager READY=1 (with
 * its socket in STATUS=) once it serves, RELOADING=1 then READY=1 around a SIGHUP reload, and STOPPING=1 on SIGTERM —
 * what `Type=notify` in the unit relies on. The service manager's end is a Unix datagram socket held by python3
 * (Node cannot bind one), so the datagrams are the ones systemd would read.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { root, startDaemon, type Daemon } from './helpers/daemon-harness.js';
import { loadAddon } from '../../native/index.js';

const LISTENER = `
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print("listening", flush=True)
while True:
    print(s.recv(65536).decode().replace("\\n", "|"), flush=True)
`;

const python = spawnSync('python3', ['--version']).status === 0;
const addon = !(loadAddon() instanceof Error) && process.env.VGPUD_NO_NATIVE !== '1';
const skip = !python ? 'python3 not found (it holds the service manager\'s datagram socket)'
  : !addon ? 'sd_notify is sent by the native addon, which is not loaded here' : false;

/** Datagrams the fake service manager received, in order; `next(re)` waits for the first unseen one that matches. */
class ServiceManager {
  readonly seen: string[] = [];
  private cursor = 0;
  private waiters: Array<() => void> = [];
  constructor(readonly proc: ChildProcess) {
    let buf = '';
    proc.stdout!.on('data', (c: Buffer) => {
      buf += c.toString();
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        this.seen.push(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
      }
      for (const w of this.waiters.splice(0)) w();
    });
  }
  async next(re: RegExp): Promise<string> {
    for (;;) {
      while (this.cursor < this.seen.length) {
        const line = this.seen[this.cursor++]!;
        if (re.test(line)) return line;
      }
      await new Promise<void>((r) => this.waiters.push(r));
    }
  }
}

describe('sd_notify to a service manager', { skip }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'vgpud-notify-'));
  const notifySocket = join(dir, 'notify.sock');
  const socket = join(dir, 'vgpud.sock');
  const config = join(dir, 'vgpud.yaml');
  let sm: ServiceManager;
  let daemon: Daemon | undefined;

  before(async () => {
    sm = new ServiceManager(spawn('python3', ['-c', LISTENER, notifySocket], { stdio: ['ignore', 'pipe', 'inherit'] }));
    await sm.next(/^listening$/);
    writeFileSync(config, `logging: {format: human}\nplugins:\n  enabled: [fake-lifecycle, api]\n  paths: [${join(root, 'test/e2e/fixtures/fake-manager-plugin.ts')}]\n`);
  });
  after(() => {
    if (daemon?.proc.exitCode === null) daemon.proc.kill('SIGKILL');
    sm.proc.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  // A datagram that never comes fails the test by its timeout (sm.next waits on the listener, not on a clock).
  it('READY=1 with a status once serving, RELOADING/READY around SIGHUP, STOPPING=1 on SIGTERM', { timeout: 30_000 }, async () => {
    const saved = process.env.NOTIFY_SOCKET;
    process.env.NOTIFY_SOCKET = notifySocket; // the daemon inherits it, as from systemd
    try {
      daemon = await startDaemon(['--config', config, '--socket', socket, '--state-dir', join(dir, 'state')]);
    } finally {
      if (saved === undefined) delete process.env.NOTIFY_SOCKET;
      else process.env.NOTIFY_SOCKET = saved;
    }
    assert.equal(await sm.next(/READY=1/), 'READY=1');
    assert.equal(await sm.next(/^STATUS=/), `STATUS=serving on ${socket}`);

    daemon.proc.kill('SIGHUP');
    assert.match(await sm.next(/RELOADING=1/), /^RELOADING=1\|MONOTONIC_USEC=\d+$/);
    assert.equal(await sm.next(/READY=1/), 'READY=1', 'ready again after the reload');

    daemon.proc.kill('SIGTERM');
    assert.equal(await sm.next(/STOPPING=1/), 'STOPPING=1');
    assert.equal(await daemon.exited, 0);
    assert.ok(!sm.seen.some((l) => /ERRNO=|WATCHDOG=trigger/.test(l)), sm.seen.join('\n'));
  });
});
