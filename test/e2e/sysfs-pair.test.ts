/**
 * Issue 17's acceptance, end to end with the REAL processes: one vgpud drives a process-mode simulated RTX 6000 Ada
 * and presents its sysfs tree through FUSE (`--sysfs-mount`); a second vgpud runs the Linux sysfs backend on that
 * root (`--sysfs-root`), as the operator's daemon on a real NVIDIA host would on /sys. Through the second daemon's
 * vgpuctl, and through a plain shell on the mounted tree:
 * - types, create, list, destroy, apply and assert work, and `cat …/nvidia/current_vgpu_type` shows what was set;
 * - a layout needing VFs on a PF without any enables them first (sriov_numvfs);
 * - refused writes — another type while one is selected, a full GPU, a bad id, a VF a VMM holds — carry the
 *   kernel's errno to the CLI and to the shell's `echo`;
 * - kill -9 of the second daemon in the middle of an apply, and its restart, finish the apply;
 * - a type changed behind its back is reported (status, metrics, log) and never written over, across a restart;
 *   `vgpuctl adopt` takes VFs it did not create over.
 * Skipped, with the reason, where FUSE cannot be mounted (not root, no /dev/fuse).
 */
import 'reflect-metadata';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fuseUnavailable } from '../helpers/fuse-available.js';
import { createHarness, ctl, GPU, socketHttp, startDaemon, waitEventOn, type Daemon, type Harness } from './helpers/daemon-harness.js';

interface Vgpu { id: string; vf: number; vfBdf: string; typeId: number; typeName: string; state: string; fb?: unknown; profileFbBytes?: string }
interface Unmanaged { vfBdf: string; reason: string; typeId: number; vgpuId?: string; expectedTypeId?: number }

const skip = fuseUnavailable();

/** A bash line in another process; bash's echo prints the write's strerror. */
function sh(line: string): Promise<{ code: number; out: string; err: string }> {
  return new Promise((r) => {
    execFile('bash', ['-c', line], (error, stdout, stderr) => r({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, out: stdout, err: stderr }));
  });
}

describe('a vgpud presenting sysfs through FUSE, driven by a second vgpud with the sysfs backend (real processes)', { skip }, () => {
  let h: Harness;
  let presenter: Daemon;
  let host: Daemon | undefined;
  let mnt = '';
  let dev = '';
  let hostSocket = '';
  let hostConfig = '';
  let hostState = '';
  let layouts = '';

  const ctl2 = (...args: string[]) => ctl(hostSocket, ...args);
  const json = async <T>(...args: string[]): Promise<T> => {
    const r = await ctl2(...args, '--json');
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.err}`);
    return JSON.parse(r.out) as T;
  };
  const list = async (): Promise<Vgpu[]> => (await json<{ vgpus: Vgpu[] }>('list')).vgpus;
  const vfBdf = (n: number): string => `0000:41:${String(Math.floor((4 + n) / 8)).padStart(2, '0')}.${(4 + n) % 8}`;
  const current = async (n: number): Promise<string> => (await sh(`cat ${dev}/${vfBdf(n)}/nvidia/current_vgpu_type`)).out;
  const startHost = async (): Promise<void> => {
    host = await startDaemon(['--config', hostConfig, '--socket', hostSocket, '--state-dir', hostState]);
  };
  const killHost = async (): Promise<void> => {
    host!.proc.kill('SIGKILL');
    await host!.exited;
  };

  before(async () => {
    h = await createHarness('vgpud-e2e-sysfs-');
    mnt = join(h.dir, 'sysfs');
    mkdirSync(mnt);
    dev = join(mnt, 'bus/pci/devices');
    presenter = await startDaemon(['--config', h.config, '--socket', h.socket, '--state-dir', h.state, '--sysfs-mount', mnt]);
    h.daemon = presenter;
    hostSocket = join(h.dir, 'host.sock');
    hostState = join(h.dir, 'host-state');
    hostConfig = join(h.dir, 'host.yaml');
    // The operator's daemon: no simulated GPU of its own, the sysfs backend on the presenter's tree.
    writeFileSync(hostConfig, ['logging: {format: human, level: info}', 'plugins:', '  hal-ada-lovelace: {devices: []}', `  linux-sysfs: {root: "${mnt}"}`, ''].join('\n'));
    layouts = join(h.dir, 'layouts.yaml');
    writeFileSync(layouts, [
      'version: v1', 'vgpu-configs:',
      '  two-24q:', '    - device-filter: "0x26B110DE"', '      devices: all', '      vgpu-devices: {RTX6000-Ada-24Q: 2}',
      '  four-12q:', '    - device-filter: "0x26B110DE"', '      devices: all', '      vgpu-devices: {RTX6000-Ada-12Q: 4}', '',
    ].join('\n'));
    await startHost();
  });
  after(async () => {
    if (host !== undefined && host.proc.exitCode === null && host.proc.signalCode === null) await killHost();
    // A clean stop of the presenter unmounts; whatever is left (a failed test), unmount lazily.
    if (presenter?.proc.exitCode === null) {
      presenter.proc.kill('SIGTERM');
      await presenter.exited;
    }
    await sh(`mountpoint -q ${mnt} && umount -l ${mnt}; true`);
    await h?.close();
  });

  it('the second daemon finds the presented GPU as on a real host, and lists its types from creatable_vgpu_types', async () => {
    const { gpus } = await json<{ gpus: { bdf: string; backend: string; halId: string; numVfs: number; totalVfs: number; fb?: unknown; firmwareVersion: string }[] }>('gpus');
    assert.deepEqual(gpus.map((g) => [g.bdf, g.backend, g.halId, g.numVfs, g.totalVfs, g.fb, g.firmwareVersion]),
      [[GPU, 'linux-sysfs', 'linux-sysfs', 32, 32, undefined, '570.144']]);
    const { types } = await json<{ types: { id: number; name: string; profileFbBytes?: string; available: number; maxInstances?: number }[] }>('types', '--gpu', GPU, '--all');
    assert.equal(types.length, 29, 'every type the presenter lists');
    const t24 = types.find((t) => t.name === 'NVIDIA RTX6000-Ada-24Q')!;
    assert.deepEqual([t24.id, t24.profileFbBytes, t24.available, t24.maxInstances], [949, String(24n << 30n), 32, undefined]);
    const ls = await sh(`ls ${dev} | head -3 && cat ${dev}/${GPU}/sriov_numvfs`);
    assert.equal(ls.out, `${GPU}\n${vfBdf(0)}\n${vfBdf(1)}\n32\n`);
  });

  it('create, list and destroy write the type id and 0, and cat on the mount shows them', async () => {
    const c = await json<{ vgpus: Vgpu[] }>('create', '--gpu', GPU, '--type', 'RTX6000-Ada-24Q');
    const v = c.vgpus[0]!;
    assert.deepEqual([v.vf, v.vfBdf, v.typeId, v.state, v.fb, v.profileFbBytes], [0, vfBdf(0), 949, 'ready', undefined, String(24n << 30n)]);
    assert.equal(await current(0), '949\n');
    assert.deepEqual((await list()).map((x) => x.id), [v.id]);
    const table = await ctl2('list');
    assert.match(table.out, /24\.0 GiB profile/);
    const d = await ctl2('destroy', v.id);
    assert.equal(d.code, 0, d.err);
    assert.equal(await current(0), '0\n');
    assert.deepEqual(await list(), []);
  });

  it('apply on a PF without VFs enables them first, then lays the GPU out; assert agrees; cat shows the types', async () => {
    const off = await sh(`echo 0 > ${dev}/${GPU}/sriov_numvfs && cat ${dev}/${GPU}/sriov_numvfs && ls ${dev}`);
    assert.equal(off.out, `0\n${GPU}\n`, 'the presenter disabled the VFs');
    const dry = await ctl2('apply', layouts, '-c', 'two-24q', '--dry-run');
    assert.match(dry.out, /\+ create 2 × RTX6000-Ada-24Q/);
    const r = await ctl2('apply', layouts, '-c', 'two-24q');
    assert.equal(r.code, 0, r.err);
    assert.equal((await sh(`cat ${dev}/${GPU}/sriov_numvfs`)).out, '32\n');
    assert.deepEqual([await current(0), await current(1), await current(2)], ['949\n', '949\n', '0\n']);
    const ok = await ctl2('assert', layouts, '-c', 'two-24q');
    assert.equal(ok.code, 0, ok.out);
    const not = await ctl2('assert', layouts, '-c', 'four-12q');
    assert.equal(not.code, 1);
  });

  it('refused writes carry the kernel\'s errno to vgpuctl and to a shell echo', async () => {
    // The GPU is full for 24Q (2 of 2): ENOSPC.
    const full = await ctl2('vf', vfBdf(2), 'current_vgpu_type', '949');
    assert.equal(full.code, 3);
    assert.match(full.err, /errno ENOSPC/);
    assert.match((await sh(`echo 949 > ${dev}/${vfBdf(2)}/nvidia/current_vgpu_type`)).err, /No space left on device/);
    // Another type while 24Q is active: EINVAL.
    const other = await ctl2('vf', vfBdf(2), 'current_vgpu_type', '947');
    assert.match(other.err, /errno EINVAL/);
    assert.match((await sh(`echo 947 > ${dev}/${vfBdf(2)}/nvidia/current_vgpu_type`)).err, /Invalid argument/);
    // A type id the GPU does not offer: ENODEV, also through create (the id goes to the kernel as it is).
    const bad = await ctl2('create', '--gpu', GPU, '--type', '12345');
    assert.equal(bad.code, 3);
    assert.match(bad.err, /errno ENODEV/);
    assert.match((await sh(`echo 12345 > ${dev}/${vfBdf(2)}/nvidia/current_vgpu_type`)).err, /No such device/);
    assert.match((await ctl2('vf', vfBdf(2), 'current_vgpu_type', 'abc')).err, /errno EINVAL/);
    // Creating past the GPU's room through create: refused before any write.
    const more = await ctl2('create', '--gpu', GPU, '--type', '24Q');
    assert.equal(more.code, 3);
    assert.equal(await current(2), '0\n', 'none of the refused writes changed the VF');
    assert.equal((await list()).length, 2);
  });

  it('a VF whose vGPU a VMM holds is EBUSY; a VF vgpud did not set is listed as unmanaged until adopted', async () => {
    const [a] = await list();
    // The presenter runs a vGPU on the first 24Q's VF (its VFIO device is open, as under a VM).
    const held = await ctl(h.socket, 'create', '--gpu', GPU, '--type', '949', '--vf', String(a!.vf));
    assert.equal(held.code, 0, held.err);
    const busy = await ctl2('destroy', a!.id);
    assert.equal(busy.code, 3);
    assert.match(busy.err, /errno EBUSY/);
    assert.match((await sh(`echo 0 > ${dev}/${a!.vfBdf}/nvidia/current_vgpu_type`)).err, /Device or resource busy/);
    const heldId = (JSON.parse((await ctl(h.socket, 'list', '--json')).out) as { vgpus: Vgpu[] }).vgpus[0]!.id;
    assert.equal((await ctl(h.socket, 'destroy', heldId)).code, 0);
    // The presenter's destroy kept the operator's selection (it was set before its vGPU): still 949 and ours.
    assert.equal(await current(a!.vf), '949\n');

    // A type set by hand on a free VF is not vgpud's: reported, never written, adopted on request.
    await json('destroy', a!.id);
    await sh(`echo 949 > ${dev}/${vfBdf(5)}/nvidia/current_vgpu_type`);
    const { vfs } = await json<{ vfs: Unmanaged[] }>('unmanaged');
    assert.deepEqual(vfs.map((u) => [u.vfBdf, u.reason, u.typeId]), [[vfBdf(5), 'not-adopted', 949]]);
    const adopted = await ctl2('adopt', vfBdf(5));
    assert.equal(adopted.code, 0, adopted.err);
    assert.match(adopted.out, new RegExp(`adopted ${vfBdf(5).replace(/\./g, '\\.')} as vgpu-\\d+`));
    assert.deepEqual((await list()).map((v) => v.vfBdf).sort(), [vfBdf(1), vfBdf(5)]);
    assert.deepEqual((await json<{ vfs: Unmanaged[] }>('unmanaged')).vfs, []);
  });

  it('kill -9 in the middle of an apply, then restart: the apply is finished', async () => {
    // Interrupt 2×24Q → 4×12Q after its first 12Q is set (chosen by the daemon's own event, not by time).
    const w = await waitEventOn(hostSocket, (e) => e.event === 'vgpu:state' && e.data.to === 'ready', 60_000);
    await w.ready;
    const pending = ctl2('apply', layouts, '-c', 'four-12q', '--request-id', 'relayout-1');
    await w.event;
    await killHost();
    const interrupted = await pending;
    assert.notEqual(interrupted.code, 0, 'the client saw its daemon go away');
    await startHost();
    const req = await json<{ request: { state: string; recovered?: { action: string } } }>('request', 'relayout-1');
    assert.deepEqual([req.request.state, req.request.recovered?.action], ['done', 'finished']);
    const vgpus = await list();
    assert.deepEqual(vgpus.map((v) => v.typeId), [947, 947, 947, 947]);
    for (const v of vgpus) assert.equal(await current(v.vf), '947\n');
    assert.equal((await ctl2('assert', layouts, '-c', 'four-12q')).code, 0);
    const typed = (await Promise.all(Array.from({ length: 32 }, (_, n) => current(n)))).filter((t) => t !== '0\n');
    assert.equal(typed.length, 4, 'nothing else on the GPU: no half-made or leftover type');
  });

  it('a type changed behind vgpud\'s back is reported (status, metrics, log) and left alone, also across a restart', async () => {
    const vgpus = await list();
    // Behind its back: every 12Q cleared by hand, and VF of the first one given 1Q.
    for (const v of vgpus) await sh(`echo 0 > ${dev}/${v.vfBdf}/nvidia/current_vgpu_type`);
    await sh(`echo 941 > ${dev}/${vgpus[0]!.vfBdf}/nvidia/current_vgpu_type`);
    const status = await json<{ unmanagedVfs: Unmanaged[] }>('status');
    const first = status.unmanagedVfs.find((u) => u.vfBdf === vgpus[0]!.vfBdf)!;
    assert.deepEqual([first.reason, first.typeId, first.vgpuId, first.expectedTypeId], ['changed', 941, vgpus[0]!.id, 947]);
    assert.equal(status.unmanagedVfs.filter((u) => u.reason === 'changed').length, 4);
    const metrics = await socketHttp(hostSocket, 'GET', '/metrics');
    assert.match(metrics.body, new RegExp(`vgpud_vf_type_changed\\{[^}]*vgpu="${vgpus[0]!.id}"[^}]*found_type="941"[^}]*\\} 1`));
    assert.match(metrics.body, /vgpud_unmanaged_vfs\{gpu="0000:41:00\.0",reason="changed"\} 4/);
    assert.match((await ctl2('status')).out, /changed behind vgpud: it set 947/);
    // The layout is not applied, and vgpud does not "fix" it: destroy refuses, nothing is written.
    assert.equal((await ctl2('assert', layouts, '-c', 'four-12q')).code, 1);
    const refuse = await ctl2('destroy', vgpus[0]!.id);
    assert.equal(refuse.code, 3);
    assert.match(refuse.err, /leaves it alone/);
    await killHost();
    await startHost();
    assert.match(host!.out(), /changed behind vgpud's back; left alone/, 'the restart logs it');
    assert.equal((await json<{ unmanagedVfs: Unmanaged[] }>('status')).unmanagedVfs.filter((u) => u.reason === 'changed').length, 4);
    assert.equal(await current(vgpus[0]!.vf), '941\n', 'never written over');
    // An operator settles it: adopt the 1Q as it is, forget the cleared ones.
    assert.equal((await ctl2('adopt', vgpus[0]!.vfBdf)).code, 0);
    for (const v of vgpus.slice(1)) assert.equal((await ctl2('destroy', v.id)).code, 0);
    assert.deepEqual((await list()).map((v) => [v.vfBdf, v.typeId]), [[vgpus[0]!.vfBdf, 941]]);
    assert.deepEqual((await json<{ unmanagedVfs: Unmanaged[] }>('status')).unmanagedVfs, []);
  });
});
