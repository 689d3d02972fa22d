import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { applyLayout, snapshot } from '../../../plugins/api/layout/apply-layout.js';
import { parseLayoutFile, selectLayoutConfig } from '../../../plugins/api/layout/layout-schema.js';
import { desiredFromEntries, planLayout } from '../../../plugins/api/layout/plan-layout.js';
import { FAKE_GPU, FakeVgpuService } from './fake-vgpu-service.js';

const file = (body: string): string => `version: v1\nvgpu-configs:\n${body}`;
const plan = (svc: FakeVgpuService, yaml: string, name?: string) => {
  const snap = snapshot(svc);
  return planLayout(snap, desiredFromEntries(selectLayoutConfig(parseLayoutFile(yaml), name).entries, snap));
};
const state = (svc: FakeVgpuService) => svc.list().map((v) => `${v.vf}:${v.typeName}`).sort();

describe('layout files', () => {
  it('rejects unknown keys, a wrong version and negative counts, naming the key', () => {
    assert.throws(() => parseLayoutFile(file('  a:\n    - devices: all\n      vgpu-devices: {8Q: 1}\n      extra: 1\n')), /extra: unknown key/);
    assert.throws(() => parseLayoutFile('version: v2\nvgpu-configs: {}\n'), /version/);
    assert.throws(() => parseLayoutFile(file('  a:\n    - devices: all\n      vgpu-devices: {8Q: -1}\n')), /vgpu-devices/);
    assert.throws(() => parseLayoutFile('version: [\n'), { code: 'VGPU_EINVAL' });
  });

  it('needs -c when the file has several configs and names the choices', () => {
    const f = parseLayoutFile(file('  a:\n    - {devices: all, vgpu-devices: {}}\n  b:\n    - {devices: all, vgpu-devices: {}}\n'));
    assert.throws(() => selectLayoutConfig(f), (e: { hint: string }) => /pass -c NAME, one of: a, b/.test(e.hint));
    assert.throws(() => selectLayoutConfig(f, 'c'), { code: 'VGPU_ENOENT' });
    assert.equal(selectLayoutConfig(f, 'b').name, 'b');
  });

  it('refuses a type name that only matches after suffix stripping (no silent substitution)', () => {
    const svc = new FakeVgpuService();
    assert.throws(() => plan(svc, file('  a:\n    - devices: all\n      vgpu-devices: {RTX6000-Ada-24QX: 1}\n')), { code: 'VGPU_ENODEV_TYPE' });
    assert.throws(() => plan(svc, file('  a:\n    - devices: ["0000:99:00.0"]\n      vgpu-devices: {}\n')), /does not manage/);
  });
});

describe('planLayout', () => {
  it('keeps the vGPUs the layout still wants and plans only the difference', async () => {
    const svc = new FakeVgpuService();
    svc.policy = 'heterogeneous';
    const keep = await svc.create({ gpu: FAKE_GPU, type: '8Q' });
    await svc.create({ gpu: FAKE_GPU, type: '4Q' });
    const p = plan(svc, file('  a:\n    - devices: all\n      vgpu-devices: {RTX6000-Ada-8Q: 2}\n'));
    const g = p.gpus[0]!;
    assert.equal(p.changes, 2);
    assert.deepEqual(g.destroy.map((d) => d.typeName), ['NVIDIA RTX6000-Ada-4Q']);
    assert.deepEqual(g.create.map((c) => c.typeName), ['NVIDIA RTX6000-Ada-8Q']);
    assert.ok(!g.destroy.some((d) => d.id === keep.id));
    assert.equal(plan(svc, file(`  a:\n    - devices: ["${FAKE_GPU}"]\n      vgpu-devices: {RTX6000-Ada-8Q: 1, NVIDIA RTX6000-Ada-4Q: 1}\n`)).changes, 0);
  });

  it('marks the destroy of an in-use vGPU as blocked, and prefers idle victims', async () => {
    const svc = new FakeVgpuService();
    const a = await svc.create({ gpu: FAKE_GPU, type: '8Q' });
    await svc.create({ gpu: FAKE_GPU, type: '8Q' });
    svc.vgpus.get(a.id)!.inUse = true;
    const one = plan(svc, file('  a:\n    - devices: all\n      vgpu-devices: {RTX6000-Ada-8Q: 1}\n'));
    assert.equal(one.blocked.length, 0);
    assert.notEqual(one.gpus[0]!.destroy[0]!.id, a.id);
    const none = plan(svc, file('  a:\n    - devices: all\n      vgpu-devices: {}\n'));
    assert.deepEqual(none.blocked.map((b) => b.id), [a.id]);
  });
});

describe('applyLayout', () => {
  it('refuses to destroy an in-use vGPU without force and changes nothing', async () => {
    const svc = new FakeVgpuService();
    const a = await svc.create({ gpu: FAKE_GPU, type: '8Q' });
    svc.vgpus.get(a.id)!.inUse = true;
    const p = plan(svc, file('  a:\n    - devices: all\n      vgpu-devices: {RTX6000-Ada-24Q: 1}\n'));
    await assert.rejects(applyLayout(svc, p), { code: 'VGPU_EBUSY' });
    assert.deepEqual(state(svc), ['0:NVIDIA RTX6000-Ada-8Q']);
    assert.equal(svc.destroyCalls, 0);
    const r = await applyLayout(svc, p, { force: true });
    assert.equal(r.destroyed[0], a.id);
    assert.deepEqual(state(svc), ['0:NVIDIA RTX6000-Ada-24Q']);
  });

  it('rolls back to the exact state before when a create fails half-way', async () => {
    const svc = new FakeVgpuService({ failCreateAt: 4 }); // 2 setup creates, then the apply's 1st ok, 2nd fails
    await svc.create({ gpu: FAKE_GPU, type: '8Q' });
    await svc.create({ gpu: FAKE_GPU, type: '8Q' });
    const before = state(svc);
    const p = plan(svc, file('  a:\n    - devices: all\n      vgpu-devices: {RTX6000-Ada-24Q: 2}\n'));
    assert.equal(p.gpus[0]!.destroy.length, 2);
    assert.equal(p.gpus[0]!.create.length, 2);
    const err = await applyLayout(svc, p).then(() => undefined, (e: unknown) => e as { code: string; message: string; details: Record<string, unknown> });
    assert.ok(err, 'apply should fail');
    assert.equal(err.code, 'VGPU_ENOSPC');
    assert.match(err.message, /rolled back/);
    assert.deepEqual(err.details.rollbackFailures, []);
    // Same VFs, same types as before: the destroyed 8Qs came back, the created 24Q is gone.
    assert.deepEqual(state(svc), before);
  });

  it('says ROLLBACK INCOMPLETE and lists the step when the rollback itself fails', async () => {
    const svc = new FakeVgpuService();
    await svc.create({ gpu: FAKE_GPU, type: '8Q' }); // create call 1 (setup)
    const p = plan(svc, file('  a:\n    - devices: all\n      vgpu-devices: {RTX6000-Ada-24Q: 1}\n'));
    // The apply destroys the 8Q, its create of the 24Q (call 2) fails, and the rollback's re-create (call 3) too.
    const orig = svc.create.bind(svc);
    svc.create = async (req) => {
      if (svc.createCalls >= 1) { svc.createCalls += 1; throw new Error('device fell off the bus'); }
      return orig(req);
    };
    await assert.rejects(applyLayout(svc, p), (e: { message: string; details: { rollbackFailures: unknown[] } }) => {
      assert.match(e.message, /ROLLBACK INCOMPLETE/);
      assert.equal(e.details.rollbackFailures.length, 1);
      return true;
    });
  });
});
