/**
 * Quarantined VFs on the mock HAL (issue 16, defect 5): a VF whose journal record was lost keeps what it may hold
 * out of every create, until an operator's release tears down whatever the device still runs for its gfid.
 *
 * "The previous daemon" is played by the rig's own lifecycle: it creates a vGPU (a plugin task runs in the
 * firmware), then stops listening; what that process held on the host side (FB and CHID reservations) is dropped,
 * as a process exit drops it; a new lifecycle on the same manager then holds the VF from a quarantine entry.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isVgpuError } from '../../../core/contracts/exceptions.js';
import type { JournalQuarantine } from '../../../core/contracts/vgpu-journal.js';
import { GpuLifecycle } from '../../../plugins/lifecycle/gpu-lifecycle.js';
import type { VgpuRecord } from '../../../plugins/lifecycle/vgpu-record.js';
import { BDF, TYPES, rig, type Rig } from './lifecycle-rig.js';

const T4Q = TYPES[1]!;

/** The rig after "a restart" that lost the record of `v`: a fresh lifecycle; v's task still runs in the firmware. */
function restartForgetting(r: Rig, v: VgpuRecord): GpuLifecycle {
  r.lc.detach();
  const res = v.res;
  res.channel?.close('test: the old daemon is gone');
  res.heapMapping?.unmap();
  // A process exit drops its host-side books; the firmware (its task, its RM client) lives on.
  r.gpu.memory.free(res.guestFb!);
  r.gpu.memory.free(res.heap!);
  r.gpu.channels.free(res.chids!);
  const lc = new GpuLifecycle({
    gpu: r.gpu, mgr: r.mgr, bus: r.bus, relay: r.relay, logger: r.logger, scrubber: r.scrubber,
    timeouts: { rpcMs: 2000, bootloadMs: 300, mailboxMs: 300, scrubMs: 1000, pollIntervalMs: 1 },
    newId: (() => { let n = 100; return () => `vgpu-${++n}`; })(),
  });
  lc.start();
  return lc;
}

function entryOf(v: VgpuRecord, known: { heap?: boolean; chids?: boolean; client?: boolean } = {}): JournalQuarantine {
  const r = v.res;
  const unknown: JournalQuarantine['unknown'] = [];
  if (known.heap === false) unknown.push('heap');
  if (known.chids === false) unknown.push('chids');
  if (known.client === false) unknown.push('rm-client');
  return {
    gpu: BDF, vf: v.vf.index, vgpuId: v.id, reason: `its journal record vgpu-${v.id}.json is unreadable (test)`, since: 1,
    typeId: v.type.id, placementId: v.selection.placement.id, autoSelected: true,
    guestFb: { offset: r.guestFb!.offset, size: r.guestFb!.size },
    ...(known.heap !== false ? { heap: { offset: r.heap!.offset, size: r.heap!.size } } : {}),
    ...(known.chids !== false ? { chids: { offset: r.chids!.offset, count: r.chids!.count } } : {}),
    ...(known.client !== false ? { client: { ...r.client! } } : {}),
    unknown,
  };
}

describe('quarantined VFs', () => {
  it('a fully known quarantined VF is never handed to a create; other VFs still are; the release tears down its task, client and FB', async () => {
    const r = await rig();
    const v = await r.lc.create(2, T4Q);
    const fb = { ...v.res.guestFb! };
    const lc = restartForgetting(r, v);
    const held = lc.holdQuarantined(entryOf(v));
    assert.deepEqual(held.unknown, []);
    assert.equal(lc.createsBlocked(), false);
    assert.deepEqual(lc.quarantinedVfs().map((q) => [q.vf, q.vgpuId, q.blocksCreates]), [[2, v.id, false]]);

    // The VF itself: refused, naming the release; its type cannot be changed through the ABI either.
    assert.throws(() => lc.create(2, T4Q), (e) => isVgpuError(e, 'VGPU_EBUSY') && /quarantined/.test(e.message) && e.hint.includes(`vgpuctl vf ${v.vf.bdf} release`));
    assert.throws(() => r.mgr.abi.writeCurrent(2, '0\n'), (e) => isVgpuError(e) && /EBUSY|open/.test(`${e.message} ${String((e as { errno?: string }).errno)}`));
    // What it holds stays taken: another create lands elsewhere, on other FB and CHIDs.
    const w = await lc.create(3, T4Q);
    assert.notEqual(w.res.guestFb!.offset, fb.offset);
    assert.ok(w.res.chids!.offset >= v.res.chids!.offset + v.res.chids!.count || w.res.chids!.offset + w.res.chids!.count <= v.res.chids!.offset);
    assert.deepEqual(r.tasks.running(), [v.gfid, w.gfid]);

    const clientsBefore = r.mock.books().clients.length;
    const scrubsBefore = r.scrubber!.calls.length;
    const report = await lc.releaseVf(2);
    assert.ok(report.done.some((d) => /plugin task of gfid 3 shut down/.test(d)), report.done.join('; '));
    assert.deepEqual(r.tasks.running(), [w.gfid], 'the old task is gone');
    assert.ok(r.tasks.shutdowns.includes(v.gfid) && r.tasks.cleanups.includes(v.gfid));
    assert.equal(r.mock.books().clients.length, clientsBefore - 1, 'its RM client was freed');
    const scrub = r.scrubber!.calls.slice(scrubsBefore).find((c) => c.range.offset === fb.offset);
    assert.equal(scrub?.range.size, fb.size, 'its guest FB was scrubbed');
    assert.equal(lc.isQuarantined(2), false);
    assert.equal(r.mgr.selectionOf(2), undefined, 'the type its create had selected is deselected');
    const again = await lc.create(2, T4Q);
    await lc.destroy(again.id);
    await lc.destroy(w.id);
    assert.deepEqual(r.mock.books(), r.baseline);
  });

  it('while its heap or CHIDs are unknown, every create on the GPU waits for the release (naming it), and the listing says so', async () => {
    const r = await rig();
    const v = await r.lc.create(1, T4Q);
    const lc = restartForgetting(r, v);
    lc.holdQuarantined(entryOf(v, { heap: false, chids: false, client: false }));
    assert.equal(lc.createsBlocked(), true);
    const [q] = lc.quarantinedVfs();
    assert.deepEqual(q?.unknown, ['chids', 'heap', 'rm-client']);
    assert.equal(q?.blocksCreates, true);
    assert.throws(() => lc.create(4, T4Q), (e) => isVgpuError(e, 'VGPU_EBUSY') && /may hold chids, heap/.test(e.message) && e.hint.includes(`vgpuctl vf ${v.vf.bdf} release`));
    const report = await lc.releaseVf(1);
    assert.ok(report.done.some((d) => /RM client unknown/.test(d)));
    assert.deepEqual(r.tasks.running(), []);
    assert.equal(lc.createsBlocked(), false);
    const w = await lc.create(4, T4Q);
    await lc.destroy(w.id);
  });

  it('releasing a VF that is not quarantined is refused; a second release while one runs joins it', async () => {
    const r = await rig();
    const v = await r.lc.create(0, T4Q);
    const lc = restartForgetting(r, v);
    assert.throws(() => lc.releaseVf(5), (e) => isVgpuError(e, 'VGPU_ESTATE') && /not quarantined/.test(e.message));
    lc.holdQuarantined(entryOf(v));
    const [a, b] = await Promise.all([lc.releaseVf(0), lc.releaseVf(0)]);
    assert.deepEqual(a, b);
    assert.equal(r.tasks.shutdowns.filter((g) => g === v.gfid).length, 1, 'the joined release shut the task down once');
  });
});
