/**
 * Management-heap room below the guest-FB region. The manager sets aside heap FB for the largest homogeneous fill;
 * a heterogeneous mix of types with different heaps can need more. `types` must then count only instances that
 * can still get a heap, and a create must be refused up front, by the same count.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isVgpuError } from '../../../core/contracts/exceptions.js';
import type { EventBus } from '../../../core/contracts/events.js';
import type { FbRange } from '../../../core/contracts/memory.js';
import type { VgpuService } from '../../../core/contracts/vgpu-service.js';
import { chidRoom, chidsPerVgpu, prevPow2 } from '../../../core/manager/chid-room.js';
import { FB_PAGE, heapRoom } from '../../../core/manager/heap-room.js';
import { TOKENS } from '../../../core/tokens.js';
import { createMockHalPlugin } from '../../../hal/mock/mock-hal-plugin.js';
import { MockHal } from '../../../hal/mock/mock-hal.js';
import { createLifecyclePlugin } from '../../../plugins/lifecycle/lifecycle-plugin.js';
import { createRouterPlugin } from '../../../plugins/router/router-plugin.js';
import { createScrubPlugin } from '../../../plugins/scrub/scrub-plugin.js';
import { FakePluginTasks } from '../../helpers/fake-plugin-task.js';
import { createTestContainer } from '../../helpers/test-container.js';
import { BDF, GiB, MiB, answerManagerControls, metadata, readMeta, vtype } from '../lifecycle/lifecycle-rig.js';

const range = (offset: bigint, size: bigint): FbRange => ({ id: Number(offset), offset, size, owner: 'x', label: 'x' });

test('heapRoom counts page-aligned first-fit reservations below the bound, after the pending ones', () => {
  const ranges = [range(0n, 4096n), range(10n * MiB, 1n * MiB), range(40n * MiB, 1n * MiB)];
  // gaps below 20 MiB: [4 KiB, 10 MiB) and [11 MiB, 20 MiB); the range at 40 MiB is above the bound
  assert.equal(heapRoom({ ranges, below: 20n * MiB, bytes: 3n * MiB }), 3 + 3);
  assert.equal(heapRoom({ ranges, below: 20n * MiB, bytes: 10n * MiB }), 0, 'no gap holds 10 MiB');
  // a pending 8 MiB takes the first gap that holds it (the low one), leaving ~2 MiB there
  assert.equal(heapRoom({ ranges, below: 20n * MiB, bytes: 3n * MiB, pending: [8n * MiB] }), 0 + 3);
  // an odd size still starts each reservation on a page
  assert.equal(heapRoom({ ranges: [], below: 3n * FB_PAGE, bytes: FB_PAGE + 1n }), 1);
  assert.equal(heapRoom({ ranges: [], below: 4n * FB_PAGE, bytes: FB_PAGE + 1n }), 2);
});

/**
 * 4 GiB mock GPU, 64 MiB segments, 8 VFs, 2048 CHIDs. Heap budget = max over types of max_instance × heap = 576 MiB
 * (H: 3 × 192 MiB), + 8 scratch pages, rounded up to 640 MiB below the 54-segment guest-FB region. CHIDs per vGPU
 * are rounded down to a power of two (3 instances → 512 each), so H, H and H2 fit by CHIDs while their heaps
 * (576 MiB) leave 64 MiB: no room for M's 64 MiB heap next to the scratch pages, room for one 32 MiB S heap.
 */
const seg = 64n * MiB;
const S = vtype(501, 'NVIDIA T-0S', 0, 12, { fbLength: 5n * seg, gspHeapSize: 32n * MiB });
const M = vtype(502, 'NVIDIA T-0M', 0, 6, { fbLength: seg, gspHeapSize: 64n * MiB });
const H = vtype(503, 'NVIDIA T-0H', 0, 3, { fbLength: seg, gspHeapSize: 192n * MiB });
const H2 = vtype(504, 'NVIDIA T-0H2', 0, 3, { fbLength: seg, gspHeapSize: 192n * MiB });

async function daemon() {
  const mock = new MockHal({ devices: [{ bdf: BDF, totalVfs: 8, fbBytes: 4n * GiB }], rpcTimeoutMs: 2000 });
  const readFile = readMeta(metadata([S, M, H, H2]));
  const tc = await createTestContainer({
    plugins: [
      createMockHalPlugin(mock), createScrubPlugin(), createLifecyclePlugin({ init: { metadataDir: '/meta', manager: () => ({ readFile }) } }),
      createRouterPlugin(),
    ],
    config: { timeouts: { bootloadMs: 500, rpcMs: 1000 } } as never,
    start: false,
  });
  tc.container.get<EventBus>(TOKENS.EventBus).on('gpu:probed', (e) => {
    const gpu = mock.gpu(e.gpu);
    answerManagerControls(gpu, seg);
    FakePluginTasks.install(gpu);
  });
  await tc.host.start();
  return { mock, tc, service: tc.container.get<VgpuService>(TOKENS.VgpuManager) };
}

test('types counts heap room: a type whose heap no longer fits shows 0 and is refused; one that fits creates', async (t) => {
  const { mock, tc, service } = await daemon();
  t.after(() => tc.stop());
  service.setPolicy(BDF, 'heterogeneous');
  const available = (): Map<number, number> => new Map(service.types(BDF, { all: true }).map((x) => [x.id, x.available]));
  assert.deepEqual([...available()], [[501, 8], [502, 6], [503, 3], [504, 3]], 'empty GPU: heap room is not the limit');

  await service.create({ gpu: BDF, type: H.id });
  await service.create({ gpu: BDF, type: H.id });
  await service.create({ gpu: BDF, type: H2.id });
  const heaps = mock.books().fbRanges.filter((r) => r.label === 'mgmt-heap');
  assert.ok(heaps.every((r) => r.offset + r.size <= 640n * MiB), 'heaps stay below the guest-FB region');

  // M: 6 by max_instance, 5 free VFs, 50 free segments, 512 free CHIDs — but its 64 MiB heap no longer fits.
  assert.deepEqual([...available()], [[501, 1], [502, 0], [503, 0], [504, 0]]);
  assert.deepEqual(service.types(BDF).map((x) => x.id), [501], 'the default list shows only what can be created');
  const vf5 = mock.gpu().vfs()[5]!.bdf;
  assert.doesNotMatch(service.readVfAttribute(vf5, 'creatable_vgpu_types'), /T-0M/, 'sysfs creatable agrees');
  assert.match(service.readVfAttribute(vf5, 'creatable_vgpu_types'), /501 {3}: NVIDIA T-0S/);

  const before = mock.books();
  await assert.rejects(service.create({ gpu: BDF, type: M.id }), (e) => isVgpuError(e, 'VGPU_ENOSPC') && /management heap/.test(e.message));
  assert.deepEqual(mock.books(), before, 'the refused create touched nothing');
  assert.equal(service.list().length, 3);

  // A sysfs selection promises its heap room as it does its guest placement: S drops to 0, and the selected VF
  // still creates.
  service.writeVfAttribute(vf5, 'current_vgpu_type', `${S.id}\n`);
  assert.equal(available().get(501), 0);
  const s1 = await service.create({ gpu: BDF, vf: 5, type: S.id });
  assert.equal(s1.state, 'ready');
  assert.equal(available().get(501), 0);
  await assert.rejects(service.create({ gpu: BDF, type: S.id }), (e) => isVgpuError(e, 'VGPU_ENOSPC'));

  // Destroying an H gives its heap room back: M is available again and creates.
  const h = service.list().find((v) => v.typeId === H.id)!;
  await service.destroy(h.id);
  assert.ok((available().get(502) ?? 0) >= 1);
  assert.equal((await service.create({ gpu: BDF, type: M.id })).state, 'ready');
});

test('heapRoom and chidRoom with atMost answer min(full count, atMost) — the yes/no checks of select and create stop at the first', () => {
  // Layouts where the one-page scratch reservations decide: a tail gap that holds exactly the pages, or not.
  const layouts: Array<{ ranges: FbRange[]; below: bigint; bytes: bigint; pending?: bigint[]; keepFree?: bigint[] }> = [
    { ranges: [range(0n, 4096n), range(10n * MiB, 1n * MiB)], below: 20n * MiB, bytes: 3n * MiB },
    { ranges: [range(0n, 4096n), range(10n * MiB, 1n * MiB)], below: 20n * MiB, bytes: 3n * MiB, keepFree: Array(4).fill(FB_PAGE) },
    // 6 MiB: two 3 MiB heaps fill it; the pages must then stay free, so at most one heap (or none) counts
    { ranges: [], below: 6n * MiB, bytes: 3n * MiB, keepFree: [FB_PAGE] },
    { ranges: [], below: 3n * MiB + 4096n, bytes: 3n * MiB, keepFree: [FB_PAGE, FB_PAGE] },
    { ranges: [range(1n * MiB, 1n * MiB)], below: 16n * MiB, bytes: 2n * MiB, pending: [4n * MiB, 4n * MiB], keepFree: Array(32).fill(FB_PAGE) },
  ];
  const seen = new Set<number>();
  for (const l of layouts) {
    const full = heapRoom(l);
    seen.add(full);
    for (const atMost of [0, 1, 2, 5]) assert.equal(heapRoom({ ...l, atMost }), Math.min(full, atMost), `${JSON.stringify(l, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v))} atMost ${atMost}`);
  }
  assert.ok(seen.has(0) && [...seen].some((n) => n > 2), 'the layouts cover no room and room for several');
  const chids = [{ offset: 64, count: 64, owner: 'a' }, { offset: 256, count: 32, owner: 'b' }];
  for (const count of [16, 64, 128, 512]) {
    const full = chidRoom({ total: 1024, ranges: chids, count, pending: [64] });
    for (const atMost of [0, 1, 3]) assert.equal(chidRoom({ total: 1024, ranges: chids, count, pending: [64], atMost }), Math.min(full, atMost));
  }
});

test('prevPow2 (CHIDs per vGPU) is the largest power of two not above n, for whole and fractional n', () => {
  for (const n of [1, 2, 3, 4, 5, 63, 64, 65, 85.33, 1.5, 2047, 2048, 2049, 0x7fff_ffff, 0x8000_0000, 2 ** 40 + 3]) {
    let p = 1;
    while (p * 2 <= n) p *= 2;
    assert.equal(prevPow2(n), p, `n = ${n}`);
  }
  assert.equal(prevPow2(0), 0);
  assert.equal(prevPow2(0.5), 0);
  assert.equal(chidsPerVgpu(2048, 32), 64);
  assert.equal(chidsPerVgpu(2048, 24), 64);
  assert.equal(chidsPerVgpu(2048, 3), 512);
});
