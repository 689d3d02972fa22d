// The per-vGPU device-state machine (DeviceMigration) against the pure FSM: for every (from, to) pair of the
// eight VFIO states, a device driven from `from` to `to` must report (through onArc) exactly the states
// migrationPath(from, to) lists, end in `to`, and refuse without moving (VGPU_EINVAL) where it returns null.
// The device is a fake: an 8-page SAB arena as FB, a firmware that records its RPCs. RESUMING is left with a real
// stream (saved from a second fake device), ERROR is reached by feeding RESUMING garbage.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isVgpuError } from '../../../core/contracts/exceptions.js';
import { loadNativeOps } from '../../../native/index.js';
import { DeviceMigration, type MigrationDevice, type MigrationFirmware, type ResumeHandle, type SaveHandle } from '../../../plugins/migration/device-migration.js';
import { HashDirtyTracker } from '../../../plugins/migration/dirty-tracker.js';
import { arenaRegion } from '../../../plugins/migration/fb-region.js';
import { ALL_STATES, MigState, migStateName, migrationPath } from '../../../plugins/migration/fsm.js';
import type { MigrationCompat } from '../../../plugins/migration/stream/compat.js';

const ops = loadNativeOps();
const PS = 4096;
const SIZE = 8n * BigInt(PS);
const compat: MigrationCompat = {
  vgpuTypeId: 869, vgpuTypeName: 'NVIDIA L40-1B', fbBytes: SIZE, chidCount: 64, firmwareVersion: '570.144', pciVdevId: 0x26b5, pageSize: PS,
};

function fakeDevice(id: string): MigrationDevice & { rpcs: string[] } {
  const arena = ops.createArena({ size: SIZE, backing: 'sab' });
  const region = arenaRegion(arena);
  region.window(0n, PS).fill(0x5a); // one non-zero page: the stream carries data, not only zero runs
  const rpcs: string[] = [];
  const firmware: MigrationFirmware = {
    async stopWork() { rpcs.push('stop'); },
    async resumeWork() { rpcs.push('resume'); },
    async cancelStop() { rpcs.push('cancel-stop'); },
    async *save() { rpcs.push('save'); yield Buffer.from('fw-context'); },
    async cancel() { rpcs.push('cancel-save'); },
    async restore() { rpcs.push('restore'); },
  };
  return {
    id, rpcs, firmware, compat: () => compat, region: () => region,
    dirtySource: () => new HashDirtyTracker(region, PS),
    async reset() { rpcs.push('reset'); },
  };
}

/** A complete, valid device-state stream (a STOP→STOP_COPY save of another device). */
async function validStream(): Promise<Buffer> {
  const d = new DeviceMigration(fakeDevice('src'));
  const h = (await d.setState(MigState.STOP_COPY)) as SaveHandle;
  const parts: Buffer[] = [];
  for await (const c of h.stream!) parts.push(c as Buffer);
  await h.done;
  return Buffer.concat(parts);
}

/** A device in `from`, reached through the machine itself (RESUMING gets a valid stream written to it). */
async function deviceIn(from: MigState, stream: Buffer): Promise<DeviceMigration> {
  const d = new DeviceMigration(fakeDevice(`dev-${migStateName(from)}`));
  if (from === MigState.ERROR) {
    const h = (await d.setState(MigState.RESUMING)) as ResumeHandle;
    h.stream!.end(Buffer.from('not a migration stream'));
    await assert.rejects(d.setState(MigState.STOP));
  } else if (from !== MigState.RUNNING) {
    const h = await d.setState(from);
    if (from === MigState.RESUMING) (h as ResumeHandle).stream!.end(stream);
  }
  assert.equal(d.state, from, `set-up reached ${migStateName(from)}`);
  return d;
}

test('every (from, to) pair walks exactly migrationPath(from, to), and refuses where it is null', async () => {
  const stream = await validStream();
  let walked = 0, refused = 0;
  for (const from of ALL_STATES) {
    for (const to of ALL_STATES) {
      const d = await deviceIn(from, stream);
      const arcs: [MigState, MigState][] = [];
      d.onArc = (a, b) => arcs.push([a, b]);
      const path = migrationPath(from, to);
      const what = `${migStateName(from)} → ${migStateName(to)}`;
      if (path === null) {
        await assert.rejects(d.setState(to), (e: unknown) => isVgpuError(e, 'VGPU_EINVAL'), `${what} refused`);
        assert.equal(d.state, from, `${what}: a refused request does not move the device`);
        assert.deepEqual(arcs, [], `${what}: no arc ran`);
        refused++;
        continue;
      }
      await d.setState(to);
      assert.deepEqual(arcs.map(([, b]) => migStateName(b)), path.map(migStateName), `${what} steps through migrationPath`);
      // Arcs chain: each starts where the previous ended, the first where the device was.
      arcs.forEach(([a], i) => assert.equal(a, i === 0 ? from : arcs[i - 1]![1], `${what}: arc ${i} starts where the last ended`));
      assert.equal(d.state, to, `${what} ends in ${migStateName(to)}`);
      walked++;
    }
  }
  // The FSM itself is checked against the kernel table in fsm.test.ts; here only that both kinds occurred.
  assert.equal(walked + refused, ALL_STATES.length ** 2);
  assert.ok(walked > 0 && refused > 0);
});

test('the firmware work stops and resumes on the arcs that say so', async () => {
  const dev = fakeDevice('fw');
  const d = new DeviceMigration(dev);
  await d.setState(MigState.STOP);
  assert.deepEqual(dev.rpcs, ['stop']);
  await d.setState(MigState.RUNNING);
  assert.deepEqual(dev.rpcs, ['stop', 'resume']);
});
