// Which GPUs each entry of a config selects, and what each GPU ends up asked for, on a host with three boards.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { expandLayout, parseLayoutText, planLayout, selectLayoutConfig } from '../../../core/layout/index.js';
import { ADA_A, ADA_B, L40S, desiredText, threeBoards } from './layout-fixtures.js';

const entries = (yaml: string) => selectLayoutConfig(parseLayoutText(`version: v1\nvgpu-configs:\n  c:\n${yaml}`), 'c').entries;
const expand = (yaml: string, snap = threeBoards()) => expandLayout('c', entries(yaml), snap);

describe('expanding a config against the host\'s GPUs', () => {
  it('a device-filter entry per board: each GPU gets exactly its board\'s entry', () => {
    const r = expand([
      '    - device-filter: "0x26B110DE"',
      '      devices: all',
      '      vgpu-devices: {RTX6000-Ada-24Q: 2}',
      '    - device-filter: "0x26B910DE"',
      '      devices: all',
      '      vgpu-devices: {L40S-8Q: 3}',
      '    - device-filter: "0x233010DE"', // a board this host does not have
      '      devices: all',
      '      vgpu-devices: {H100-80C: 1}',
    ].join('\n'));
    assert.deepEqual(desiredText(r.desired), [`${ADA_A}: 102×2`, `${L40S}: 201×3`, `${ADA_B}: 102×2`]);
    assert.deepEqual(r.notes, []);
  });

  it('a device-filter list selects any board in it; a subsystem qualifier narrows to one card', () => {
    const both = expand('    - {device-filter: ["0x26B910DE", "0x26B110DE"], devices: all, vgpu-devices: {}}\n');
    assert.deepEqual([...both.desired.keys()].sort(), [ADA_A, L40S, ADA_B].sort());
    const one = expand('    - {device-filter: "0x26B110DE:0x17FA10DE", devices: all, vgpu-devices: {RTX6000-Ada-8Q: 1}}\n');
    assert.deepEqual(desiredText(one.desired), [`${ADA_B}: 101×1`]);
  });

  it('devices: [i] are GPU indices as NVIDIA numbers them: by PCI address unless the service says otherwise', () => {
    // By address: 41:00.0 → 0, 81:00.0 → 1, c1:00.0 → 2.
    assert.deepEqual(desiredText(expand('    - {devices: [0], vgpu-devices: {RTX6000-Ada-48Q: 1}}\n').desired), [`${ADA_A}: 103×1`]);
    assert.deepEqual(desiredText(expand('    - {devices: [1, 2], vgpu-devices: {}}\n').desired), []);
    assert.deepEqual([...expand('    - {devices: [1, 2], vgpu-devices: {}}\n').desired.keys()].sort(), [L40S, ADA_B].sort());
    // The service's index wins (it counts every NVIDIA GPU of the host, also those this daemon does not manage).
    const snap = threeBoards({ index: { [ADA_A]: 1, [L40S]: 2, [ADA_B]: 3 } });
    assert.deepEqual([...expand('    - {devices: [1], vgpu-devices: {}}\n', snap).desired.keys()], [ADA_A]);
    const missing = expand('    - {devices: [0], vgpu-devices: {}}\n', snap);
    assert.equal(missing.desired.size, 0);
    assert.match(missing.notes.join('\n'), /entry 1: GPU index 0 not on this host/);
  });

  it('device-filter and devices together: both must match', () => {
    const r = expand('    - {device-filter: "0x26B110DE", devices: [2], vgpu-devices: {RTX6000-Ada-4Q: 12}}\n');
    assert.deepEqual(desiredText(r.desired), [`${ADA_B}: 100×12`]);
  });

  it('when two entries select one GPU the last one decides, as in NVIDIA\'s tool, and a note says so', () => {
    const r = expand([
      '    - {device-filter: "0x26B110DE", devices: all, vgpu-devices: {RTX6000-Ada-8Q: 2}}',
      '    - {device-filter: "0x26B110DE", devices: [0], vgpu-devices: {RTX6000-Ada-24Q: 1}}',
      '',
    ].join('\n'));
    assert.deepEqual(desiredText(r.desired), [`${ADA_A}: 102×1`, `${ADA_B}: 101×2`]);
    assert.deepEqual(r.notes, [`entry 2 replaces entry 1 for GPU ${ADA_A} (index 0): the last entry that selects a GPU decides, as in NVIDIA's vgpu-device-manager`]);
    // The same entry twice (NVIDIA's example file has such pairs) changes nothing and needs no note.
    const twice = expand('    - {device-filter: "0x26B910DE", devices: all, vgpu-devices: {L40S-24Q: 2}}\n    - {device-filter: "0x26B910DE", devices: all, vgpu-devices: {L40S-24Q: 2}}\n');
    assert.deepEqual(desiredText(twice.desired), [`${L40S}: 202×2`]);
    assert.deepEqual(twice.notes, []);
  });

  it('a config that selects none of the host\'s GPUs is a no-op with a note, not an error', () => {
    const r = expand('    - {device-filter: "0x20B510DE", devices: all, vgpu-devices: {A100D-40C: 2}}\n');
    assert.equal(r.desired.size, 0);
    assert.match(r.notes[0]!, /config 'c' selects none of this host's GPUs \(0000:41:00\.0 \(index 0, 0x26B110DE\), .*\): nothing to do/);
    const plan = planLayout(threeBoards(), r.desired, r.notes);
    assert.equal(plan.changes, 0);
    assert.deepEqual(plan.notes, r.notes);
  });

  it('a count above the type\'s max instances is refused naming the max, before anything is built per instance', () => {
    for (const count of ['13', '1e15', '1000000000000000']) {
      assert.throws(() => expand(`    - {device-filter: "0x26B110DE", devices: all, vgpu-devices: {RTX6000-Ada-4Q: ${count}}}\n`), (e: { code: string; message: string; details: { maxInstances: number } }) => {
        assert.equal(e.code, 'VGPU_EINVAL');
        assert.match(e.message, /at most 12 fit on one GPU \(the type's max instances\)/);
        assert.equal(e.details.maxInstances, 12);
        return true;
      }, count);
    }
    // Two spellings of one type add up.
    assert.throws(() => expand('    - {devices: [0], vgpu-devices: {RTX6000-Ada-24Q: 2, NVIDIA RTX6000-Ada-24Q: 1}}\n'), /asks for 3 × RTX6000-Ada-24Q/);
  });

  it('a GPU in mixed-size (heterogeneous) mode is held to the mixed-size maximum; one in equal-size mode to max instances', () => {
    // NVIDIA's 48 GB mixed-size maxima for these sizes (docs/reference/vgpu-types.md): 4Q 8, 8Q 4, 24Q 2, 48Q 1.
    const withMixed = (policy: 'homogeneous' | 'heterogeneous') => {
      const snap = threeBoards();
      const mixed: Record<string, number> = { 4: 8, 8: 4, 24: 2, 48: 1 };
      return {
        ...snap,
        gpus: snap.gpus.map((g) => ({ ...g, policy })),
        types: new Map([...snap.types].map(([bdf, ts]) => [bdf, ts.map((t) => ({ ...t, maxInstancesMixed: mixed[/-(\d+)Q$/.exec(t.name)![1]!]! }))])),
      };
    };
    const five8q = '    - {devices: [0], vgpu-devices: {RTX6000-Ada-8Q: 5}}\n';
    assert.throws(() => expand(five8q, withMixed('heterogeneous')), (e: { code: string; message: string; details: { maxInstances: number; mode: string } }) => {
      assert.equal(e.code, 'VGPU_EINVAL');
      assert.match(e.message, /asks for 5 × RTX6000-Ada-8Q on GPU 0000:41:00\.0; at most 4 fit on one GPU \(the type's maximum in mixed-size \(heterogeneous\) mode; equal-size mode allows 6\)/);
      assert.deepEqual([e.details.maxInstances, e.details.mode], [4, 'mixed-size']);
      return true;
    });
    assert.deepEqual(desiredText(expand(five8q, withMixed('homogeneous')).desired), [`${ADA_A}: 101×5`]);
  });

  it('type names match exactly: no suffix stripping, and a type must exist on every GPU its entry selects', () => {
    assert.throws(() => expand('    - {devices: [0], vgpu-devices: {RTX6000-Ada-24QX: 1}}\n'), { code: 'VGPU_ENODEV_TYPE' });
    assert.throws(() => expand('    - {devices: [0], vgpu-devices: {24Q: 1}}\n'), { code: 'VGPU_ENODEV_TYPE' });
    assert.throws(() => expand('    - {devices: all, vgpu-devices: {RTX6000-Ada-8Q: 1}}\n'), /GPU 0000:81:00\.0 has no vGPU type 'RTX6000-Ada-8Q'/);
  });
});
