/**
 * End to end: the device front outlives the daemon. The REAL vgpud on a process-mode simulated RTX 6000 Ada, the
 * REAL vgpuctl, a per-GPU device front process the daemon started, and a VMM stand-in (hand-packed vfio-user on a
 * raw socket, in this process or a child) that shares guest RAM, maps BAR1 and makes guest RPCs.
 *
 * kill -9 of vgpud while the VMM is attached: the mapping still reaches the FB, MMIO is answered, RPCs and their
 * interrupts keep coming, what needs the manager (reset) fails with EAGAIN; the restarted daemon finds the same
 * front and reports the attached VMM. kill -9 of the VMM: the front notices, the vGPU stays, a new VMM attaches.
 * A clean daemon stop with no VMM attached lets the front exit by itself.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fdOpsAvailable, loadFdOps } from '../../native/fd-ops.js';
import { ERROR } from '../helpers/raw-vfio-user.js';
import { readable, VfioUserGuest } from '../helpers/vfio-user-guest.js';
import { createHarness, GPU, type Harness } from './helpers/daemon-harness.js';

const skip = fdOpsAvailable() ? false : 'the native addon is not built (npm run build:native)';
const EXT = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
const HOLDER = new URL(`./fixtures/vfio-user-holder${EXT}`, import.meta.url).pathname;

interface Vgpu { id: string; state: string; fb: { offset: string; size: string }; vfioUser?: { socket: string; attached: boolean; clientPid?: number } }

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Resolve when process `pid` (not our child) exits: a pidfd becomes readable. */
function exitOf(pid: number): Promise<void> {
  const ops = loadFdOps();
  const fd = ops.pidfdOpen(pid);
  return readable(fd).finally(() => ops.closeFd(fd));
}

describe('the device front outlives vgpud (real processes, process-mode simulated GPU)', { skip }, () => {
  let h: Harness;
  let vfioDir: string;
  let id: string;
  let socket: string;
  let frontPid = 0;
  let guest: VfioUserGuest | undefined;
  const ramFile = (): string => join(h.dir, 'guest-ram');

  const show = async (): Promise<Vgpu> => {
    const r = await h.ctl('show', id, '--json');
    assert.equal(r.code, 0, r.err);
    return (JSON.parse(r.out) as { vgpu: Vgpu }).vgpu;
  };
  /** Ask the daemon until `pred` holds (each ask is a vgpuctl process: no timer in the loop). */
  const showUntil = async (what: string, pred: (v: Vgpu) => boolean): Promise<Vgpu> => {
    for (let i = 0; i < 200; i++) {
      const v = await show();
      if (pred(v)) return v;
    }
    throw new Error(`vgpuctl show never saw ${what}`);
  };
  const descriptorPid = (): number => (JSON.parse(readFileSync(join(vfioDir, `front-${GPU}.json`), 'utf8')) as { pid: number }).pid;

  before(async () => {
    h = await createHarness('vgpud-e2e-vfu-');
    vfioDir = join(dirname(h.socket), 'vgpud-vfio-user');
    writeFileSync(join(h.dir, 'guest-ram'), Buffer.alloc(1 << 20));
    await h.start();
  });
  after(async () => {
    guest?.close();
    if (frontPid !== 0 && alive(frontPid)) process.kill(frontPid, 'SIGKILL');
    await h?.close();
  });

  it('serves a created vGPU from its own front process; the socket is in vgpuctl show --json', async () => {
    const c = await h.ctl('create', '--gpu', GPU, '--type', '1Q', '--json');
    assert.equal(c.code, 0, c.err);
    id = (JSON.parse(c.out) as { vgpus: Vgpu[] }).vgpus[0]!.id;
    const v = await showUntil('a socket', (x) => x.vfioUser !== undefined);
    socket = v.vfioUser!.socket;
    assert.equal(dirname(socket), vfioDir, 'next to the daemon socket by default');
    frontPid = descriptorPid();
    assert.notEqual(frontPid, h.daemon!.proc.pid, 'the front is not the daemon');
    assert.ok(alive(frontPid));
    const q = await h.ctl('qemu-args', id);
    assert.ok(q.out.includes(`"path":"${socket}"`), q.out);

    guest = await VfioUserGuest.attach(socket, ramFile());
    assert.equal(await guest.rpcSetup(), 0);
    assert.equal(await guest.echo('hello from the guest'), 'hello from the guest');
    const bar1 = await guest.mapBar1();
    bar1.write('written through BAR1', 0);
    assert.equal(h.sim.fbWindow(BigInt(v.fb.offset), 20).toString(), 'written through BAR1');
    const s = await showUntil('the VMM attached', (x) => x.vfioUser?.attached === true);
    assert.equal(s.vfioUser!.clientPid, process.pid);
  });

  it('kill -9 vgpud: the VMM keeps its mapping, MMIO, RPCs and interrupts; reset answers EAGAIN; the restarted daemon finds it attached', async () => {
    const g = guest!;
    h.daemon!.proc.kill('SIGKILL');
    await h.daemon!.exited;
    assert.ok(alive(frontPid), 'the front survived');
    assert.equal(await g.boot0(), 0x192000a1, 'MMIO answered');
    assert.equal(await g.echo('while vgpud is down'), 'while vgpud is down', 'RPC answered with an interrupt');
    const bar1 = await g.mapBar1();
    bar1.write('still mapped', 100);
    const reset = await g.peer.call(13);
    assert.ok((reset.flags & ERROR) !== 0, 'reset needs the manager');
    assert.equal(reset.errorNo, 11, 'EAGAIN');

    await h.start();
    const s = await showUntil('the VMM attached after the restart', (x) => x.vfioUser?.attached === true && x.state === 'ready');
    assert.equal(s.vfioUser!.clientPid, process.pid);
    assert.equal(descriptorPid(), frontPid, 'the same front');
    assert.equal(h.sim.fbWindow(BigInt(s.fb.offset) + 100n, 12).toString(), 'still mapped');
    assert.equal(await g.echo('after the restart'), 'after the restart');
    assert.equal((await g.peer.call(13)).flags & ERROR, 0, 'reset works again');
  });

  it('kill -9 of the VMM: the front notices, the vGPU stays, a new VMM attaches', async () => {
    guest!.close();
    guest = undefined;
    await showUntil('no VMM', (x) => x.vfioUser?.attached === false);
    const child = spawn(process.execPath, [...(EXT === '.ts' ? ['--import', 'tsx'] : []), HOLDER, socket], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((r) => child.stdout.once('data', () => r()));
    const held = await showUntil('the holder attached', (x) => x.vfioUser?.clientPid === child.pid);
    assert.equal(held.vfioUser!.attached, true);
    const refused = await h.ctl('destroy', id);
    assert.equal(refused.code, 3);
    assert.match(refused.err, new RegExp(`pid ${child.pid}`));
    child.kill('SIGKILL');
    const gone = await showUntil('the VMM gone', (x) => x.vfioUser?.attached === false);
    assert.equal(gone.state, 'ready', 'the vGPU stays');
    assert.ok(alive(frontPid));
    guest = await VfioUserGuest.attach(socket, ramFile());
    assert.equal(await guest.rpcSetup(), 0);
    assert.equal(await guest.echo('a new VMM'), 'a new VMM');
  });

  it('a clean daemon stop with no VMM attached: the front exits by itself and removes what it made', async () => {
    guest!.close();
    guest = undefined;
    await showUntil('no VMM', (x) => x.vfioUser?.attached === false);
    const frontGone = exitOf(frontPid);
    h.daemon!.proc.kill('SIGTERM');
    await h.daemon!.exited;
    await frontGone;
    assert.ok(!existsSync(join(vfioDir, `front-${GPU}.json`)), 'descriptor removed');
    assert.deepEqual(readdirSync(vfioDir).filter((f) => f.endsWith('.sock') || f.endsWith('.ctl')), [], 'sockets removed');
    // A daemon started again starts a new front and serves the vGPU again.
    await h.start();
    const v = await showUntil('a socket again', (x) => x.vfioUser !== undefined);
    assert.equal(v.vfioUser!.socket, socket);
    frontPid = descriptorPid();
    guest = await VfioUserGuest.attach(socket, ramFile());
    assert.equal(await guest.boot0(), 0x192000a1);
  });
});
