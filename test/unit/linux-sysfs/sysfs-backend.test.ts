// The Linux sysfs backend over a fake host sysfs (plain files) and a fake kernel that answers writes with the errnos
// the real attributes have: discovery, parsing, create/destroy as writes of the per-VF ABI, every refusal typed with
// the kernel's errno, VF enabling through sriov_numvfs, and the reconcile of its journal with what the VFs hold.
import { afterEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isVgpuError, type VgpuError } from '../../../core/contracts/exceptions.js';
import type { HostVfRecord } from '../../../core/contracts/host-vf-journal.js';
import { MemoryHostVfJournal } from '../../../core/journal/memory-host-vf-journal.js';
import { MemoryLogger } from '../../../core/logging/memory-logger.js';
import { VfAbiError } from '../../../core/manager/vf-abi-error.js';
import { hasCreatableHeader, parseCreatableTypes } from '../../../plugins/linux-sysfs/creatable-types.js';
import { parseSysfsConfig } from '../../../plugins/linux-sysfs/sysfs-config.js';
import { SysfsVgpuService } from '../../../plugins/linux-sysfs/sysfs-vgpu-service.js';
import { FakeKernel, GPU_A, type FakePfSpec } from '../../helpers/fake-sysfs.js';

const kernels: FakeKernel[] = [];
afterEach(() => { for (const k of kernels.splice(0)) k.cleanup(); });

async function host(pfs: FakePfSpec[] = [{ bdf: GPU_A }], o: { journal?: MemoryHostVfJournal; config?: Record<string, unknown>; kernel?: FakeKernel } = {}) {
  const kernel = o.kernel ?? new FakeKernel(pfs);
  if (o.kernel === undefined) kernels.push(kernel);
  const journal = o.journal ?? new MemoryHostVfJournal();
  const log = new MemoryLogger();
  let next = 1;
  const svc = new SysfsVgpuService({
    config: parseSysfsConfig({ root: kernel.root, ...o.config }), logger: log, journal, io: kernel,
    newId: async () => `vgpu-${next++}`, policy: () => 'homogeneous',
  });
  await svc.init();
  return { kernel, journal, svc, log };
}

const errnoOf = (e: unknown): string | undefined => (e instanceof VfAbiError ? e.errno : undefined);
const refusedWith = (errno: string, code?: string) => (e: unknown): boolean => {
  assert.equal(errnoOf(e), errno, String(e));
  if (code !== undefined) assert.equal((e as VgpuError).code, code);
  return true;
};

describe('creatable_vgpu_types parsing', () => {
  it('takes the upstream and NVIDIA line forms, skips the header and anything that is not "ID : Name"', () => {
    const text = 'ID    : vGPU Name\n941   : NVIDIA RTX6000-Ada-1Q\n1414 : NVIDIA H200X-1-18C\n\n  x : junk\n0 : zero\n941 : dup\n99999999999 : too big\n';
    assert.deepEqual(parseCreatableTypes(text), [{ id: 941, name: 'NVIDIA RTX6000-Ada-1Q' }, { id: 1414, name: 'NVIDIA H200X-1-18C' }]);
    assert.equal(hasCreatableHeader(text), true);
    assert.equal(hasCreatableHeader('949   : NVIDIA RTX6000-Ada-24Q\n'), false);
    assert.deepEqual(parseCreatableTypes(''), []);
  });
});

describe('the sysfs backend on a fake NVIDIA host', () => {
  it('finds only NVIDIA display/3D PFs bound to nvidia with SR-IOV, indexed by address, and reports what sysfs says', async () => {
    const k = new FakeKernel([{ bdf: '0000:81:00.0' }, { bdf: GPU_A, numVfs: 2, totalVfs: 4 }, { bdf: '0000:c1:00.0', driver: 'vfio-pci' }]);
    kernels.push(k);
    k.addDevice('0000:03:00.0', { vendor: '0x8086\n', class: '0x020000\n', sriov_totalvfs: '8\n' }, { driver: '../../drivers/ixgbe' });
    const { svc } = await host([], { kernel: k });
    assert.deepEqual(svc.bdfs(), [GPU_A, '0000:81:00.0'], 'the PF on vfio-pci and the NIC are left out');
    const g = svc.gpus().find((x) => x.bdf === GPU_A)!;
    assert.deepEqual({ ...g, name: undefined }, {
      bdf: GPU_A, name: undefined, halId: 'linux-sysfs', pciDeviceId: 0x26b1, pciVendorId: 0x10de, pciClass: 0x030200, index: 0,
      pciSubsystem: { vendorId: 0x10de, deviceId: 0x16a1 }, firmwareVersion: '570.144', state: 'ready', policy: 'homogeneous',
      totalVfs: 4, numVfs: 2, vgpus: 0,
    });
    assert.equal(g.fb, undefined, 'the kernel keeps the FB: no numbers are made up');
    assert.equal(svc.gpus().find((x) => x.bdf === '0000:81:00.0')!.index, 1);
    assert.deepEqual(svc.vfs(GPU_A).map((v) => [v.index, v.bdf, v.typeId, v.deviceId]), [[0, '0000:41:00.4', 0, 0x26b2], [1, '0000:41:00.5', 0, 0x26b2]]);
  });

  it('types: the catalogue from creatable_vgpu_types, the profile the name states, availability as free VFs listing it', async () => {
    const { svc } = await host();
    const all = svc.types(GPU_A, { all: true });
    assert.deepEqual(all.map((t) => [t.id, t.series, t.profileFbBytes, t.available, t.maxInstances, t.guestFbBytes]), [
      [941, 'Q', 1n << 30n, 4, undefined, undefined], [947, 'Q', 12n << 30n, 4, undefined, undefined], [949, 'Q', 24n << 30n, 4, undefined, undefined],
    ]);
    await svc.create({ gpu: GPU_A, type: '24Q' });
    // Homogeneous: only 24Q is listed on the free VFs now, but the other types stay in the catalogue.
    assert.deepEqual(svc.types(GPU_A).map((t) => [t.id, t.available]), [[949, 3]]);
    assert.deepEqual(svc.types(GPU_A, { all: true }).map((t) => t.id), [941, 947, 949]);
  });

  it('create writes the type id to one VF\'s current_vgpu_type, journals it, and destroy writes 0; nothing else is written', async () => {
    const { svc, kernel, journal } = await host();
    const v = await svc.create({ gpu: GPU_A, type: 'RTX6000-Ada-24Q', requestId: 'r-1' });
    assert.deepEqual([v.id, v.vf, v.vfBdf, v.gfid, v.typeId, v.typeName, v.state, v.requestId], [
      'vgpu-1', 0, '0000:41:00.4', 1, 949, 'NVIDIA RTX6000-Ada-24Q', 'ready', 'r-1',
    ]);
    assert.equal(v.profileFbBytes, 24n << 30n);
    assert.equal(v.fb, undefined);
    assert.equal(v.chids, undefined);
    assert.equal(v.inUse, undefined);
    assert.equal(kernel.typeOf(GPU_A, 0), 949);
    assert.deepEqual(journal.records().map((r) => [r.id, r.vfBdf, r.state, r.typeId]), [['vgpu-1', '0000:41:00.4', 'set', 949]]);
    assert.deepEqual(svc.list().map((x) => x.id), ['vgpu-1']);
    assert.equal(svc.gpus()[0]!.vgpus, 1);
    await svc.destroy(v.id);
    assert.equal(kernel.typeOf(GPU_A, 0), 0);
    assert.deepEqual(journal.records(), []);
    assert.deepEqual(kernel.writes, [
      { path: 'bus/pci/devices/0000:41:00.4/nvidia/current_vgpu_type', text: '949\n' },
      { path: 'bus/pci/devices/0000:41:00.4/nvidia/current_vgpu_type', text: '0\n' },
    ]);
    assert.ok(svc.logs(v.id).some((l) => /destroyed/.test(l)));
  });

  it('every refused write surfaces with the kernel\'s errno, and leaves no record behind', async () => {
    const { svc, kernel, journal } = await host();
    await svc.create({ gpu: GPU_A, type: 949 });
    await svc.create({ gpu: GPU_A, type: 949 });
    // Another type while one is active: the first free VF lists only 24Q, so the kernel itself answers EINVAL.
    await assert.rejects(svc.create({ gpu: GPU_A, type: 947 }), refusedWith('EINVAL', 'VGPU_EINVAL'));
    // The GPU is full for 24Q (max 2): ENOSPC from the kernel.
    await assert.rejects(svc.create({ gpu: GPU_A, type: 949 }), refusedWith('ENOSPC', 'VGPU_ENOSPC'));
    // An id the GPU does not offer: ENODEV.
    await assert.rejects(svc.create({ gpu: GPU_A, type: 12345, vf: 3 }), refusedWith('ENODEV', 'VGPU_ENODEV_TYPE'));
    assert.deepEqual(journal.records().map((r) => r.id), ['vgpu-1', 'vgpu-2']);
    // A VM holds VF 0: its destroy is EBUSY, and the vGPU stays as it was.
    kernel.setOpen(GPU_A, 0, true);
    await assert.rejects(svc.destroy('vgpu-1'), (e: unknown) => refusedWith('EBUSY', 'VGPU_EBUSY')(e) && /stop the VM/.test((e as VgpuError).hint));
    assert.deepEqual(journal.records().map((r) => [r.id, r.state]), [['vgpu-1', 'set'], ['vgpu-2', 'set']]);
    assert.equal(kernel.typeOf(GPU_A, 0), 949);
    // The raw ABI: text the kernel cannot parse is EINVAL, an overflow ERANGE.
    await assert.rejects(svc.writeVfAttribute(kernel.vf(GPU_A, 3), 'current_vgpu_type', 'abc\n'), refusedWith('EINVAL'));
    await assert.rejects(svc.writeVfAttribute(kernel.vf(GPU_A, 3), 'current_vgpu_type', '99999999999999999999\n'), refusedWith('ERANGE'));
    // A read-only attribute is EACCES, as kernfs answers root.
    await assert.rejects(svc.writeVfAttribute(kernel.vf(GPU_A, 3), 'creatable_vgpu_types', '1\n'), refusedWith('EACCES', 'VGPU_EACCES'));
    // An errno outside the ABI's set is still typed and named.
    kernel.failNextWrite('0000:41:00.7/nvidia/current_vgpu_type', 'ENOTCONN');
    await assert.rejects(svc.create({ gpu: GPU_A, type: 949, vf: 3 }), (e: unknown) => isVgpuError(e, 'VGPU_ELOST') && (e as VgpuError).details.errno === 'ENOTCONN');
  });

  it('the raw ABI reads byte-exact and keeps the journal true when it clears a managed VF', async () => {
    const { svc, kernel, journal } = await host([{ bdf: GPU_A, extraVfAttrs: { vgpu_params: 'frame_rate_limiter=0\n', placement_id: '7\n' } }]);
    assert.equal(svc.readVfAttribute(kernel.vf(GPU_A, 1), 'creatable_vgpu_types'),
      'ID    : vGPU Name\n941   : NVIDIA RTX6000-Ada-1Q\n947   : NVIDIA RTX6000-Ada-12Q\n949   : NVIDIA RTX6000-Ada-24Q\n');
    assert.equal(svc.readVfAttribute(kernel.vf(GPU_A, 1), 'vgpu_params'), 'frame_rate_limiter=0\n');
    const v = await svc.create({ gpu: GPU_A, type: 941 });
    assert.equal(v.placementId, 7, 'NVIDIA\'s placement_id, read where the driver has it');
    assert.throws(() => svc.readVfAttribute(kernel.vf(GPU_A, 1), 'gpu_instance_id'), refusedWith('ENOENT'));
    assert.throws(() => svc.readVfAttribute('0000:99:00.4', 'current_vgpu_type'), (e: unknown) => isVgpuError(e, 'VGPU_ENOENT'));
    await svc.writeVfAttribute(v.vfBdf, 'current_vgpu_type', '0\n');
    assert.deepEqual(journal.records(), [], 'a 0 written through vgpud\'s ABI ends its vGPU');
  });

  it('enables the VFs first when a PF has none (sriov_numvfs = sriov_totalvfs, as sriov-manage does)', async () => {
    const { svc, kernel } = await host([{ bdf: GPU_A, numVfs: 0, totalVfs: 4 }]);
    assert.equal(svc.gpus()[0]!.numVfs, 0);
    const v = await svc.create({ gpu: GPU_A, type: '1Q' });
    assert.equal(v.vfBdf, '0000:41:00.4');
    assert.deepEqual(kernel.writes.map((w) => [w.path, w.text]), [
      ['bus/pci/devices/0000:41:00.0/sriov_numvfs', '4\n'], ['bus/pci/devices/0000:41:00.4/nvidia/current_vgpu_type', '941\n'],
    ]);
    // The kernel's rules for the count: a different non-zero count is EBUSY; more than the total ERANGE.
    await assert.rejects(svc.configureVfs(GPU_A, 0), refusedWith('EBUSY'), 'not while a VF that would go holds a vGPU');
    await svc.destroy(v.id);
    await assert.rejects(svc.configureVfs(GPU_A, 2), refusedWith('EBUSY'));
    await assert.rejects(svc.configureVfs(GPU_A, 9), refusedWith('ERANGE'));
    await svc.configureVfs(GPU_A, 0);
    assert.equal(svc.gpus()[0]!.numVfs, 0);
  });

  it('a driver that cannot configure SR-IOV through sysfs answers ENOENT, and the hint names sriov-manage', async () => {
    const { svc } = await host([{ bdf: GPU_A, numVfs: 0, canConfigure: false }]);
    await assert.rejects(svc.create({ gpu: GPU_A, type: 949 }), (e: unknown) => refusedWith('ENOENT')(e) && /sriov-manage -e/.test((e as VgpuError).hint));
    const off = await host([{ bdf: '0000:42:00.0', numVfs: 0 }], { config: { enableVfs: false } });
    await assert.rejects(off.svc.create({ gpu: '0000:42:00.0', type: 949 }), (e: unknown) => isVgpuError(e, 'VGPU_ENOSPC') && /vgpuctl sriov/.test((e as VgpuError).hint));
    assert.deepEqual(off.kernel.writes, [], 'with enableVfs off nothing is written');
  });
});

describe('reconcile on a real host', () => {
  const rec = (id: string, vf: number, state: HostVfRecord['state'], typeId = 949): HostVfRecord => ({
    id, gpu: GPU_A, vf, vfBdf: `0000:41:00.${4 + vf}`, typeId, typeName: 'NVIDIA RTX6000-Ada-24Q', state, createdAt: vf, updatedAt: vf,
  });

  it('keeps what sysfs confirms, settles half-way steps by what the kernel holds, reports and never overwrites a changed VF', async () => {
    const kernel = new FakeKernel([{ bdf: GPU_A }]);
    kernels.push(kernel);
    kernel.setTypeBehindTheBack(GPU_A, 0, 949); // vgpu-1 set, confirmed
    kernel.setTypeBehindTheBack(GPU_A, 1, 949); // vgpu-2's create reached the kernel before the crash
    //                                            vgpu-3's create did not (VF 2 holds 0)
    kernel.setTypeBehindTheBack(GPU_A, 3, 949); // vgpu-4 was being destroyed: finish it
    const journal = new MemoryHostVfJournal();
    for (const r of [rec('vgpu-1', 0, 'set'), rec('vgpu-2', 1, 'setting'), rec('vgpu-3', 2, 'setting'), rec('vgpu-4', 3, 'clearing')]) await journal.put(r);
    const { svc } = await host([], { kernel, journal });
    assert.deepEqual(svc.reconcileReport, { kept: ['vgpu-1'], finished: ['vgpu-2', 'vgpu-4'], rolledBack: ['vgpu-3'], changed: [], absent: [] });
    assert.deepEqual(journal.records().map((r) => [r.id, r.state]), [['vgpu-1', 'set'], ['vgpu-2', 'set']]);
    assert.equal(kernel.typeOf(GPU_A, 3), 0);
    assert.deepEqual(kernel.writes.map((w) => w.text), ['0\n'], 'the only write: finishing vgpud\'s own destroy');
  });

  it('a type changed behind vgpud\'s back is reported (status, log) and left alone; adopt takes VFs over', async () => {
    const kernel = new FakeKernel([{ bdf: GPU_A, types: [...(await import('../../helpers/fake-sysfs.js')).RTX_TYPES] }]);
    kernels.push(kernel);
    const journal = new MemoryHostVfJournal();
    const first = await host([], { kernel, journal });
    const v = await first.svc.create({ gpu: GPU_A, type: 949 });
    // Behind vgpud's back: VF 0 cleared and given 12Q; VF 1 given 12Q too (a vGPU vgpud never created).
    kernel.setTypeBehindTheBack(GPU_A, 0, 947);
    kernel.setTypeBehindTheBack(GPU_A, 1, 947);
    kernel.writes.length = 0;
    // A restart (kill -9): a new service over the same journal.
    const { svc, log } = await host([], { kernel, journal });
    assert.deepEqual(svc.reconcileReport?.changed, [{ id: v.id, vfBdf: '0000:41:00.4', expectedTypeId: 949, foundTypeId: 947 }]);
    assert.ok(log.lines.some((l) => l.level === 'warn' && /changed behind vgpud/.test(l.message)));
    assert.deepEqual(svc.list(), [], 'the vGPU vgpud made is not there as it made it');
    assert.deepEqual(svc.unmanagedVfs().map((u) => [u.vfBdf, u.reason, u.typeId, u.vgpuId, u.expectedTypeId]), [
      ['0000:41:00.4', 'changed', 947, v.id, 949], ['0000:41:00.5', 'not-adopted', 947, undefined, undefined],
    ]);
    await assert.rejects(svc.destroy(v.id), (e: unknown) => isVgpuError(e, 'VGPU_ESTATE') && /adopt/.test((e as VgpuError).hint));
    assert.deepEqual(kernel.writes, [], 'nothing was written to the changed VF');
    assert.equal(kernel.typeOf(GPU_A, 0), 947);

    const r = await svc.adopt({ vfs: ['0000:41:00.5'] });
    assert.deepEqual(r.adopted.map((a) => [a.vfBdf, a.typeId, a.typeName]), [['0000:41:00.5', 947, 'NVIDIA RTX6000-Ada-12Q']]);
    const all = await svc.adopt({ gpu: GPU_A });
    assert.deepEqual(all.adopted.map((a) => a.vfBdf), ['0000:41:00.4'], 'the changed VF is taken over as it is');
    assert.deepEqual(svc.unmanagedVfs(), []);
    assert.deepEqual(svc.list().map((x) => [x.vfBdf, x.typeId]).sort(), [['0000:41:00.4', 947], ['0000:41:00.5', 947]]);
    assert.deepEqual(kernel.writes, [], 'adopting writes nothing');
  });

  it('a vGPU cleared behind vgpud\'s back is reported, its VF not reused, and destroy forgets it', async () => {
    const { svc, kernel } = await host();
    const v = await svc.create({ gpu: GPU_A, type: 949 });
    kernel.setTypeBehindTheBack(GPU_A, 0, 0);
    assert.deepEqual(svc.unmanagedVfs().map((u) => [u.vfBdf, u.reason, u.typeId]), [['0000:41:00.4', 'changed', 0]]);
    const w = await svc.create({ gpu: GPU_A, type: 949 });
    assert.equal(w.vf, 1, 'the reported VF is left alone');
    await svc.destroy(v.id);
    assert.deepEqual(svc.unmanagedVfs(), []);
  });
});
