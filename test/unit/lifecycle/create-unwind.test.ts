import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode, isVgpuError } from '../../../core/contracts/exceptions.js';
import { RmControl } from '../../../core/firmware-abi/rm-controls.js';
import { MgmtHeap, VgpuRpcMsg, decodeConfigParams } from '../../../core/firmware-abi/vgpu-mailbox.js';
import { VfAbiError } from '../../../core/manager/vf-abi-error.js';
import { GiB, MiB, TYPES, rig, vtype, type Rig } from './lifecycle-rig.js';

const T1Q = TYPES[0]!;
const T4Q = TYPES[1]!;

test('create runs C1–C8 and destroy gives back exactly what the GPU had', async () => {
  const r = await rig();
  const rec = await r.lc.create(2, T1Q);
  assert.equal(rec.state, 'ready');
  assert.deepEqual(r.states(rec.id), ['creating', 'ready']);
  const stepsDone = r.events.filter((x) => x.name === 'vgpu:step' && (x.e as { phase: string }).phase === 'done').map((x) => (x.e as { step: string }).step);
  assert.deepEqual(stepsDone, ['register', 'chids', 'guest-fb', 'scrub', 'mgmt-heap', 'rm-client', 'bootload', 'rpc-setup', 'ready']);

  const books = r.mock.books();
  // 2048 CHIDs / 32 instances = 64 (prev_pow2)
  assert.deepEqual(books.chidRanges.map((c) => c.count), [64]);
  const fb = books.fbRanges.find((f) => f.label === 'guest-fb')!;
  const heap = books.fbRanges.find((f) => f.label === 'mgmt-heap')!;
  assert.equal(fb.size, 1n * GiB);
  assert.equal(fb.offset % (512n * MiB), 0n, 'guest FB is VMMU-segment aligned');
  assert.equal(heap.size, 32n * MiB);
  assert.deepEqual(books.mappings.map((m) => [m.rangeId, m.offset, m.size]), [[heap.id, 0n, BigInt(MgmtHeap.COMM_BUFF_SIZE)]]);
  assert.equal(books.clients.length, r.baseline.clients.length + 1);

  const p = r.tasks.bootloads[0]!;
  assert.equal(p.gfid, 3);
  assert.equal(p.vgpuType, 941, 'vgpuType is set (upstream leaves it 0)');
  assert.equal(p.numChannels, 64);
  assert.equal(p.numPluginChannels, 1);
  assert.equal(p.guestFbPhysAddrList[0], fb.offset);
  assert.equal(p.guestFbLengthList[0], fb.size);
  assert.equal(p.pluginHeapMemoryPhysAddr, heap.offset);
  assert.equal(p.initTaskLogBuffOffset, heap.offset + 0x204000n);
  assert.equal(p.kernelLogBuffOffset, heap.offset + 0x264000n);
  for (const e of r.gpu.config.engines) assert.equal(p.chidOffset[e], books.chidRanges[0]!.offset);
  const others = p.chidOffset.filter((_, e) => !r.gpu.config.engines.includes(e));
  assert.ok(others.length > 0 && others.every((v) => v === 0), 'engines the GPU does not have get chidOffset 0');

  const msgs = r.tasks.messagesOf(3);
  assert.deepEqual(msgs.map((m) => [m.type, m.seq]), [[VgpuRpcMsg.VERSION_NEGOTIATION, 1], [VgpuRpcMsg.SETUP_CONFIG_PARAMS_AND_INIT, 2]]);
  const cfg = decodeConfigParams(msgs[1]!.payload);
  assert.equal(cfg.vgpu_type, 941);
  assert.equal(cfg.num_channels, 64);
  assert.equal(cfg.num_plugin_channels, 1);
  assert.equal(cfg.swizz_id, 0);
  assert.equal(cfg.vgpu_device_instance_id, books.clients.at(-1)!.hClient);

  await r.lc.destroy(rec.id);
  assert.deepEqual(r.states(rec.id), ['creating', 'ready', 'stopping', 'destroyed']);
  assert.deepEqual(r.mock.books(), r.baseline);
  assert.deepEqual(r.tasks.shutdowns, [3]);
  assert.deepEqual(r.tasks.cleanups, [3]);
  assert.deepEqual(r.scrubber!.calls.map((c) => c.reason), ['create', 'destroy']);
  assert.equal(r.mgr.selectionOf(2), undefined, 'the type the create selected is deselected again');
});

const BOOTLOAD = (a: Record<string, unknown>): boolean => a['cmd'] === RmControl.VGPU_MGR_INTERNAL_BOOTLOAD_GSP_VGPU_PLUGIN_TASK;

const faults: Array<[string, string, (r: Rig) => void, { taskCleaned?: boolean }?]> = [
  ['chids', 'channels.alloc fails', (r) => { r.mock.faults.inject({ op: 'channels.alloc' }); }],
  ['guest-fb', 'memory.reserve of the guest FB fails', (r) => { r.mock.faults.inject({ op: 'memory.reserve' }); }],
  ['scrub', 'the create scrub fails', (r) => { r.scrubber!.fail = (q) => q.reason === 'create'; }],
  ['mgmt-heap', 'memory.reserve of the heap fails', (r) => { r.mock.faults.inject({ op: 'memory.reserve', nth: 2 }); }],
  ['mgmt-heap', 'the BAR1 map of the heap fails', (r) => { r.mock.faults.inject({ op: 'memory.map' }); }],
  ['rm-client', 'firmware.allocClient fails', (r) => { r.mock.faults.inject({ op: 'firmware.allocClient' }); }],
  ['bootload', 'the BOOTLOAD control fails', (r) => { r.mock.faults.inject({ op: 'firmware.control', match: BOOTLOAD }); }],
  ['bootload', 'the BOOTLOAD control times out', (r) => { r.mock.faults.inject({ op: 'firmware.control', match: BOOTLOAD, mode: 'hang' }); }],
  ['rpc-setup', 'the plugin task never bootloads', (r) => { r.tasks['opts'].noBootloaded = () => true; }, { taskCleaned: true }],
  ['rpc-setup', 'VERSION_NEGOTIATION returns an error', (r) => { r.tasks['opts'].resultCode = (t) => (t === VgpuRpcMsg.VERSION_NEGOTIATION ? 0x57 : 0); }, { taskCleaned: true }],
  ['rpc-setup', 'SETUP_CONFIG never gets an answer (mailbox timeout)', (r) => { r.tasks['opts'].hang = (t) => t === VgpuRpcMsg.SETUP_CONFIG_PARAMS_AND_INIT; }, { taskCleaned: true }],
];

for (const [step, what, breakIt, o] of faults) {
  test(`create fault at '${step}' (${what}): typed error names the step, every resource is freed, the VF is free again`, async () => {
    const r = await rig({ timeouts: { rpcMs: 300 } });
    breakIt(r);
    await assert.rejects(r.lc.create(1, T4Q), (e) => {
      assert.ok(isVgpuError(e, 'VGPU_ECREATE'), String(e));
      assert.equal(e.details['step'], step);
      assert.match(e.message, new RegExp(`step '${step}'`));
      return true;
    });
    assert.deepEqual(r.mock.books(), r.baseline);
    assert.deepEqual(r.lc.records(), []);
    const id = 'vgpu-1';
    assert.deepEqual(r.states(id), ['creating', 'failed']);
    assert.equal(r.mgr.selectionOf(1), undefined);
    if (o?.taskCleaned) {
      assert.deepEqual(r.tasks.shutdowns, [2]);
      assert.deepEqual(r.tasks.cleanups, [2]);
    }
    assert.deepEqual(r.tasks.live(), []);
    // the VF is usable again once the fault is gone
    r.mock.reset();
    r.scrubber!.fail = undefined;
    Object.assign(r.tasks['opts'], { noBootloaded: undefined, resultCode: undefined, hang: undefined });
    const rec = await r.lc.create(1, T4Q);
    assert.equal(rec.state, 'ready');
    await r.lc.destroy(rec.id);
    assert.deepEqual(r.mock.books(), r.baseline);
  });
}

test('a failed destroy scrub still frees the guest FB (upstream leaks it)', async () => {
  const r = await rig();
  const rec = await r.lc.create(0, T1Q);
  r.scrubber!.fail = (q) => q.reason === 'destroy';
  await r.lc.destroy(rec.id);
  assert.deepEqual(r.mock.books(), r.baseline);
  assert.deepEqual(r.states(rec.id).at(-1), 'destroyed');
  assert.ok(r.logger.lines.some((l) => /destroy scrub failed/.test(l.message)));
});

test('failing SHUTDOWN/CLEANUP controls are logged and destroy still frees everything', async () => {
  const r = await rig({ timeouts: { rpcMs: 300 } });
  const rec = await r.lc.create(0, T1Q);
  r.mock.faults.inject({ op: 'firmware.control', times: 2, match: (a) => a['cmd'] === RmControl.VGPU_MGR_INTERNAL_SHUTDOWN_GSP_VGPU_PLUGIN_TASK || a['cmd'] === RmControl.VGPU_MGR_INTERNAL_VGPU_PLUGIN_CLEANUP });
  await r.lc.destroy(rec.id);
  assert.deepEqual(r.mock.books(), r.baseline);
  assert.ok(r.logger.lines.some((l) => /SHUTDOWN_GSP_VGPU_PLUGIN_TASK failed/.test(l.message)));
});

test('without a scrubber, create and reset are refused (typed, nothing made): unscrubbed FB is never handed out', async () => {
  const r = await rig({ scrubber: null });
  const calls = r.mock.calls.length;
  assert.throws(() => r.lc.create(0, T1Q), (e: unknown) => isVgpuError(e, ErrorCode.IllegalState)
    && /no FB scrubber is bound/.test(e.message) && /scrub plugin/.test(e.hint) && /allowUnscrubbedFb/.test(e.hint));
  assert.equal(r.mock.calls.length, calls, 'not one call reached the GPU');
  assert.deepEqual(r.mock.books(), r.baseline);
  assert.equal(r.mgr.selectionOf(0), undefined, 'the VF got no type');
  assert.deepEqual(r.lc.records(), []);
  // The reset refusal (an adopted vGPU on a daemon restarted without the scrub plugin) is proven end to end in
  // test/e2e/scrub-wired.test.ts.
});

test('with allowUnscrubbedFb and no scrubber the create warns once and skips the scrub', async () => {
  const r = await rig({ scrubber: null, allowUnscrubbedFb: true });
  const a = await r.lc.create(0, T1Q);
  const b = await r.lc.create(1, T1Q);
  assert.equal(r.logger.lines.filter((l) => /no FB scrubber/.test(l.message)).length, 1);
  await r.lc.destroy(a.id);
  await r.lc.destroy(b.id);
  assert.deepEqual(r.mock.books(), r.baseline);
});

test('with ECC on, an ECC-incapable type is selectable as upstream and its create fails with ENODEV, making nothing', async () => {
  const T1B = vtype(9020, 'NVIDIA RTX6000-Ada-1B', 1, 32, { eccSupported: false });
  const r = await rig({ ecc: true, types: [...TYPES, T1B] });
  // Listed on the empty GPU and accepted by current_vgpu_type, as RFC v2 vfio_sysfs.c does.
  assert.match(r.mgr.abi.readCreatable(1), /^9020  : NVIDIA RTX6000-Ada-1B$/m);
  r.mgr.abi.writeCurrent(1, '9020\n');
  const enodev = (e: unknown): boolean => e instanceof VfAbiError && e.errno === 'ENODEV';
  // The lifecycle refuses synchronously, before its first step, like its other up-front checks.
  assert.throws(() => r.lc.create(1, undefined), enodev);
  assert.equal(r.mgr.abi.readCurrent(1), '9020\n', 'the selection the operator wrote stays, as upstream');
  // A create that selects the type itself leaves the VF as it found it.
  assert.throws(() => r.lc.create(2, T1B), enodev);
  assert.equal(r.mgr.abi.readCurrent(2), '0\n');
  assert.deepEqual(r.mock.books(), r.baseline, 'no FB, CHIDs, clients or mappings were taken');
  assert.equal(r.lc.records().length, 0);
  r.mgr.abi.writeCurrent(1, '0');

});
