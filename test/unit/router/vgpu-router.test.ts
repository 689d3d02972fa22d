// The router presents several backends as one VgpuService: GPUs side by side with the backend that manages each,
// every call on a GPU, vGPU or VF sent to the backend that has it, and the config deciding a GPU two backends found.
import { afterEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode, VgpuError, isVgpuError } from '../../../core/contracts/exceptions.js';
import type { VgpuBackend } from '../../../core/contracts/vgpu-backend.js';
import { MemoryHostVfJournal } from '../../../core/journal/memory-host-vf-journal.js';
import { MemoryLogger } from '../../../core/logging/memory-logger.js';
import { VgpuRouter } from '../../../core/router/vgpu-router.js';
import { parseSysfsConfig } from '../../../plugins/linux-sysfs/sysfs-config.js';
import { SysfsVgpuService } from '../../../plugins/linux-sysfs/sysfs-vgpu-service.js';
import { FAKE_GPU, FakeVgpuService } from '../api/fake-vgpu-service.js';
import { FakeKernel } from '../../helpers/fake-sysfs.js';

const HOST_GPU = '0000:81:00.0';
const kernels: FakeKernel[] = [];
afterEach(() => { for (const k of kernels.splice(0)) k.cleanup(); });

/** The in-memory fake as the 'manager' backend. */
function managerBackend(): VgpuBackend & FakeVgpuService {
  const f = new FakeVgpuService() as VgpuBackend & FakeVgpuService;
  Object.assign(f, { backend: 'manager', bdfs: () => [FAKE_GPU], hasVgpu: (id: string) => f.vgpus.has(id) || f.logLines.has(id) });
  return f;
}

async function sysfsBackend(pfs: string[]): Promise<{ svc: SysfsVgpuService; kernel: FakeKernel }> {
  const kernel = new FakeKernel(pfs.map((bdf) => ({ bdf })));
  kernels.push(kernel);
  let n = 1;
  const svc = new SysfsVgpuService({
    config: parseSysfsConfig({ root: kernel.root }), logger: new MemoryLogger(), journal: new MemoryHostVfJournal(), io: kernel,
    newId: async () => `vgpu-${100 + n++}`, policy: () => 'homogeneous',
  });
  await svc.init();
  return { svc, kernel };
}

describe('VgpuRouter', () => {
  it('lists every backend\'s GPUs with their backend and sends each call where its GPU, vGPU or VF lives', async () => {
    const mgr = managerBackend();
    const { svc: host, kernel } = await sysfsBackend([HOST_GPU]);
    const r = new VgpuRouter([mgr, host], [], new MemoryLogger());
    assert.deepEqual(r.gpus().map((g) => [g.bdf, g.backend]), [[FAKE_GPU, 'manager'], [HOST_GPU, 'linux-sysfs']]);
    assert.deepEqual(r.types(HOST_GPU).map((t) => t.id), [941, 947, 949]);
    const a = await r.create({ gpu: FAKE_GPU, type: '4Q' });
    const b = await r.create({ gpu: HOST_GPU, type: '24Q' });
    assert.deepEqual(r.list().map((v) => [v.id, v.gpu]), [[a.id, FAKE_GPU], [b.id, HOST_GPU]]);
    assert.equal(r.get(b.id).vfBdf, kernel.vf(HOST_GPU, 0));
    assert.equal(r.readVfAttribute(b.vfBdf, 'current_vgpu_type'), '949\n');
    await r.writeVfAttribute(kernel.vf(HOST_GPU, 1), 'current_vgpu_type', '949\n');
    assert.equal(kernel.typeOf(HOST_GPU, 1), 949, 'the write reached the backend that has the VF');
    assert.deepEqual(r.unmanagedVfs().map((u) => u.vfBdf), [kernel.vf(HOST_GPU, 1)]);
    await r.destroy(b.id);
    await r.destroy(a.id);
    assert.deepEqual(r.list(), []);
    assert.throws(() => r.types('0000:99:00.0'), (e: unknown) => isVgpuError(e, 'VGPU_ENOENT'));
    assert.throws(() => r.get('vgpu-999'), (e: unknown) => isVgpuError(e, 'VGPU_ENOENT'));
    assert.throws(() => r.readVfAttribute('0000:99:00.4', 'current_vgpu_type'), (e: unknown) => isVgpuError(e, 'VGPU_ENOENT'));
  });

  it('a GPU two backends found goes where the config says, else to the first, with one warning', async () => {
    const mgr = managerBackend();
    const { svc: host } = await sysfsBackend([FAKE_GPU]);
    const log = new MemoryLogger();
    const first = new VgpuRouter([mgr, host], [], log);
    assert.deepEqual(first.gpus().map((g) => [g.bdf, g.backend]), [[FAKE_GPU, 'manager']]);
    first.gpus();
    assert.equal(log.lines.filter((l) => /several backends/.test(l.message)).length, 1);
    const chosen = new VgpuRouter([mgr, host], [{ bdf: FAKE_GPU, backend: 'linux-sysfs' }], new MemoryLogger());
    assert.deepEqual(chosen.gpus().map((g) => [g.bdf, g.backend, g.halId]), [[FAKE_GPU, 'linux-sysfs', 'linux-sysfs']]);
    const v = await chosen.create({ gpu: FAKE_GPU, type: 949 });
    assert.equal(v.id, 'vgpu-101', 'the sysfs backend made it');
    assert.deepEqual(mgr.list(), []);
  });

  it('reset, quarantine, its release and unmanaged GPUs reach the backend that has them', async () => {
    const mgr = managerBackend();
    const { svc: host, kernel } = await sysfsBackend([HOST_GPU]);
    const resets: string[] = [];
    const released: string[] = [];
    const qVf = '0000:41:00.6';
    Object.assign(mgr, {
      reset: async (id: string) => { resets.push(id); },
      quarantined: () => [{ gpu: FAKE_GPU, vf: 2, vfBdf: qVf, reason: 'record damaged', since: 0, unknown: ['heap'], blocksCreates: true }],
      releaseVf: async (vfBdf: string) => {
        if (vfBdf !== qVf) throw new VgpuError(ErrorCode.NotFound, `no VF ${vfBdf}`, { details: { vfBdf, noSuchVf: true } });
        released.push(vfBdf);
        return { gpu: FAKE_GPU, vf: 2, gfid: 3, done: ['scrubbed'] };
      },
      // The manager failed to probe HOST_GPU (which the sysfs backend manages) and found no 0000:c1:00.0.
      unmanaged: () => [{ bdf: HOST_GPU, reason: 'probe failed' }, { bdf: '0000:c1:00.0', reason: 'no bus lists it' }],
    });
    const r = new VgpuRouter([mgr, host], [], new MemoryLogger());
    const a = await r.create({ gpu: FAKE_GPU, type: '4Q' });
    const b = await r.create({ gpu: HOST_GPU, type: '24Q' });
    await r.reset(a.id);
    assert.deepEqual(resets, [a.id]);
    await assert.rejects(r.reset(b.id), (e: unknown) => isVgpuError(e, 'VGPU_EINVAL') && /linux-sysfs/.test((e as Error).message));
    assert.deepEqual(r.quarantined().map((q) => q.vfBdf), [qVf]);
    assert.equal((await r.releaseVf(qVf)).gfid, 3);
    assert.deepEqual(released, [qVf]);
    await assert.rejects(r.releaseVf(kernel.vf(HOST_GPU, 1)), (e: unknown) => isVgpuError(e, 'VGPU_ENOENT'),
      'the sysfs backend has no quarantine: its VF is not one to release');
    assert.deepEqual(r.unmanaged(), [{ bdf: '0000:c1:00.0', reason: 'no bus lists it' }], 'a GPU another backend manages is not unmanaged');
  });
});
