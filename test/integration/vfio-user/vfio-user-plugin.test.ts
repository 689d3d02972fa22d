// The vfio-user plugin in a daemon container (Ada HAL with a worker-mode simulated GPU, so the front runs in-process):
// a created vGPU gets its socket and VgpuInfo says where; an attached VMM makes the vGPU "in use" with its pid, so a
// destroy is refused with EBUSY naming that pid, and a forced destroy signals REQ and disconnects the VMM first; a VF
// whose type was only selected through current_vgpu_type gets its vGPU when a VMM connects and loses it when the VMM
// leaves, while a vGPU made by create stays.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fdOpsAvailable, loadFdOps, WATCH_READABLE } from '../../../native/fd-ops.js';
import { isVgpuError } from '../../../core/contracts/exceptions.js';
import type { EventBus } from '../../../core/contracts/events.js';
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
import { createVgpudMetrics } from '../../../plugins/metrics/vgpud-metrics.js';
import type { VgpuAttachments } from '../../../core/contracts/vgpu-attachments.js';
import { createTestContainer, type TestContainer } from '../../helpers/test-container.js';

const skip = fdOpsAvailable() ? false : 'the native addon is not built (npm run build:native)';
const DIR = `/tmp/t6-vfio-user-plugin-${process.pid}`;
const GPU = '0000:63:00.0';

function readable(fd: number): Promise<void> {
  const ops = loadFdOps();
  return new Promise((resolve) => {
    const w = ops.watch(fd, (f) => {
      if ((f & WATCH_READABLE) === 0) return;
      w.close();
      resolve();
    });
    w.start(true, false);
  });
}

/** Resolve when `pred` holds for a vgpu:state event. */
function stateEvent(bus: EventBus, pred: (e: { vgpuId: string; to: string }) => boolean): Promise<{ vgpuId: string; to: string }> {
  return new Promise((resolve) => {
    const off = bus.on('vgpu:state', (e) => {
      if (!pred(e)) return;
      off();
      resolve(e);
    });
  });
}

describe('vfio-user plugin in a daemon container', { skip }, () => {
  let tc: TestContainer;
  let svc: VgpuService;
  let bus: EventBus;

  // The group a VMM runs as (plugins.vfio-user.group): as root, a group this process is not in (65534, nogroup on
  // most distributions), so the socket's group shows the setting took; otherwise our own (chown to another fails).
  const SOCKET_GROUP = process.getuid?.() === 0 ? 65534 : process.getgid?.() ?? 0;

  before(async () => {
    mkdirSync(DIR, { recursive: true });
    tc = await createTestContainer({
      logLevel: 'info',
      plugins: [createAdaHalPlugin(), createScrubPlugin(), createLifecyclePlugin(), createRouterPlugin(), createMigrationPlugin(), createVfioUserPlugin()],
      config: {
        // A loaded shared machine scrubs slowly; what is tested here is not the scrub's speed.
        timeouts: { scrubMs: 120_000 },
        plugins: {
          'hal-ada-lovelace': { devices: [{ board: 'rtx6000-ada', bdf: GPU, mode: 'worker', fbBytes: String(8 * 2 ** 30) }] },
          'vfio-user': { dir: join(DIR, 'sockets'), group: SOCKET_GROUP },
        },
      },
    });
    svc = tc.container.get<VgpuService>(TOKENS.VgpuManager);
    bus = tc.container.get<EventBus>(TOKENS.EventBus);
  });

  after(async () => {
    // The daemon exits after stopping its plugins and never closes the GPUs it probed (their GSP-RM clients would
    // keep this test process alive): close it here.
    const gpu = tc?.container.get(VgpuServiceImpl).lifecycle(GPU).gpu;
    await tc?.stop();
    await gpu?.close().catch(() => undefined);
    rmSync(DIR, { recursive: true, force: true });
  });

  it('serves a created vGPU on <dir>/<VF BDF>.sock (mode 0660, the configured group); VgpuInfo names the socket and the attached VMM', async () => {
    const v = await svc.create({ gpu: GPU, type: '1Q' });
    const socket = await waitForSocket(svc, v.id);
    assert.equal(socket, join(DIR, 'sockets', `${v.vfBdf}.sock`));
    assert.equal(statSync(socket).mode & 0o777, 0o660);
    assert.equal(statSync(socket).gid, SOCKET_GROUP, 'the socket belongs to the configured group (the VMM\'s)');
    assert.equal(svc.get(v.id).vfioUser?.attached, false);
    const c = RawPeer.connect(socket);
    await c.version();
    await until(() => svc.get(v.id).vfioUser?.attached === true);
    assert.equal(svc.get(v.id).vfioUser?.clientPid, process.pid);
    assert.equal(svc.get(v.id).inUse, true);
    // EBUSY naming the VMM's pid.
    await assert.rejects(svc.destroy(v.id), (e: unknown) => isVgpuError(e) && /VMM pid \d+/.test(e.message) && e.details.vmmPid === process.pid);
    // Forced: REQ is signalled, the VMM is disconnected, then the vGPU goes.
    const ops = loadFdOps();
    const req = ops.eventfd();
    assert.equal((await c.call(8, u32s(20, 0x24, 4, 0, 1), [req])).flags & ERROR, 0);
    const requested = readable(req);
    await svc.destroy(v.id, { force: true });
    await requested;
    await c.closedByServer();
    ops.closeFd(req);
    assert.throws(() => svc.get(v.id));
  });

  it('a vGPU made by create stays when its VMM leaves; /metrics counts what its VMM did', async () => {
    const v = await svc.create({ gpu: GPU, type: '1Q' });
    const c = RawPeer.connect(await waitForSocket(svc, v.id));
    await c.version();
    await until(() => svc.get(v.id).vfioUser?.attached === true);
    for (let i = 0; i < 3; i++) await c.call(9, regionAccess(0, 0, 4));
    await c.call(10, regionAccess(0x2100, 0, 4, u32s(1)));
    const m = createVgpudMetrics(() => svc, { processMetrics: false, attachments: () => tc.container.get<VgpuAttachments>(TOKENS.VgpuAttachments) });
    const text = await m.registry.metrics();
    const labels = `vgpu="${v.id}",gpu="${GPU}"`;
    assert.match(text, new RegExp(`vgpud_vgpu_vfio_user_attached\\{${labels},vf="${v.vf}"\\} 1`));
    assert.match(text, new RegExp(`vgpud_vgpu_vfio_user_mmio_accesses_total\\{${labels},op="read"\\} 3`));
    assert.match(text, new RegExp(`vgpud_vgpu_vfio_user_mmio_accesses_total\\{${labels},op="write"\\} 1`));
    assert.match(text, new RegExp(`vgpud_vgpu_vfio_user_interrupts_total\\{${labels}\\} 0`));
    assert.match(text, new RegExp(`vgpud_vgpu_vfio_user_dma_bytes_total\\{${labels}\\} 0`));
    c.close();
    await until(() => svc.get(v.id).vfioUser?.attached === false);
    assert.equal(svc.get(v.id).state, 'ready');
    await svc.destroy(v.id);
  });

  it('a VF with only a type selected: the vGPU is created when a VMM connects and destroyed when it leaves', async () => {
    const vf = svc.vfs!(GPU).find((x) => x.vgpuId === undefined && x.typeId === 0)!;
    const typeId = svc.types(GPU).find((t) => t.name.endsWith('-1Q'))!.id;
    svc.writeVfAttribute(vf.bdf, 'current_vgpu_type', `${typeId}\n`);
    const socket = join(DIR, 'sockets', `${vf.bdf}.sock`);
    await until(() => exists(socket));
    assert.equal(svc.list({ gpu: GPU }).some((x) => x.vf === vf.index), false, 'no vGPU before the VMM opens the VF');
    const created = stateEvent(bus, (e) => e.to === 'ready');
    const c = RawPeer.connect(socket);
    const id = (await created).vgpuId;
    const v = await c.version();
    assert.equal(v.flags & ERROR, 0);
    assert.equal(svc.get(id).vf, vf.index);
    const destroyed = stateEvent(bus, (e) => e.vgpuId === id && e.to === 'destroyed');
    c.close();
    await destroyed;
    assert.equal(svc.readVfAttribute(vf.bdf, 'current_vgpu_type'), `${typeId}\n`, 'the selection stays');
    await until(() => exists(socket));
    svc.writeVfAttribute(vf.bdf, 'current_vgpu_type', '0\n');
    await until(() => !exists(socket));
  });
});

function exists(p: string): boolean {
  try {
    statSync(p);
    return true;
  } catch {
    return false;
  }
}

/** Wait (event-loop turns, no timers) for a condition the plugin makes true asynchronously. */
async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setImmediate(r));
}

async function waitForSocket(svc: VgpuService, id: string): Promise<string> {
  await until(() => svc.get(id).vfioUser?.socket !== undefined && exists(svc.get(id).vfioUser!.socket));
  return svc.get(id).vfioUser!.socket;
}
