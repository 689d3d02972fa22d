/**
 * NVIDIA's mixed-size (heterogeneous) mode: the placement table (core/manager/mixed-size-placements.ts) and the
 * heterogeneous policy enforcing it on the simulated-board catalogue (metadata/ada.yaml) through the mock HAL.
 * The expected 48 GB placement ids are a third-party copy of NVIDIA's L40S table (ahmad-siavashi/gpucloudsim
 * GridVideoCardTags.java), not derived from the code under test.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isVgpuError } from '../../../core/contracts/exceptions.js';
import { mixedSizePlacements, nvidiaGuestFbIs1GiB } from '../../../core/manager/mixed-size-placements.js';
import { buildMetadata } from '../../../core/metadata/metadata-writer.js';
import { DEFAULT_CATALOG_PATHS } from '../../../metadata/compile-to-file.js';
import { loadCatalogs } from '../../../metadata/compile-catalog.js';
import { GiB, MiB, rig } from './fixture.js';

const table = (boardGiB: number, sizes: number[]) => {
  const types = sizes.map((n) => {
    const maxInstance = Math.min(32, Math.floor(boardGiB / n));
    return {
      id: n, profileGiB: n, maxInstance,
      guestFbIs1GiB: nvidiaGuestFbIs1GiB({ profileBytes: BigInt(n) * GiB, maxInstance, gspHeapSize: 32n * MiB, fbReservation: 0n }, BigInt(boardGiB) * GiB, 64n * MiB),
    };
  });
  return mixedSizePlacements(types);
};

test('48 GB board: mixed-size placements are NVIDIA L40S table\'s, 1 GiB types keep 16 of 32', () => {
  const t = table(48, [1, 2, 3, 4, 6, 8, 12, 16, 24, 48])!;
  assert.equal(t.regionSlots, 48);
  const ids = (n: number): readonly number[] => t.byType.get(n)!.ids;
  assert.deepEqual(ids(48), [0]);
  assert.deepEqual(ids(24), [0, 24]);
  assert.deepEqual(ids(16), [0, 32]);
  assert.deepEqual(ids(12), [0, 12, 24, 36]);
  assert.deepEqual(ids(8), [0, 16, 24, 40]);
  assert.deepEqual(ids(6), [0, 6, 12, 18, 24, 30, 36, 42]);
  assert.deepEqual(ids(4), [0, 8, 12, 20, 24, 32, 36, 44]);
  assert.deepEqual(ids(3), [0, 3, 6, 9, 12, 15, 18, 21, 24, 27, 30, 33, 36, 39, 42, 45]);
  assert.deepEqual(ids(2), [0, 4, 6, 10, 12, 16, 18, 22, 24, 28, 30, 34, 36, 40, 42, 46]);
  assert.deepEqual(ids(1), [0, 5, 6, 11, 12, 17, 18, 23, 24, 29, 30, 35, 36, 41, 42, 47]);
});

test('24 GB board: non-power-of-two maxima drop to the power of two below; 960 MiB guests are not deny-listed', () => {
  const t = table(24, [1, 2, 3, 4, 6, 8, 12, 24])!;
  const counts = [1, 2, 3, 4, 6, 8, 12, 24].map((n) => t.byType.get(n)!.ids.length);
  assert.deepEqual(counts, [16, 8, 8, 4, 4, 2, 2, 1]);
});

test('a table without a 1-instance type has no mixed-size rules', () => {
  assert.equal(mixedSizePlacements([{ id: 1, profileGiB: 4, maxInstance: 8, guestFbIs1GiB: false }]), null);
});

const metadata = buildMetadata(loadCatalogs(DEFAULT_CATALOG_PATHS).spec);
const RTX6000 = { deviceId: 0x26b1, fbBytes: 48n * GiB, totalVfs: 32 };

async function manager(policy: 'homogeneous' | 'heterogeneous') {
  const r = await rig({ device: RTX6000, segmentSize: 64n * MiB, metadata });
  return { r, mgr: await r.create({ policy }) };
}

/** Deselect every VF, then release the manager (it refuses while VFs hold a type). */
async function close(mgr: Awaited<ReturnType<typeof manager>>['mgr']): Promise<void> {
  for (const sel of mgr.policy.selections()) mgr.abi.writeCurrent(sel.vf, '0');
  await mgr.close();
}

const id = (mgr: Awaited<ReturnType<typeof manager>>['mgr'], suffix: string): number => mgr.policy.types.find((t) => t.name.endsWith(`-${suffix}`))!.id;

test('mixed-size mode: the 5th RTX6000-Ada-8Q is refused naming the mode, both limits and what to do; equal-size mode takes 6', async () => {
  const { mgr } = await manager('heterogeneous');
  const q8 = id(mgr, '8Q');
  for (let vf = 0; vf < 4; vf++) mgr.abi.writeCurrent(vf, String(q8));
  assert.throws(() => mgr.abi.writeCurrent(4, String(q8)), (e) => {
    assert.ok(isVgpuError(e, 'VGPU_ENOSPC'));
    const err = e as Error & { hint?: string; details?: Record<string, unknown> };
    assert.match(err.message, /mixed-size \(heterogeneous\) mode allows at most 4 vGPUs of type \d+ \(NVIDIA RTX6000-Ada-8Q\).*equal-size mode allows 6/);
    assert.match(err.hint ?? '', /equal-size mode \(policy homogeneous/);
    assert.equal(err.details?.['maxMixed'], 4);
    assert.equal(err.details?.['maxEqual'], 6);
    return true;
  });
  assert.equal(mgr.policy.selectionOf(4), undefined, 'the refused write left nothing selected');
  assert.deepEqual(mgr.policy.selections().map((s) => s.mixedSlot), [0, 16, 24, 40]);
  await close(mgr);

  const eq = await manager('homogeneous');
  for (let vf = 0; vf < 6; vf++) eq.mgr.abi.writeCurrent(vf, String(q8));
  assert.equal(eq.mgr.policy.countOf(q8), 6);
  await close(eq.mgr);
});

test('mixed-size mode: a size whose placements all overlap live vGPUs is refused; a free placement of another size is taken', async () => {
  const { mgr } = await manager('heterogeneous');
  const [q16, q24, q8] = [id(mgr, '16Q'), id(mgr, '24Q'), id(mgr, '8Q')];
  mgr.abi.writeCurrent(0, String(q16)); // slots 0..15
  mgr.abi.writeCurrent(1, String(q24)); // 0 overlaps the 16Q: 24..47
  assert.equal(mgr.policy.selectionOf(1)?.mixedSlot, 24);
  assert.equal(mgr.policy.maxInstanceMixed(mgr.policy.typeById(q24)!), 2);
  // One 24Q of at most 2 exists, yet neither of its placements (0, 24) is free.
  assert.throws(() => mgr.abi.writeCurrent(2, String(q24)), (e) => isVgpuError(e, 'VGPU_ENOSPC')
    && /every placement of type \d+ \(NVIDIA RTX6000-Ada-24Q\) — GiB slots 0, 24, 24 wide — overlaps a vGPU/.test((e as Error).message));
  mgr.abi.writeCurrent(2, String(q8)); // 0 and 24, 40 are taken; 16..23 is free
  assert.equal(mgr.policy.selectionOf(2)?.mixedSlot, 16);
  assert.throws(() => mgr.abi.writeCurrent(3, String(q8)), (e) => isVgpuError(e, 'VGPU_ENOSPC'));
  // Freeing the 16Q frees slot 0 for a 24Q? No: the 8Q at 16 still overlaps 0..23. An 8Q fits at 0.
  mgr.abi.writeCurrent(0, '0');
  assert.throws(() => mgr.abi.writeCurrent(3, String(q24)), (e) => isVgpuError(e, 'VGPU_ENOSPC'));
  mgr.abi.writeCurrent(3, String(q8));
  assert.equal(mgr.policy.selectionOf(3)?.mixedSlot, 0);
  await close(mgr);
});

test('mixed-size mode: the 1 GiB types of a 48 GB board reach 16 and the creatable list drops them then', async () => {
  const { mgr } = await manager('heterogeneous');
  const q1 = id(mgr, '1Q');
  for (let vf = 0; vf < 16; vf++) mgr.abi.writeCurrent(vf, String(q1));
  assert.deepEqual(mgr.policy.selections().map((s) => s.mixedSlot), [0, 5, 6, 11, 12, 17, 18, 23, 24, 29, 30, 35, 36, 41, 42, 47]);
  assert.ok(!mgr.abi.readCreatable(16).includes(`${q1} `), '1Q no longer listed');
  assert.throws(() => mgr.abi.writeCurrent(16, String(q1)), (e) => isVgpuError(e, 'VGPU_ENOSPC') && /at most 16 vGPUs.*equal-size mode allows 32/.test((e as Error).message));
  await close(mgr);
});

test('a restore re-takes the journalled mixed-size placement while it is free, else the first free one', async () => {
  const before = await manager('heterogeneous');
  const q24 = id(before.mgr, '24Q');
  before.mgr.abi.writeCurrent(0, String(q24));
  before.mgr.abi.writeCurrent(1, String(q24));
  const [a, b] = before.mgr.policy.selections();
  assert.deepEqual([a!.mixedSlot, b!.mixedSlot], [0, 24]);
  await close(before.mgr);

  // "After a restart": VF 1 is restored first, from its journal record (FB slot and NVIDIA placement).
  const after = await manager('heterogeneous');
  after.mgr.policy.select(1, q24, { placementAt: b!.placement.id, mixedAt: 24 });
  after.mgr.policy.select(0, q24, { placementAt: a!.placement.id, mixedAt: 0 });
  assert.deepEqual(after.mgr.policy.selections().map((s) => [s.vf, s.mixedSlot]), [[0, 0], [1, 24]]);
  // A record without one (an older journal) takes the first free placement.
  after.mgr.abi.writeCurrent(0, '0');
  after.mgr.policy.select(0, q24, { placementAt: a!.placement.id });
  assert.equal(after.mgr.policy.selectionOf(0)?.mixedSlot, 0);
  await close(after.mgr);
});

test('a metadata reload keeps every vGPU\'s mixed-size placement', async () => {
  const { mgr } = await manager('heterogeneous');
  const q24 = id(mgr, '24Q');
  mgr.abi.writeCurrent(1, String(q24)); // first: placement 0
  mgr.abi.writeCurrent(0, String(q24)); // then: placement 24
  await mgr.reloadMetadata(metadata);
  assert.deepEqual(mgr.policy.selections().map((s) => [s.vf, s.mixedSlot]), [[0, 24], [1, 0]]);
  await close(mgr);
});
