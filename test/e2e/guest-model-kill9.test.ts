/**
 * kill -9, both ends (issue 11, "Bad input, faults"), with the guest model as the VMM and guest driver:
 *
 * - kill -9 of vgpud while the guest is attached and writing FB: the guest's BAR1 mapping keeps reaching the FB,
 *   its next MMIO is answered, its doorbell RPCs keep being answered with MSI-X interrupts, and the restarted
 *   daemon lists the vGPU as attached to this VMM.
 * - kill -9 of the VMM (a separate process): the server notices (the daemon shows no VMM), drops what the client
 *   passed (the serving process holds no descriptor more than before it came — QEMU docs/interop/vfio-user.rst
 *   "Client Disconnection"), the vGPU stays with its FB ("the device state should otherwise be retained"), and a
 *   new VMM attaches and works.
 *
 * The real vgpud and vgpu-sim, started as the README starts them on private paths; the FB checked in the
 * simulated device's own region file.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { Harness } from './helpers/daemon-harness.js';
import { createVgpus, deviceBoot0, deviceFb, fdCount, peerPid, show, showUntil, socketOf, startRig, type VgpuJson } from './helpers/guest-model-rig.js';
import { fdOpsAvailable, loadFdOps, WATCH_READABLE } from '../../native/fd-ops.js';
import { VmmDevice } from '../guest-model/guest/vmm-device.js';
import { VgpuGuest } from '../guest-model/guest/vgpu-guest.js';

const skip = fdOpsAvailable() ? false : 'the native addon is not built (npm run build:native)';
const EXT = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
const HOLDER = new URL(`./fixtures/guest-model-holder${EXT}`, import.meta.url).pathname;
const PAGE = 4096;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Resolve when process `pid` has exited (its pidfd turns readable: no polling). */
function exited(pid: number): Promise<void> {
  const ops = loadFdOps();
  const fd = ops.pidfdOpen(pid);
  return new Promise((resolve) => {
    const w = ops.watch(fd, (flags) => {
      if ((flags & WATCH_READABLE) === 0) return;
      w.close();
      ops.closeFd(fd);
      resolve();
    });
    w.start(true, false);
  });
}

describe('guest model: kill -9 of vgpud and of the VMM', { skip, timeout: 600_000 }, () => {
  let h: Harness;
  let vgpu: VgpuJson;
  let socket: string;
  let front = 0;
  let dev: VmmDevice | undefined;
  let guest: VgpuGuest | undefined;

  before(async () => {
    h = await startRig('vgpud-e2e-gkill-');
    [vgpu] = await createVgpus(h, 'RTX6000-Ada-1Q', 1) as [VgpuJson];
    vgpu = await show(h, vgpu.id);
    socket = await socketOf(h, vgpu.id);
  });
  after(async () => {
    guest?.close();
    dev?.close();
    await h?.close();
  });

  it('kill -9 of vgpud while the guest writes FB: mapping, MMIO and interrupts carry on; the restarted daemon lists the vGPU attached', async () => {
    dev = await VmmDevice.attach(socket, { dir: h.dir });
    guest = await VgpuGuest.start(dev);
    front = peerPid(dev.client.conn.fd);
    assert.notEqual(front, h.daemon!.proc.pid, 'the device is served outside the daemon');
    assert.equal((await guest.rpcSetup()).result, 0);
    const fbOff = BigInt(vgpu.fb.offset);

    // The guest writes page after page through its mapping, yielding between pages; vgpud dies meanwhile.
    let stop = false;
    let pages = 0;
    const writer = (async () => {
      while (!stop) {
        const at = BigInt((pages % 4096) * PAGE);
        const b = Buffer.alloc(PAGE, (pages % 251) + 1);
        b.writeUInt32LE(pages, 0);
        dev!.bar1.writeMapped(at, b);
        pages++;
        await new Promise((r) => setImmediate(r));
      }
    })();
    const daemon = h.daemon!;
    daemon.proc.kill('SIGKILL');
    await daemon.exited;
    const atKill = pages;
    // Keep writing until the writer has gone on at least a few pages past the kill, then stop it.
    while (pages < atKill + 8) await new Promise((r) => setImmediate(r));
    stop = true;
    await writer;
    for (const n of [atKill, pages - 1]) {
      const at = BigInt((n % 4096) * PAGE);
      assert.equal(deviceFb(h, fbOff + at, 4).readUInt32LE(0), n, `page ${n}, written after the kill, is in the device's FB`);
    }
    assert.ok(alive(front), 'the process serving the vGPU survived');

    assert.equal(await guest.boot0(), deviceBoot0(h), 'the next MMIO is answered');
    const a = await guest.rpc(1, Buffer.from('while vgpud is down'));
    assert.equal(a.payload.toString(), 'while vgpud is down');
    assert.ok(a.interrupts >= 1, 'the answer came with its MSI-X interrupt');

    await h.start();
    const v = await showUntil(h, vgpu.id, 'the vGPU attached to this VMM', (x) => x.vfioUser?.attached === true && x.state === 'ready');
    assert.equal(v.vfioUser!.clientPid, process.pid);
    const list = await h.ctl('list');
    assert.equal(list.code, 0, list.err);
    assert.match(list.out, new RegExp(`${vgpu.id}\\b.*\\b${process.pid}\\b`), 'vgpuctl list names the VMM\'s pid');
    assert.equal(await guest.echo('after the restart'), 'after the restart');
    assert.equal(deviceFb(h, fbOff + BigInt((atKill % 4096) * PAGE), 4).readUInt32LE(0), atKill, 'the FB written during the outage is intact');
    assert.deepEqual(dev.client.violations, []);
  });

  it('kill -9 of the VMM: the server notices and lets go of its descriptors, the vGPU stays with its FB, a new VMM attaches', async () => {
    guest!.close();
    guest = undefined;
    dev!.close();
    dev = undefined;
    await showUntil(h, vgpu.id, 'no VMM attached', (x) => x.vfioUser?.attached === false);
    const fdsIdle = fdCount(front);

    const marker = `held by a VMM that will be killed (${Date.now().toString(36)})`;
    const child = spawn(process.execPath, [...(EXT === '.ts' ? ['--import', 'tsx'] : []), HOLDER, socket, h.dir, marker], { stdio: ['ignore', 'pipe', 'inherit'] });
    const line = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (c: Buffer) => {
        out += c.toString();
        if (out.includes('\n')) resolve(out);
      });
      child.once('exit', (code) => reject(new Error(`the VMM process exited (${code}) before attaching`)));
    });
    assert.match(line, new RegExp(`attached ${child.pid}`));
    const held = await showUntil(h, vgpu.id, 'the VMM process attached', (x) => x.vfioUser?.clientPid === child.pid);
    assert.equal(held.vfioUser!.attached, true);
    assert.ok(fdCount(front) > fdsIdle, 'the attached VMM\'s descriptors (guest RAM, eventfds) are held by the server');

    const gone = exited(child.pid!);
    child.kill('SIGKILL');
    await gone;
    const after = await showUntil(h, vgpu.id, 'the server noticing the VMM is gone', (x) => x.vfioUser?.attached === false);
    assert.equal(after.state, 'ready', 'the vGPU stays');
    assert.equal(fdCount(front), fdsIdle, 'the dead VMM\'s guest RAM and eventfds were closed');
    assert.ok(deviceFb(h, BigInt(vgpu.fb.offset), marker.length).toString() === marker, 'the device state is retained: the FB the VMM wrote is there');

    dev = await VmmDevice.attach(socket, { dir: h.dir });
    guest = await VgpuGuest.start(dev);
    assert.equal(front, peerPid(dev.client.conn.fd), 'the same serving process');
    assert.equal(dev.bar1.readMapped(0n, marker.length).toString(), marker, 'the new VMM maps the same FB');
    assert.equal((await guest.rpcSetup()).result, 0);
    assert.equal(await guest.echo('a new VMM'), 'a new VMM');
    assert.deepEqual(dev.client.violations, []);
  });
});
