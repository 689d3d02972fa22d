import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isVgpuError } from '../../../core/contracts/exceptions.js';
import { VgpuRpcMsg, decodeBmeState } from '../../../core/firmware-abi/vgpu-mailbox.js';
import { canTransition } from '../../../plugins/lifecycle/vgpu-state.js';
import { chidsPerVgpu } from '../../../plugins/lifecycle/create-steps.js';
import { TYPES, rig } from './lifecycle-rig.js';

const T1Q = TYPES[0]!;
const T4Q = TYPES[1]!;

test('the state table allows only the documented transitions', () => {
  assert.ok(canTransition(null, 'creating'));
  assert.ok(!canTransition(null, 'ready'));
  assert.ok(canTransition('creating', 'failed'));
  assert.ok(!canTransition('creating', 'stopping'));
  assert.ok(!canTransition('destroyed', 'ready'));
  assert.ok(!canTransition('failed', 'creating'));
  assert.ok(canTransition('ready', 'lost'));
  assert.ok(canTransition('lost', 'destroyed'));
});

test('CHIDs per vGPU are prev_pow2(total / max_instance)', () => {
  assert.equal(chidsPerVgpu(2048, 32), 64);
  assert.equal(chidsPerVgpu(2048, 12), 128); // 170 → 128
  assert.equal(chidsPerVgpu(2048, 3), 512); // 682 → 512
  assert.equal(chidsPerVgpu(2048, 1), 2048);
});

test('destroy while creating is refused; a second create on the VF is EBUSY; nothing races', async () => {
  const r = await rig();
  const creating = r.lc.create(0, T1Q);
  const id = r.lc.records()[0]!.id;
  assert.throws(() => r.lc.destroy(id), (e) => isVgpuError(e, 'VGPU_ESTATE'));
  assert.throws(() => r.lc.create(0, T1Q), (e) => isVgpuError(e, 'VGPU_EBUSY'));
  await creating;
  const destroying = r.lc.destroy(id);
  // while it is stopping the VF is still taken, and a second destroy joins the first
  assert.throws(() => r.lc.create(0, T1Q), (e) => isVgpuError(e, 'VGPU_EBUSY'));
  assert.equal(r.lc.destroy(id), destroying);
  await destroying;
  assert.deepEqual(r.states(id), ['creating', 'ready', 'stopping', 'destroyed']);
  assert.deepEqual(r.mock.books(), r.baseline);
  // the VF is free at once after the destroy resolved
  const again = await r.lc.create(0, T1Q);
  await r.lc.destroy(again.id);
});

test('an in-use vGPU needs force to be destroyed', async () => {
  const r = await rig();
  const rec = await r.lc.create(0, T1Q);
  r.lc.setInUse(rec.id, true);
  assert.throws(() => r.lc.destroy(rec.id), (e) => isVgpuError(e, 'VGPU_EBUSY'));
  await r.lc.destroy(rec.id, { force: true });
  assert.deepEqual(r.mock.books(), r.baseline);
});

test('type selection and create stay consistent', async () => {
  const r = await rig();
  r.mgr.abi.writeCurrent(3, '944\n');
  // create on that VF without a type uses the selected one; another type is refused
  assert.throws(() => r.lc.create(3, T1Q), (e) => isVgpuError(e, 'VGPU_EINVAL'));
  const rec = await r.lc.create(3, undefined);
  assert.equal(rec.type.id, 944);
  // the type cannot change while the vGPU exists
  assert.throws(() => r.mgr.abi.writeCurrent(3, '0\n'), (e) => isVgpuError(e, 'VGPU_EBUSY'));
  // homogeneous: a 1Q next to a 4Q is refused by the policy, and nothing is left behind
  const before = r.mock.books();
  assert.throws(() => r.lc.create(4, T1Q), (e) => isVgpuError(e, 'VGPU_EINVAL'));
  assert.deepEqual(r.mock.books(), before);
  await r.lc.destroy(rec.id);
  // an operator's selection survives the destroy
  assert.equal(r.mgr.abi.readCurrent(3), '944\n');
  assert.throws(() => r.lc.create(5, undefined), (e) => isVgpuError(e, 'VGPU_EINVAL'));
});

test('creates on two VFs run in parallel and get disjoint FB slices', async () => {
  const r = await rig();
  const [a, b] = await Promise.all([r.lc.create(0, T4Q), r.lc.create(1, T4Q)]);
  const steps = r.events.filter((x) => x.name === 'vgpu:step').map((x) => x.e as { vgpuId: string; step: string; phase: string });
  const aReady = steps.findIndex((s) => s.vgpuId === a.id && s.step === 'ready' && s.phase === 'done');
  const bBoot = steps.findIndex((s) => s.vgpuId === b.id && s.step === 'rpc-setup' && s.phase === 'begin');
  assert.ok(bBoot >= 0 && bBoot < aReady, 'the second create was in its mailbox set-up before the first was ready');
  const fa = a.res.guestFb!;
  const fbb = b.res.guestFb!;
  assert.ok(fa.offset + fa.size <= fbb.offset || fbb.offset + fbb.size <= fa.offset, 'FB slices are disjoint');
  assert.ok(a.res.chids!.offset + a.res.chids!.count <= b.res.chids!.offset || b.res.chids!.offset + b.res.chids!.count <= a.res.chids!.offset);
  await Promise.all([r.lc.destroy(a.id), r.lc.destroy(b.id)]);
  assert.deepEqual(r.mock.books(), r.baseline);
});

test('reset sends RESET then scrubs; BME sends UPDATE_BME_STATE; both refused unless ready', async () => {
  const r = await rig();
  const rec = await r.lc.create(0, T1Q);
  await r.lc.reset(rec.id);
  await r.lc.setBme(rec.id, true);
  const types = r.tasks.messagesOf(1).map((m) => m.type);
  assert.deepEqual(types.slice(2), [VgpuRpcMsg.RESET, VgpuRpcMsg.UPDATE_BME_STATE]);
  assert.equal(decodeBmeState(r.tasks.messagesOf(1)[3]!.payload).enable, true);
  assert.deepEqual(r.scrubber!.calls.map((c) => c.reason), ['create', 'reset']);
  const d = r.lc.destroy(rec.id);
  assert.throws(() => r.lc.reset(rec.id), (e) => isVgpuError(e, 'VGPU_ESTATE'));
  await d;
});

test('the mailbox has one call in flight per vGPU, bounded waits and typed failures', async () => {
  let inFlight = 0;
  let maxInFlight = 0;
  const r = await rig({
    task: {
      reply: () => { inFlight++; maxInFlight = Math.max(maxInFlight, inFlight); setImmediate(() => { inFlight--; }); },
      resultCode: (t) => (t === VgpuRpcMsg.GET_GUEST_INFO ? 0x22 : 0),
      hang: (t) => t === VgpuRpcMsg.CONSOLE_VNC_STATE,
    },
  });
  const rec = await r.lc.create(0, T1Q);
  const ch = rec.res.channel!;
  await Promise.all(Array.from({ length: 8 }, () => ch.call(VgpuRpcMsg.UPDATE_BME_STATE, new Uint8Array(2))));
  assert.equal(maxInFlight, 1);
  const seqs = r.tasks.messagesOf(1).map((m) => m.seq);
  assert.deepEqual(seqs, seqs.map((_, i) => i + 1), 'sequence numbers go up by one per call');
  await assert.rejects(ch.call(VgpuRpcMsg.GET_GUEST_INFO), (e) => isVgpuError(e, 'VGPU_ERPC') && e.details['resultCode'] === 0x22);
  // The call's own timeout applies, not the rig's 300 ms mailbox default.
  await assert.rejects(ch.call(VgpuRpcMsg.CONSOLE_VNC_STATE, new Uint8Array(0), { timeoutMs: 50 }),
    (e) => isVgpuError(e, 'VGPU_ETIMEDOUT') && e.details['timeoutMs'] === 50);
  await assert.rejects(ch.call(VgpuRpcMsg.UPDATE_BME_STATE, new Uint8Array(5000)), (e) => isVgpuError(e, 'VGPU_EINVAL'));
  await assert.rejects(ch.call(99), (e) => isVgpuError(e, 'VGPU_EINVAL'));
  // a failed call does not block the next one
  await ch.call(VgpuRpcMsg.UPDATE_BME_STATE, new Uint8Array(2));
  await r.lc.destroy(rec.id);
});
