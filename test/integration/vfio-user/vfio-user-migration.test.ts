// VFIO migration driven by the VMM over vfio-user, with the migration plugin behind it (a container: Ada HAL with a
// worker-mode simulated GPU, lifecycle, migration, vfio-user): the source goes RUNNING → PRE_COPY (passes read
// with MIG_DATA_READ, a page dirtied between them is sent again) → STOP_COPY (the rest) → STOP, the destination
// RESUMING (MIG_DATA_WRITE of every byte) → RUNNING, and the destination's BAR1 then reads what the source's held.
// Refused arcs and data commands in the wrong state answer EINVAL; a migration feature probe answers what the vGPU
// supports.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fdOpsAvailable } from '../../../native/fd-ops.js';
import type { VgpuService } from '../../../core/contracts/vgpu-service.js';
import { TOKENS } from '../../../core/tokens.js';
import { createAdaHalPlugin } from '../../../hal/ada-lovelace/ada-hal-plugin.js';
import { createLifecyclePlugin } from '../../../plugins/lifecycle/lifecycle-plugin.js';
import { VgpuServiceImpl } from '../../../plugins/lifecycle/vgpu-service-impl.js';
import { createMigrationPlugin } from '../../../plugins/migration/migration-plugin.js';
import { createRouterPlugin } from '../../../plugins/router/router-plugin.js';
import { createScrubPlugin } from '../../../plugins/scrub/scrub-plugin.js';
import { createVfioUserPlugin } from '../../../plugins/vfio-user/vfio-user-plugin.js';
import { ERROR, RawPeer, regionAccess, u32s } from '../../helpers/raw-vfio-user.js';
import { createTestContainer, type TestContainer } from '../../helpers/test-container.js';

const skip = fdOpsAvailable() ? false : 'the native addon is not built (npm run build:native)';
const DIR = `/tmp/t6-vfio-user-mig-${process.pid}`;
const GPU = '0000:65:00.0';
const GET = 1 << 16;
const SET = 1 << 17;
const PROBE = 1 << 18;
const S = { STOP: 1, RUNNING: 2, STOP_COPY: 3, RESUMING: 4, PRE_COPY: 6 } as const;
const CHUNK = 1 << 20;

async function setState(c: RawPeer, state: number): Promise<{ flags: number; errorNo: number }> {
  return c.call(16, u32s(16, SET | 2, state, 0xffffffff));
}
async function getState(c: RawPeer): Promise<number> {
  const r = await c.call(16, u32s(16, GET | 2, 0, 0));
  assert.equal(r.flags & ERROR, 0, `GET MIG_DEVICE_STATE errno ${r.errorNo}`);
  return r.payload.readUInt32LE(8);
}
/** MIG_DATA_READ until a short answer (PRE_COPY: "no more for now") or an empty one (STOP_COPY: the end). */
async function drain(src: RawPeer, dst: RawPeer, untilEmpty: boolean): Promise<number> {
  let total = 0;
  for (;;) {
    const r = await src.call(17, u32s(8 + CHUNK, CHUNK));
    assert.equal(r.flags & ERROR, 0, `MIG_DATA_READ errno ${r.errorNo}`);
    const n = r.payload.readUInt32LE(4);
    if (n > 0) {
      const w = await dst.call(18, Buffer.concat([u32s(8 + n, n), r.payload.subarray(8, 8 + n)]));
      assert.equal(w.flags & ERROR, 0, `MIG_DATA_WRITE errno ${w.errorNo}`);
      total += n;
    }
    if (n === 0 || (!untilEmpty && n < CHUNK)) return total;
  }
}

describe('VFIO migration over vfio-user (migration plugin behind the device)', { skip }, () => {
  let tc: TestContainer;
  let svc: VgpuService;

  before(async () => {
    mkdirSync(DIR, { recursive: true });
    tc = await createTestContainer({
      logLevel: 'warn',
      plugins: [createAdaHalPlugin(), createScrubPlugin(), createLifecyclePlugin(), createRouterPlugin(), createMigrationPlugin(), createVfioUserPlugin()],
      config: {
        timeouts: { scrubMs: 120_000 },
        plugins: {
          'hal-ada-lovelace': { devices: [{ board: 'rtx6000-ada', bdf: GPU, mode: 'worker', fbBytes: String(8 * 2 ** 30) }] },
          'vfio-user': { dir: join(DIR, 'sockets') },
        },
      },
    });
    svc = tc.container.get<VgpuService>(TOKENS.VgpuManager);
  });

  after(async () => {
    const gpu = tc?.container.get(VgpuServiceImpl).lifecycle(GPU).gpu;
    await tc?.stop();
    await gpu?.close().catch(() => undefined);
    rmSync(DIR, { recursive: true, force: true });
  });

  /** Two 1Q vGPUs, a VMM connected to each (VERSION done): `run` migrates between them; both are destroyed after. */
  async function withPair(run: (src: RawPeer, dst: RawPeer) => Promise<void>): Promise<void> {
    const a = await svc.create({ gpu: GPU, type: '1Q' });
    const b = await svc.create({ gpu: GPU, type: '1Q' });
    const src = RawPeer.connect(await socketOf(svc, a.id));
    const dst = RawPeer.connect(await socketOf(svc, b.id));
    try {
      await src.version();
      await dst.version();
      await run(src, dst);
    } finally {
      src.close();
      dst.close();
    }
    await svc.destroy(a.id, { force: true });
    await svc.destroy(b.id, { force: true });
  }

  // VFIO: when the SET returns, the device is in the new state. A pass with more data than the daemon buffers ahead
  // of the VMM (192 MiB of non-zero pages) waits for the VMM to read — which it does only after STOP_COPY's reply:
  // that reply must still follow the device's stop, and the stop-copy's frames must follow the pass's (one stream).
  it('STOP_COPY while a pre-copy pass waits for the VMM to read: the device is in STOP_COPY when the SET returns', async () => {
    await withPair(async (src, dst) => {
      const mib = randomBytes(CHUNK);
      for (let i = 0; i < 192; i++) {
        mib.writeUInt32LE(i + 1, 0);
        assert.equal((await src.call(10, regionAccess(i * CHUNK, 1, CHUNK, mib))).flags & ERROR, 0);
      }
      assert.equal((await setState(dst, S.RESUMING)).flags & ERROR, 0);
      assert.equal((await setState(src, S.PRE_COPY)).flags & ERROR, 0);
      const head = await src.call(17, u32s(8 + 4096, 4096));
      assert.equal(head.payload.readUInt32LE(4), 4096);
      assert.equal((await dst.call(18, Buffer.concat([u32s(8 + 4096, 4096), head.payload.subarray(8)]))).flags & ERROR, 0);
      assert.equal((await setState(src, S.STOP_COPY)).flags & ERROR, 0);
      assert.equal(await getState(src), S.STOP_COPY, 'a GET right after the SET: the device is stopped');
      await drain(src, dst, true);
      assert.equal((await setState(src, S.STOP)).flags & ERROR, 0);
      assert.equal((await setState(dst, S.RUNNING)).flags & ERROR, 0, 'the destination took one valid stream');
      const last = (await dst.call(9, regionAccess(191 * CHUNK, 1, 4096))).payload.subarray(16);
      assert.ok(last.equals(mib.subarray(0, 4096)), 'the last MiB written arrived');
      assert.equal((await setState(src, S.RUNNING)).flags & ERROR, 0);
    });
  });

  it('source PRE_COPY → STOP_COPY → STOP, destination RESUMING → RUNNING: the destination holds the source\'s FB', async () => {
    await withPair(async (src, dst) => {
      // What the vGPU supports, and a probe that does nothing.
      const f = await src.call(16, Buffer.concat([u32s(16, GET | 1), Buffer.alloc(8)]));
      assert.equal(f.flags & ERROR, 0);
      assert.equal(f.payload.readUInt32LE(8), 0b111, 'STOP_COPY | P2P | PRE_COPY');
      assert.equal((await src.call(16, u32s(16, PROBE | SET | 2, 0, 0))).flags & ERROR, 0);
      assert.equal(await getState(src), S.RUNNING);
      // Data commands outside the saving/resuming states, and an arc VFIO does not have.
      assert.equal((await src.call(17, u32s(8 + 64, 64))).errorNo, 22);
      assert.equal((await dst.call(18, Buffer.concat([u32s(12, 4), Buffer.alloc(4)]))).errorNo, 22);
      assert.equal((await src.call(16, u32s(16, SET | 2, 9, 0xffffffff))).errorNo, 22, 'no state 9');

      const first = randomBytes(256 << 10);
      const dirtied = randomBytes(64 << 10);
      const late = randomBytes(4096);
      await src.call(10, regionAccess(0, 1, first.length, first));
      await src.call(10, regionAccess(0x1000000, 1, late.length, late));

      assert.equal((await setState(dst, S.RESUMING)).flags & ERROR, 0);
      assert.equal(await getState(dst), S.RESUMING);
      assert.equal((await setState(src, S.PRE_COPY)).flags & ERROR, 0);
      const pass1 = await drain(src, dst, false);
      assert.ok(pass1 > first.length, `the first pass carries the FB (${pass1} bytes)`);
      // The guest keeps running in PRE_COPY: a page it writes now goes in a later pass.
      await src.call(10, regionAccess(0x2000000, 1, dirtied.length, dirtied));
      // A pass sends what was found dirty when the previous one ended, and collects what is dirty now: the page
      // written between passes 1 and 2 is collected by pass 2 and sent by pass 3.
      const pass2 = await drain(src, dst, false);
      const pass3 = await drain(src, dst, false);
      assert.ok(pass3 >= dirtied.length && pass2 + pass3 < pass1, `later passes carry the dirtied pages (${pass2} + ${pass3} bytes)`);
      assert.equal((await setState(src, S.STOP_COPY)).flags & ERROR, 0);
      await drain(src, dst, true);
      assert.equal((await setState(src, S.STOP)).flags & ERROR, 0);
      assert.equal(await getState(src), S.STOP);
      assert.equal((await setState(dst, S.RUNNING)).flags & ERROR, 0);
      assert.equal(await getState(dst), S.RUNNING);

      const read = async (offset: number, n: number): Promise<Buffer> => (await dst.call(9, regionAccess(offset, 1, n))).payload.subarray(16);
      assert.ok((await read(0, first.length)).equals(first), 'pre-copied FB');
      assert.ok((await read(0x2000000, dirtied.length)).equals(dirtied), 'the page dirtied during pre-copy');
      assert.ok((await read(0x1000000, late.length)).equals(late));
      // The source runs again when its VMM says so (a failed or cancelled migration).
      assert.equal((await setState(src, S.RUNNING)).flags & ERROR, 0);
    });
  });
});

async function socketOf(svc: VgpuService, id: string): Promise<string> {
  for (;;) {
    const s = svc.get(id).vfioUser?.socket;
    if (s !== undefined && exists(s)) return s;
    await new Promise((r) => setImmediate(r));
  }
}

function exists(p: string): boolean {
  try {
    statSync(p);
    return true;
  } catch {
    return false;
  }
}
