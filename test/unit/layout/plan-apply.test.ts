// Plans (only the difference), feasibility checked before the first step, and apply as one transaction, over a
// fake VgpuService (one RTX 6000 Ada-like GPU: 4Q max 12, 8Q max 6, 24Q max 2, 48Q max 1).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  applyLayout, assertFeasible, parseLayoutText, planLayoutRequest, type PlannedLayout,
} from '../../../core/layout/index.js';
import { FAKE_GPU, FakeVgpuService } from '../api/fake-vgpu-service.js';

const layout = (types: string, extra = ''): string => `version: v1\nvgpu-configs:\n  a:\n    - devices: all\n      vgpu-devices: {${types}}\n${extra}`;
const plan = (svc: FakeVgpuService, yaml: string, name?: string): PlannedLayout => planLayoutRequest(svc, parseLayoutText(yaml), name);
const state = (svc: FakeVgpuService) => svc.list().map((v) => `${v.vf}:${v.typeName}`).sort();
const feasible = (p: PlannedLayout) => assertFeasible(p.snap, p.desired, p.plan);

describe('planLayout', () => {
  it('keeps the vGPUs the layout still wants and plans only the difference', async () => {
    const svc = new FakeVgpuService();
    svc.policy = 'heterogeneous';
    const keep = await svc.create({ gpu: FAKE_GPU, type: '8Q' });
    await svc.create({ gpu: FAKE_GPU, type: '4Q' });
    const p = plan(svc, layout('RTX6000-Ada-8Q: 2')).plan;
    const g = p.gpus[0]!;
    assert.equal(p.changes, 2);
    assert.deepEqual(g.destroy.map((d) => d.typeName), ['NVIDIA RTX6000-Ada-4Q']);
    assert.deepEqual(g.create.map((c) => c.typeName), ['NVIDIA RTX6000-Ada-8Q']);
    assert.ok(!g.destroy.some((d) => d.id === keep.id));
    assert.equal(plan(svc, layout('RTX6000-Ada-8Q: 1, NVIDIA RTX6000-Ada-4Q: 1').replace('devices: all', `devices: ["${FAKE_GPU}"]`)).plan.changes, 0);
  });

  it('marks the destroy of an in-use vGPU as blocked, and prefers idle victims', async () => {
    const svc = new FakeVgpuService();
    const a = await svc.create({ gpu: FAKE_GPU, type: '8Q' });
    await svc.create({ gpu: FAKE_GPU, type: '8Q' });
    svc.vgpus.get(a.id)!.inUse = true;
    const one = plan(svc, layout('RTX6000-Ada-8Q: 1')).plan;
    assert.equal(one.blocked.length, 0);
    assert.notEqual(one.gpus[0]!.destroy[0]!.id, a.id);
    assert.deepEqual(plan(svc, layout('')).plan.blocked.map((b) => b.id), [a.id]);
  });
});

describe('feasibility, before the first step', () => {
  it('13 × 4Q (max 12) is refused naming the max; nothing is created', () => {
    const svc = new FakeVgpuService();
    assert.throws(() => plan(svc, layout('RTX6000-Ada-4Q: 13')), /asks for 13 × RTX6000-Ada-4Q .*at most 12 fit/);
    assert.equal(svc.createCalls, 0);
  });

  it('names the binding limit: homogeneous policy, framebuffer, what is available now', async () => {
    const svc = new FakeVgpuService();
    assert.throws(() => feasible(plan(svc, layout('RTX6000-Ada-8Q: 1, RTX6000-Ada-4Q: 1'))), (e: { code: string; message: string; details: { binding: string } }) => {
      assert.equal(e.code, 'VGPU_ESTATE');
      assert.match(e.message, /hosts one vGPU type at a time \(homogeneous policy\)/);
      assert.equal(e.details.binding, 'homogeneous-policy');
      return true;
    });
    svc.policy = 'heterogeneous';
    assert.throws(() => feasible(plan(svc, layout('RTX6000-Ada-24Q: 2, RTX6000-Ada-8Q: 1'))),
      (e: { details: { binding: string }; message: string }) => e.details.binding === 'framebuffer' && /needs 56\.0 GiB .* which has 48\.0 GiB/.test(e.message));
    await svc.create({ gpu: FAKE_GPU, type: '24Q' });
    // Keeping the 24Q and adding two 8Qs and a 24Q would need 64 GiB: the kept vGPU counts.
    assert.throws(() => feasible(plan(svc, layout('RTX6000-Ada-24Q: 2, RTX6000-Ada-8Q: 2'))), /framebuffer|only/);
    assert.throws(() => feasible(plan(svc, layout('RTX6000-Ada-24Q: 1, RTX6000-Ada-4Q: 7'))), /needs 52\.0 GiB/);
    // Only adding (nothing destroyed first): the manager's own "available now" binds (here: less than FB alone
    // would allow, as when management heaps or channels run out first).
    const types = svc.types.bind(svc);
    svc.types = (gpu, o) => types(gpu, o).map((t) => (t.name.endsWith('-4Q') ? { ...t, available: 3 } : t));
    assert.throws(() => feasible(plan(svc, layout('RTX6000-Ada-24Q: 1, RTX6000-Ada-4Q: 4'))),
      (e: { details: { binding: string; available: number }; message: string }) =>
        e.details.binding === 'available' && e.details.available === 3 && /adds 4 × RTX6000-Ada-4Q .* only 3 more fit now/.test(e.message));
    svc.types = types;
    feasible(plan(svc, layout('RTX6000-Ada-24Q: 1, RTX6000-Ada-4Q: 6')));
  });
});

describe('applyLayout', () => {
  it('refuses to destroy an in-use vGPU without force and changes nothing', async () => {
    const svc = new FakeVgpuService();
    const a = await svc.create({ gpu: FAKE_GPU, type: '8Q' });
    svc.vgpus.get(a.id)!.inUse = true;
    const p = plan(svc, layout('RTX6000-Ada-24Q: 1')).plan;
    await assert.rejects(applyLayout(svc, p), { code: 'VGPU_EBUSY' });
    assert.deepEqual(state(svc), ['0:NVIDIA RTX6000-Ada-8Q']);
    assert.equal(svc.destroyCalls, 0);
    const r = await applyLayout(svc, p, { force: true });
    assert.equal(r.destroyed[0], a.id);
    assert.deepEqual(state(svc), ['0:NVIDIA RTX6000-Ada-24Q']);
  });

  it('tags every vGPU it creates with the request id, and reports each step', async () => {
    const svc = new FakeVgpuService();
    const steps: string[] = [];
    await applyLayout(svc, plan(svc, layout('RTX6000-Ada-8Q: 2')).plan, { requestId: 'r-1', onStep: (s) => { steps.push(`${s.kind} ${s.id}`); } });
    assert.deepEqual(svc.list().map((v) => v.requestId), ['r-1', 'r-1']);
    assert.deepEqual(steps, svc.list().map((v) => `created ${v.id}`));
  });

  it('rolls back to the exact state before when a create fails half-way', async () => {
    const svc = new FakeVgpuService({ failCreateAt: 4 }); // 2 setup creates, then the apply's 1st ok, 2nd fails
    await svc.create({ gpu: FAKE_GPU, type: '8Q' });
    await svc.create({ gpu: FAKE_GPU, type: '8Q' });
    const before = state(svc);
    const p = plan(svc, layout('RTX6000-Ada-24Q: 2')).plan;
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
    const p = plan(svc, layout('RTX6000-Ada-24Q: 1')).plan;
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
