import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EventBusImpl } from '../../../core/event-bus.js';
import { MemoryLogger } from '../../../core/logging/memory-logger.js';
import { inProcessVgpuctl } from './in-process-vgpuctl.js';
import { buildApiApp, type ApiApp } from '../../../plugins/api/build-api-app.js';
import { FAKE_GPU, FakeVgpuService } from './fake-vgpu-service.js';

const dir = mkdtempSync(join(tmpdir(), 'vgpuctl-'));
const sock = join(dir, 'd.sock');

const ctl = (...argv: string[]): ReturnType<typeof inProcessVgpuctl> => inProcessVgpuctl(sock, ...argv);

describe('vgpuctl against a fake daemon', () => {
  let api: ApiApp;
  let svc: FakeVgpuService;
  before(async () => {
    const logger = new MemoryLogger();
    const bus = new EventBusImpl(logger);
    svc = new FakeVgpuService({ bus });
    api = await buildApiApp({ service: svc, bus, logger });
    await api.app.listen({ path: sock });
  });
  after(async () => {
    await api.app.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('prints an aligned types table and the same data with --json', async () => {
    const t = await ctl('types');
    assert.equal(t.code, 0, t.err);
    const lines = t.out.trim().split('\n');
    assert.match(lines[0]!, /^GPU\s+ID\s+TYPE\s+PROFILE\s+GUEST FB\s+MAX\s+MIXED\s+AVAILABLE$/);
    assert.equal(lines.length, 5);
    assert.equal(lines[0]!.indexOf('TYPE'), lines[3]!.indexOf('RTX6000-Ada-24Q'));
    // The profile is the nominal 24 GiB; the guest column shows what is left once the heap sits inside it.
    assert.match(lines[3]!, /RTX6000-Ada-24Q\s+24(\.0)? GiB\s+23\.9 GiB\s+2\s+2\s/);
    const j = await ctl('types', '--json');
    const types = JSON.parse(j.out).gpus[0].types;
    assert.equal(types.length, 4);
    assert.equal(types[2].profileFbBytes, String(24n << 30n));
    assert.equal(types[2].guestFbBytes, String((24n << 30n) - (128n << 20n)));
    // Both maxima: NVIDIA's equal-size one and its mixed-size one (8Q: 6 and 4 on a 48 GB board).
    assert.deepEqual([types[1].maxInstances, types[1].maxInstancesMixed], [6, 4]);
  });

  it('creates, lists, shows and destroys', async () => {
    const c = await ctl('create', '--gpu', FAKE_GPU, '--type', 'RTX6000-Ada-24Q', '--count', '2', '--json');
    assert.equal(c.code, 0, c.err);
    const ids = JSON.parse(c.out).vgpus.map((v: { id: string }) => v.id) as string[];
    assert.equal(ids.length, 2);
    const l = await ctl('list');
    for (const id of ids) assert.match(l.out, new RegExp(`^${id}\\s+${FAKE_GPU}`, 'm'));
    const s = await ctl('show', ids[0]!);
    assert.match(s.out, /type\s+RTX6000-Ada-24Q/);
    // The guest-visible size next to the profile's nominal one.
    assert.match(s.out, /^fb\s+23\.9 GiB guest-visible of a 24(\.0)? GiB profile, at offset 0x/m);
    const d = await ctl('destroy', ids[0]!);
    assert.equal(d.code, 0);
    assert.equal(svc.list().length, 1);
    await ctl('destroy', ids[1]!);
  });

  it('exit 2 for usage errors, without contacting the daemon', async () => {
    const missing = await ctl('create', '--gpu', FAKE_GPU);
    assert.equal(missing.code, 2);
    assert.match(missing.err, /--type/);
    const badBdf = await ctl('types', '--gpu', 'gpu0');
    assert.equal(badBdf.code, 2);
    assert.match(badBdf.err, /not a PCI address/);
    const badCount = await ctl('create', '--gpu', FAKE_GPU, '--type', '4Q', '--count', '0');
    assert.equal(badCount.code, 2);
    assert.equal((await ctl('frobnicate')).code, 2);
    assert.equal((await ctl('policy', FAKE_GPU, 'mixed')).code, 2);
    assert.equal(svc.createCalls, 2);
  });

  it('shows the vfio-user socket and VMM, and prints the VMM options for it (qemu-args)', async () => {
    const c = await ctl('create', '--gpu', FAKE_GPU, '--type', 'RTX6000-Ada-24Q', '--json');
    const id = JSON.parse(c.out).vgpus[0].id as string;
    const nope = await ctl('qemu-args', id);
    assert.equal(nope.code, 3);
    assert.match(nope.err, /not served through vfio-user/);
    const socket = "/run/vgpud/vgpud-vfio-user/0000:41:01.0.sock";
    svc.vgpus.get(id)!.vfioUser = { socket, attached: true, clientPid: 4242 };
    assert.match((await ctl('list')).out, new RegExp(`^${id}\\s.*\\s4242$`, 'm'));
    const s = await ctl('show', id);
    assert.match(s.out, new RegExp(`socket\\s+${socket.replace(/[.]/g, '\\.')}`));
    assert.match(s.out, /vmm\s+attached \(pid 4242\)/);
    const q = await ctl('qemu-args', id);
    assert.equal(q.code, 0, q.err);
    assert.equal(q.out.trim(), `-device '{"driver":"vfio-user-pci","socket":{"path":"${socket}","type":"unix"}}'`);
    assert.match(q.err, /share=on/);
    assert.equal((await ctl('qemu-args', id, '--cloud-hypervisor')).out.trim(), `--user-device socket=${socket}`);
    const x = await ctl('qemu-args', id, '--libvirt');
    assert.match(x.out, /<access mode='shared'\/>/);
    assert.ok(x.out.includes(`<qemu:arg value='{"driver":"vfio-user-pci","socket":{"path":"${socket}","type":"unix"}}'/>`), x.out);
    const j = JSON.parse((await ctl('qemu-args', id, '--json')).out) as { socket: string; qemu: string[] };
    assert.equal(j.socket, socket);
    await ctl('destroy', id);
  });

  it('exit 3 with the daemon\'s message and hint when it refuses', async () => {
    const r = await ctl('show', 'vgpu-404');
    assert.equal(r.code, 3);
    assert.match(r.err, /no vGPU vgpu-404 \(VGPU_ENOENT\)/);
    assert.match(r.err, /hint: /);
    const t = await ctl('create', '--gpu', FAKE_GPU, '--type', 'RTX6000-Ada-99Q');
    assert.equal(t.code, 3);
    assert.match(t.err, /VGPU_ENODEV_TYPE/);
  });

  it('exit 4 with how to start the daemon when nothing listens', async () => {
    const { code, err } = await inProcessVgpuctl(join(dir, 'none.sock'), 'gpus');
    assert.equal(code, 4);
    assert.match(err, /cannot reach vgpud .*none\.sock/);
    assert.match(err, /npm start/);
  });

  it('vf reads byte-exact and writes like echo', async () => {
    const r = await ctl('vf', '0000:41:01.0', 'creatable_vgpu_types');
    assert.equal(r.out, svc.readVfAttribute('0000:41:01.0', 'creatable_vgpu_types'));
    const w = await ctl('vf', '0000:41:01.0', 'current_vgpu_type', '3');
    assert.equal(w.code, 0, w.err);
    assert.deepEqual(svc.lastVfWrite, { vfBdf: '0000:41:01.0', value: '3\n' });
    assert.equal((await ctl('vf', '0000:41:01.0', 'vgpu_params')).code, 2);
  });

  it('apply --dry-run prints the plan; assert exits 1 until it is applied', async () => {
    const f = join(dir, 'layout.yaml');
    writeFileSync(f, 'version: v1\nvgpu-configs:\n  eight:\n    - devices: all\n      vgpu-devices: {RTX6000-Ada-8Q: 3}\n');
    const dry = await ctl('apply', f, '--dry-run');
    assert.equal(dry.code, 0, dry.err);
    assert.match(dry.out, /\+ create 3 × RTX6000-Ada-8Q/);
    assert.equal(svc.list().length, 0);
    assert.equal((await ctl('assert', f)).code, 1);
    assert.equal((await ctl('apply', f)).code, 0);
    const ok = await ctl('assert', f, '-c', 'eight');
    assert.equal(ok.code, 0);
    assert.match(ok.out, /is applied/);
    assert.equal((await ctl('assert', join(dir, 'missing.yaml'))).code, 2);
  });

  it('--help of every command shows an example and the exit codes', async () => {
    for (const cmd of ['gpus', 'types', 'create', 'list', 'show', 'destroy', 'apply', 'assert', 'logs', 'vf', 'status', 'policy', 'qemu-args']) {
      const h = await ctl(cmd, '--help');
      assert.equal(h.code, 0, cmd);
      assert.match(h.out, /Example:\n {2}vgpuctl /, cmd);
      assert.match(h.out, /4 {2}daemon failure/, cmd);
    }
  });
});
