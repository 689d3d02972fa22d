// The sysfs presenter over a real FUSE mount, on the mock HAL: the tree is laid out like /sys/bus/pci/devices, a
// shell's `cat` and `echo` behave as on a real host (partial reads, "949\n", the errno the shell prints), and every
// answer is the VgpuService's own text or errno. Skipped, with the reason, where FUSE cannot be mounted.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EventBus } from '../../../core/contracts/events.js';
import type { VgpuService } from '../../../core/contracts/vgpu-service.js';
import { TOKENS } from '../../../core/tokens.js';
import { createMockHalPlugin } from '../../../hal/mock/mock-hal-plugin.js';
import { MockHal } from '../../../hal/mock/mock-hal.js';
import { createLifecyclePlugin } from '../../../plugins/lifecycle/lifecycle-plugin.js';
import { createRouterPlugin } from '../../../plugins/router/router-plugin.js';
import { createScrubPlugin } from '../../../plugins/scrub/scrub-plugin.js';
import { createSysfsFusePlugin } from '../../../plugins/sysfs-fuse/sysfs-fuse-plugin.js';
import { FakePluginTasks } from '../../helpers/fake-plugin-task.js';
import { fuseUnavailable } from '../../helpers/fuse-available.js';
import { createTestContainer, type TestContainer } from '../../helpers/test-container.js';
import { BDF, answerManagerControls, metadata, readMeta } from '../lifecycle/lifecycle-rig.js';

const skip = fuseUnavailable();

/**
 * Run a bash line in another process (never sync: this process serves the mount). bash, because its `echo` prints
 * the write's strerror (dash's says "I/O error" whatever the errno).
 */
function sh(line: string): Promise<{ code: number; out: string; err: string }> {
  return new Promise((r) => {
    execFile('bash', ['-c', line], (error, stdout, stderr) => r({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, out: stdout, err: stderr }));
  });
}

describe('the sysfs tree through FUSE', { skip }, () => {
  let dir: string;
  let tc: TestContainer;
  let service: VgpuService;
  let dev: string;
  let vf0: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'vgpud-fuse-'));
    const mock = new MockHal({ devices: [{ bdf: BDF, totalVfs: 4 }], rpcTimeoutMs: 2000 });
    tc = await createTestContainer({
      plugins: [
        createMockHalPlugin(mock), createScrubPlugin(),
        createLifecyclePlugin({ init: { metadataDir: '/meta', manager: () => ({ readFile: readMeta(metadata()) }) } }),
        createRouterPlugin(), createSysfsFusePlugin(),
      ],
      config: { plugins: { 'sysfs-fuse': { mount: dir } } },
      start: false,
    });
    tc.container.get<EventBus>(TOKENS.EventBus).on('gpu:probed', (e) => {
      const gpu = mock.gpu(e.gpu);
      answerManagerControls(gpu);
      FakePluginTasks.install(gpu);
    });
    await tc.host.start();
    service = tc.container.get<VgpuService>(TOKENS.VgpuManager);
    dev = join(dir, 'bus/pci/devices');
    vf0 = service.vfs!(BDF)[0]!.bdf;
  });
  after(async () => {
    if (process.env.DEBUG_FUSE) for (const l of tc.logger.lines) if (l.level !== 'debug') console.log(l.level, l.message, JSON.stringify(l.meta).slice(0, 300));
    await tc?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('lays the PF and its VFs out like /sys/bus/pci/devices, with the kernel\'s attribute formats and links', async () => {
    const vfs = service.vfs!(BDF).map((v) => v.bdf);
    assert.equal((await sh(`ls ${dev}`)).out.split('\n').filter(Boolean).join(' '), [BDF, ...vfs].sort().join(' '));
    const pf = await sh(`cd ${dev}/${BDF} && cat vendor device class sriov_totalvfs sriov_numvfs && readlink driver virtfn0 && ls`);
    assert.equal(pf.code, 0, pf.err);
    const lines = pf.out.split('\n');
    assert.deepEqual(lines.slice(0, 7), ['0x10de', '0x26b1', '0x030200', '4', '4', '../../drivers/nvidia', `../${vfs[0]}`]);
    assert.match(pf.out, /virtfn3\n/);
    const vf = await sh(`cd ${dev}/${vf0} && readlink physfn && basename "$(readlink -f driver)" && ls nvidia && stat -c '%a %s' nvidia/current_vgpu_type nvidia/creatable_vgpu_types`);
    assert.equal(vf.out, `../${BDF}\nnvidia\ncreatable_vgpu_types\ncurrent_vgpu_type\n644 4096\n444 4096\n`);
    assert.equal((await sh(`cat ${dir}/module/nvidia/version`)).out, '570.144\n');
  });

  it('cat shows the service\'s text byte-exact; partial reads at offsets see the same bytes', async () => {
    const text = service.readVfAttribute(vf0, 'creatable_vgpu_types');
    assert.equal((await sh(`cat ${dev}/${vf0}/nvidia/creatable_vgpu_types`)).out, text);
    const part = await sh(`dd if=${dev}/${vf0}/nvidia/creatable_vgpu_types bs=7 skip=2 count=3 status=none`);
    assert.equal(part.out, text.slice(14, 35));
    assert.equal((await sh(`cat ${dev}/${vf0}/nvidia/current_vgpu_type`)).out, '0\n');
  });

  it('echo 949 selects the type; the shell sees the kernel\'s errno for a refused write', async () => {
    const ok = await sh(`echo 949 > ${dev}/${vf0}/nvidia/current_vgpu_type`);
    assert.equal(ok.code, 0, ok.err);
    assert.equal(service.readVfAttribute(vf0, 'current_vgpu_type'), '949\n');
    assert.equal((await sh(`cat ${dev}/${vf0}/nvidia/current_vgpu_type`)).out, '949\n');
    const vf1 = service.vfs!(BDF)[1]!.bdf;
    const other = await sh(`echo 941 > ${dev}/${vf1}/nvidia/current_vgpu_type`);
    assert.notEqual(other.code, 0);
    assert.match(other.err, /Invalid argument/, 'another type while one is active: EINVAL');
    const bad = await sh(`echo 12345 > ${dev}/${vf1}/nvidia/current_vgpu_type`);
    assert.match(bad.err, /No such device/, 'an id the GPU does not offer: ENODEV');
    const text = await sh(`printf 'x' > ${dev}/${vf1}/nvidia/current_vgpu_type`);
    assert.match(text.err, /Invalid argument/);
    const ro = await sh(`echo 1 > ${dev}/${vf1}/nvidia/creatable_vgpu_types`);
    assert.match(ro.err, /Permission denied/, 'a read-only attribute refuses the open, as kernfs does for root');
    const mk = await sh(`touch ${dev}/${vf1}/nvidia/new_file`);
    assert.notEqual(mk.code, 0);
    assert.ok(await sh(`echo 0 > ${dev}/${vf0}/nvidia/current_vgpu_type`).then((r) => r.code === 0));
    assert.equal(service.readVfAttribute(vf0, 'current_vgpu_type'), '0\n');
  });

  it('a VF whose vGPU runs is busy: EBUSY to the shell, as for a VF a VMM holds', async () => {
    const v = await service.create({ gpu: BDF, type: 949, vf: 2 });
    const r = await sh(`echo 0 > ${dev}/${v.vfBdf}/nvidia/current_vgpu_type`);
    assert.match(r.err, /Device or resource busy/);
    await service.destroy(v.id);
  });

  it('sriov_numvfs follows the kernel\'s rules: a different non-zero count is EBUSY; 0 removes the VFs; the count brings them back', async () => {
    const busy = await sh(`echo 2 > ${dev}/${BDF}/sriov_numvfs`);
    assert.match(busy.err, /Device or resource busy/);
    const range = await sh(`echo 9 > ${dev}/${BDF}/sriov_numvfs`);
    assert.match(range.err, /Numerical result out of range/);
    assert.equal((await sh(`echo 0 > ${dev}/${BDF}/sriov_numvfs && cat ${dev}/${BDF}/sriov_numvfs && ls ${dev}`)).out, `0\n${BDF}\n`);
    assert.equal((await sh(`echo 0x4 > ${dev}/${BDF}/sriov_numvfs && ls ${dev} | wc -l`)).out.trim(), '5', 'base 0: "0x4" is 4');
  });
});

describe('stopping the presenter while a process holds a file of the tree open', { skip }, () => {
  it('unmounts lazily and aborts the connection: the stop completes, the holder gets ENOTCONN, no mount is left', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vgpud-fuse-busy-'));
    const mock = new MockHal({ devices: [{ bdf: BDF, totalVfs: 2 }], rpcTimeoutMs: 2000 });
    const tc = await createTestContainer({
      plugins: [
        createMockHalPlugin(mock), createScrubPlugin(),
        createLifecyclePlugin({ init: { metadataDir: '/meta', manager: () => ({ readFile: readMeta(metadata()) }) } }),
        createRouterPlugin(), createSysfsFusePlugin(),
      ],
      config: { plugins: { 'sysfs-fuse': { mount: dir } } },
      start: false,
    });
    tc.container.get<EventBus>(TOKENS.EventBus).on('gpu:probed', (e) => { answerManagerControls(mock.gpu(e.gpu)); FakePluginTasks.install(mock.gpu(e.gpu)); });
    await tc.host.start();
    const file = join(dir, 'bus/pci/devices', BDF, 'sriov_totalvfs');
    // The holder opens the file, says so, and waits on its stdin; then reads the file again through its descriptor.
    const holder = spawn('bash', ['-c', `exec 3< "${file}"; echo ready; read -r _; cat <&3 2>&1; echo "exit $?"`], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    await new Promise<void>((r) => holder.stdout.on('data', (c: Buffer) => { out += c.toString(); if (out.includes('ready')) r(); }));
    const stopped = await tc.stop();
    assert.deepEqual(stopped.failed, []);
    assert.ok(tc.logger.lines.some((l) => /busy: unmounted lazily/.test(l.message)), 'the busy unmount is reported');
    const done = new Promise<void>((r) => holder.on('close', () => r()));
    holder.stdin.end('go\n');
    await done;
    assert.match(out, /Transport endpoint is not connected|Software caused connection abort|No such device/);
    assert.equal(readFileSync('/proc/self/mountinfo', 'utf8').includes(dir), false, 'nothing is left mounted');
    rmSync(dir, { recursive: true, force: true });
  });
});
