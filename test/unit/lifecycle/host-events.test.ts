import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isVgpuError, type ExceptionOwner, type GpuException } from '../../../core/contracts/exceptions.js';
import { VgpuRpcMsg } from '../../../core/firmware-abi/vgpu-mailbox.js';
import { RmControl } from '../../../core/firmware-abi/rm-controls.js';
import { BDF, TYPES, rig, type Rig } from './lifecycle-rig.js';

const T1Q = TYPES[0]!;

/** Resolves once vGPU `id` reached state `to` (now or later). */
function stateReached(r: Rig, id: string, to: string): Promise<void> {
  if (r.states(id).includes(to)) return Promise.resolve();
  return new Promise((resolve) => {
    const off = r.bus.on('vgpu:state', (e) => { if (e.vgpuId === id && e.to === to) { off(); resolve(); } });
  });
}

test('sriov-configure tears down the vGPUs on VFs at or above numVfs, and only those', async () => {
  const r = await rig();
  const keep = await r.lc.create(0, T1Q);
  const drop = await r.lc.create(2, T1Q);
  r.lc.setInUse(drop.id, true); // a VMM holds it: torn down anyway, no waiting for the VMM
  r.mock.hostEvent({ kind: 'sriov-configure', numVfs: 2 });
  await stateReached(r, drop.id, 'destroyed');
  await r.lc.idle();
  assert.deepEqual(r.lc.records().map((x) => x.id), [keep.id]);
  assert.equal(keep.state, 'ready');
  const books = r.mock.books();
  assert.deepEqual(books.fbRanges.map((f) => f.owner).sort(), [keep.id, keep.id]);
  assert.deepEqual(books.chidRanges.map((c) => c.owner), [keep.id]);
  await r.lc.destroy(keep.id);
  assert.deepEqual(r.mock.books(), r.baseline);
});

test('unbind tears down every vGPU (even one still being created) and refuses new ones', async () => {
  const r = await rig();
  const a = await r.lc.create(0, T1Q);
  const creating = r.lc.create(1, T1Q);
  r.mock.hostEvent({ kind: 'unbind' });
  const b = await creating;
  await stateReached(r, a.id, 'destroyed');
  await stateReached(r, b.id, 'destroyed');
  await r.lc.idle();
  assert.deepEqual(r.lc.records(), []);
  assert.deepEqual(r.mock.books(), r.baseline);
  assert.equal(r.lc.state, 'unbound');
  assert.throws(() => r.lc.create(2, T1Q), (e) => isVgpuError(e, 'VGPU_ESTATE'));
});

test('suspend quiesces ready vGPUs with MIGRATION_STOP_WORK, resume restarts them', async () => {
  const r = await rig();
  const a = await r.lc.create(0, T1Q);
  r.mock.hostEvent({ kind: 'suspend' });
  await r.lc.idle();
  assert.equal(r.lc.state, 'suspended');
  assert.equal(a.suspended, true);
  assert.throws(() => r.lc.create(1, T1Q), (e) => isVgpuError(e, 'VGPU_ESTATE'));
  r.mock.hostEvent({ kind: 'resume' });
  await r.lc.idle();
  assert.equal(r.lc.state, 'ready');
  assert.equal(a.suspended, false);
  assert.deepEqual(r.tasks.messagesOf(1).map((m) => m.type).slice(2), [VgpuRpcMsg.MIGRATION_STOP_WORK, VgpuRpcMsg.MIGRATION_RESUME_WORK]);
  await r.lc.destroy(a.id);
});

test('a GPU lost puts every vGPU in lost, frees what the host holds, and stays lost without a reset path', async () => {
  const r = await rig({ task: { hang: (t, gfid) => gfid === 3 && t === VgpuRpcMsg.SETUP_CONFIG_PARAMS_AND_INIT }, timeouts: { mailboxMs: 5000 }, noReset: true });
  const a = await r.lc.create(0, T1Q);
  const b = await r.lc.create(1, T1Q);
  const c = r.lc.create(2, T1Q); // hangs in its mailbox set-up
  await new Promise<void>((resolve) => { const off = r.bus.on('vgpu:step', (e) => { if (e.step === 'rpc-setup' && e.phase === 'begin' && e.vgpuId === 'vgpu-3') { off(); resolve(); } }); });
  const lost: string[] = [];
  r.bus.on('gpu:lost', (e) => lost.push(e.gpu));
  r.mock.crash();
  await assert.rejects(c, (e) => isVgpuError(e, 'VGPU_ECREATE') && e.details['step'] === 'rpc-setup');
  await r.lc.idle();
  await r.lc.recovered();
  assert.deepEqual(lost, [BDF]);
  assert.equal(r.lc.state, 'lost');
  assert.match(r.lc.reason ?? '', /crashed/);
  // The create the loss interrupted fails and leaves nothing: no 'lost' vGPU the operator would have to remove.
  assert.deepEqual(r.lc.records().map((x) => [x.id, x.state]), [[a.id, 'lost'], [b.id, 'lost']]);
  assert.deepEqual(r.states('vgpu-3'), ['creating', 'failed']);
  assert.equal(r.mgr.selectionOf(2), undefined, 'the type its create selected is deselected again');
  const books = r.mock.books();
  assert.deepEqual([books.fbRanges, books.mappings, books.chidRanges, books.clients], [[], [], [], []]);
  assert.throws(() => r.lc.create(4, T1Q), (e) => isVgpuError(e, 'VGPU_ELOST'));
  await r.lc.destroy(a.id);
  assert.deepEqual(r.states(a.id), ['creating', 'ready', 'lost', 'destroyed']);
  assert.equal(r.lc.records().length, 1);
});

test('a lost GPU is reset: firmware rebooted, a new manager client with the types, ready again; its vGPUs stay lost until destroyed', async () => {
  const r = await rig();
  const a = await r.lc.create(0, T1Q);
  const b = await r.lc.create(1, T1Q);
  const oldClient = r.mgr.client.hClient;
  const resets: Array<{ phase: string; lostVgpus?: string[] }> = [];
  r.bus.on('gpu:reset', (e) => resets.push({ phase: e.phase, ...(e.lostVgpus !== undefined ? { lostVgpus: e.lostVgpus } : {}) }));
  const ready = new Promise<void>((resolve) => r.bus.once('gpu:ready', () => resolve()));
  r.gpu.crash('GSP-RM crashed (test)');
  await ready;
  assert.equal(r.lc.state, 'ready');
  assert.equal(r.lc.reason, null);
  assert.equal(r.lc.resets, 1);
  assert.deepEqual(resets, [{ phase: 'begin' }, { phase: 'done', lostVgpus: [a.id, b.id] }]);
  assert.deepEqual(r.lc.records().map((x) => [x.id, x.state]), [[a.id, 'lost'], [b.id, 'lost']]);
  assert.ok(a.logLines().some((l) => /did not survive/.test(l)), 'the lost vGPU says why in its log');
  // The firmware is a fresh one: the manager holds a new client, the types were uploaded to it again.
  assert.equal(r.gpu.firmware.state, 'running');
  assert.notEqual(r.mgr.client.hClient, oldClient);
  assert.deepEqual(r.mock.books().clients.map((c) => c.hClient), [r.mgr.client.hClient]);
  const uploads = r.mock.calls.filter((x) => x.op === 'firmware.control' && x.args['cmd'] === RmControl.VGPU_MGR_INTERNAL_PGPU_ADD_VGPU_TYPE && x.outcome === 'ok');
  assert.deepEqual(uploads.map((x) => x.args['hClient']), [oldClient, r.mgr.client.hClient], 'the types went to the old firmware, then to the new one');
  // Usable again: a new vGPU on a free VF, and the lost ones' VFs once an operator removed them.
  const c = await r.lc.create(2, T1Q);
  assert.equal(c.state, 'ready');
  await r.lc.destroy(a.id);
  const again = await r.lc.create(0, T1Q);
  assert.equal(again.state, 'ready');
  await r.lc.destroy(c.id);
  await r.lc.destroy(again.id);
  await r.lc.destroy(b.id);
  assert.deepEqual(r.mock.books(), { ...r.baseline, clients: r.mock.books().clients });
});

test('a reset that fails leaves the GPU lost with the reason; the next loss tries again', async () => {
  const r = await rig();
  await r.lc.create(0, T1Q);
  const fault = r.mock.faults.inject({ op: 'gpu.reset', nth: 1, error: new Error('device did not come back from FLR') });
  const failed = new Promise<void>((resolve) => r.bus.on('gpu:reset', (e) => { if (e.phase === 'failed') resolve(); }));
  r.mock.crash();
  await failed;
  await r.lc.recovered();
  assert.equal(r.lc.state, 'lost');
  assert.match(r.lc.reason ?? '', /GPU reset failed: device did not come back from FLR/);
  assert.throws(() => r.lc.create(3, T1Q), (e) => isVgpuError(e, 'VGPU_ELOST') && /device did not come back/.test(e.message));
  fault.remove();
  const ready = new Promise<void>((resolve) => r.bus.once('gpu:ready', () => resolve()));
  r.gpu.firmware.emitEvent({ eventId: 0, name: 'GPU_LOST', payload: Buffer.from('the device went away again') });
  await ready;
  assert.equal(r.lc.state, 'ready');
  assert.equal((await r.lc.create(3, T1Q)).state, 'ready');
});

test('firmware exceptions tagged with a gfid go to that vGPU; an unknown gfid goes to the GPU', async () => {
  const r = await rig();
  const a = await r.lc.create(4, T1Q); // gfid 5
  const seen: Array<[GpuException, ExceptionOwner]> = [];
  r.relay.subscribe('*', (e, o) => seen.push([e, o]));
  r.gpu.firmware.emitEvent({ eventId: 0x1004, name: 'RC_TRIGGERED', gfid: 5 });
  r.gpu.firmware.emitEvent({ eventId: 0x1005, name: 'MMU_FAULT_QUEUED', gfid: 5 });
  r.gpu.firmware.emitEvent({ eventId: 0x1006, name: 'OS_ERROR_LOG', gfid: 7 });
  assert.deepEqual(seen.map(([e, o]) => [e.kind, o]), [
    ['rc', { kind: 'vgpu', gpu: BDF, vgpuId: a.id }],
    ['mmu-fault', { kind: 'vgpu', gpu: BDF, vgpuId: a.id }],
    ['error-log', { kind: 'gpu', gpu: BDF }],
  ]);
  assert.ok(a.logLines().some((l) => /exception rc/.test(l)));
  assert.ok(r.logger.lines.some((l) => /exception: OS_ERROR_LOG/.test(l.message) && l.meta?.['gfid'] === 7));
  await r.lc.destroy(a.id);
});
