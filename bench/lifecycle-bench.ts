// vGPU create/destroy latency, scrub excluded (no scrubber bound), on two HALs:
//  - the SIMULATED RTX 6000 Ada (worker mode, 8 GiB FB): real GSP-RM RPCs over the shared queues to the GSP thread
//    and the simulated plugin task's FB mailbox — the figures of the last line;
//  - the mock HAL with the fake plugin task (no transport at all: what the step machinery itself costs).
// Floor, measured in the same run on the same GPU and interleaved with the lifecycle cycles (so drift and noise hit
// both alike): the same HAL calls, RPCs and mailbox calls done by hand without the lifecycle (CHIDs, guest FB, heap
// + map + zeroing, RM client, BOOTLOAD, header + BOOTLOADED wait, VERSION_NEGOTIATION, SETUP_CONFIG; then SHUTDOWN,
// CLEANUP, client free, unmap and frees). The ratio is the cost of the steps' bookkeeping, events, checks and journal
// hooks. Last line: lifecycle: create_p50_ms=… destroy_p50_ms=… (scrub excluded)
import type { PhysicalGpu } from '../core/contracts/hal.js';
import type { PgpuManager } from '../core/manager/pgpu-manager.js';
import type { VgpuTypeRecord } from '../core/metadata/metadata-file.js';
import { MgmtHeap, VgpuRpcMsg, encodeConfigParams } from '../core/firmware-abi/vgpu-mailbox.js';
import { RmControl, encodeBootloadParams, encodePluginCleanupParams, encodeShutdownParams } from '../core/firmware-abi/rm-controls.js';
import { HostRpcChannel } from '../plugins/lifecycle/host-rpc-channel.js';
import { STEP_UNITS } from '../plugins/lifecycle/create-steps.js';
import type { GpuLifecycle } from '../plugins/lifecycle/gpu-lifecycle.js';
import { TYPES, rig } from '../test/unit/lifecycle/lifecycle-rig.js';
import { simRig } from '../test/integration/lifecycle/sim-rig.js';
import { fmt } from './lib/timing.js';

const N = Number(process.env['LIFECYCLE_BENCH_N'] ?? 300);
const WARMUP = 20;
const p50 = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const now = (): number => performance.now();
/** The VF the floor uses (the lifecycle cycles VFs 0–3). */
const FLOOR_VF = 7;

interface Figures { create: number[]; destroy: number[]; floorCreate: number[]; floorDestroy: number[] }

/** The bare create + destroy of one vGPU on `gpu`, timed in its two halves. */
async function floorCycle(gpu: PhysicalGpu, mgr: PgpuManager, type: VgpuTypeRecord, out: Figures, record: boolean): Promise<void> {
  const sel = mgr.selectionOf(FLOOR_VF)!;
  const gfid = FLOOR_VF + 1;
  const t0 = now();
  const count = Math.min(64, mgr.channelCount);
  const chids = gpu.channels.alloc(count, 'floor');
  const fb = gpu.memory.reserve({ size: sel.fbBytes, align: mgr.vmmuSegmentSize, at: mgr.placementOffset(sel.placement), owner: 'floor', label: 'guest-fb' });
  const heap = gpu.memory.reserve({ size: type.gspHeapSize, owner: 'floor', label: 'mgmt-heap' });
  const map = gpu.memory.map(heap, { size: BigInt(MgmtHeap.COMM_BUFF_SIZE) });
  map.write(0, new Uint8Array(MgmtHeap.MIGRATION_OFFSET));
  const client = await gpu.firmware.allocClient();
  const h = heap.offset;
  const dbdf = 0x4100 + gfid;
  await gpu.firmware.control(client, RmControl.VGPU_MGR_INTERNAL_BOOTLOAD_GSP_VGPU_PLUGIN_TASK, encodeBootloadParams({
    dbdf, gfid, vgpuType: type.id, vmPid: process.pid, numChannels: count, numPluginChannels: 1, numGuestFbSegments: 1,
    guestFbPhysAddrList: [fb.offset], guestFbLengthList: [fb.size], pluginHeapMemoryPhysAddr: h, pluginHeapMemoryLength: heap.size,
    initTaskLogBuffOffset: h + BigInt(MgmtHeap.INIT_TASK_LOG_OFFSET), initTaskLogBuffSize: BigInt(MgmtHeap.INIT_TASK_LOG_SIZE),
    vgpuTaskLogBuffOffset: h + BigInt(MgmtHeap.VGPU_TASK_LOG_OFFSET), vgpuTaskLogBuffSize: BigInt(MgmtHeap.VGPU_TASK_LOG_SIZE),
    kernelLogBuffOffset: h + BigInt(MgmtHeap.KERNEL_LOG_OFFSET), kernelLogBuffSize: BigInt(MgmtHeap.KERNEL_LOG_SIZE),
  }));
  const ch = new HostRpcChannel({ mapping: map, registers: gpu.registers, gfid, callTimeoutMs: 5000, pollIntervalMs: 1 });
  ch.writeHeader();
  await ch.waitBootloaded(5000);
  await ch.call(VgpuRpcMsg.VERSION_NEGOTIATION);
  await ch.call(VgpuRpcMsg.SETUP_CONFIG_PARAMS_AND_INIT, encodeConfigParams({
    dbdf, vgpu_device_instance_id: client.hClient, vgpu_type: type.id, vm_pid: process.pid, num_channels: count, num_plugin_channels: 1,
  }));
  const t1 = now();
  ch.close('floor done');
  await gpu.firmware.control(client, RmControl.VGPU_MGR_INTERNAL_SHUTDOWN_GSP_VGPU_PLUGIN_TASK, encodeShutdownParams(gfid));
  await gpu.firmware.control(client, RmControl.VGPU_MGR_INTERNAL_VGPU_PLUGIN_CLEANUP, encodePluginCleanupParams(gfid));
  await gpu.firmware.freeClient(client);
  map.unmap();
  gpu.memory.free(heap);
  gpu.memory.free(fb);
  gpu.channels.free(chids);
  const t2 = now();
  if (record) {
    out.floorCreate.push(t1 - t0);
    out.floorDestroy.push(t2 - t1);
  }
}

async function lifecycleCycle(lc: GpuLifecycle, vf: number, type: VgpuTypeRecord, out: Figures, record: boolean): Promise<void> {
  const t0 = now();
  const rec = await lc.create(vf, type);
  const t1 = now();
  await lc.destroy(rec.id);
  const t2 = now();
  if (record) {
    out.create.push(t1 - t0);
    out.destroy.push(t2 - t1);
  }
}

/** WARMUP + N cycles of each, alternating lifecycle and floor. */
async function measure(gpu: PhysicalGpu, mgr: PgpuManager, lc: GpuLifecycle, type: VgpuTypeRecord): Promise<Figures> {
  const out: Figures = { create: [], destroy: [], floorCreate: [], floorDestroy: [] };
  mgr.policy.select(FLOOR_VF, type.id);
  try {
    for (let i = 0; i < WARMUP + N; i++) {
      await lifecycleCycle(lc, i % 4, type, out, i >= WARMUP);
      await floorCycle(gpu, mgr, type, out, i >= WARMUP);
    }
  } finally {
    mgr.policy.deselect(FLOOR_VF);
  }
  return out;
}

function report(what: string, type: VgpuTypeRecord, f: Figures): { create: number; destroy: number } {
  const c = p50(f.create);
  const d = p50(f.destroy);
  const fc = p50(f.floorCreate);
  const fd = p50(f.floorDestroy);
  console.log(`${what}: ${N} cycles of ${type.name}: lifecycle create p50 ${fmt(c)} ms, destroy p50 ${fmt(d)} ms; ` +
    `floor (same calls by hand) create p50 ${fmt(fc)} ms, destroy p50 ${fmt(fd)} ms; ` +
    `ratio create ${fmt(c / fc)}, destroy ${fmt(d / fd)}, create+destroy ${fmt((c + d) / (fc + fd))}`);
  return { create: c, destroy: d };
}

console.log(`steps: ${STEP_UNITS.map((s) => s.name).join(' → ')}; scrub excluded (no scrubber bound); ${WARMUP} warm-up cycles not counted`);

// Mock HAL: no transport, the fake plugin task answers in-process.
{
  const r = await rig({ scrubber: null, timeouts: { bootloadMs: 5000, mailboxMs: 5000 } });
  r.logger.lines.length = 0;
  const type = TYPES[1]!; // -4Q
  report('mock HAL', type, await measure(r.gpu, r.mgr, r.lc, type));
}

// Simulator, worker mode: GSP-RM on its own thread, the plugin task's mailbox in the SAB-backed FB.
const r = await simRig({ bdf: '0000:81:00.0', mode: 'worker', logLevel: 'warn', timeouts: { rpcMs: 5000, bootloadMs: 5000, mailboxMs: 5000 } });
let sim: { create: number; destroy: number };
try {
  const type = r.type('2Q');
  sim = report('simulator (worker mode, RTX 6000 Ada, 8 GiB FB)', type, await measure(r.gpu, r.mgr, r.lc, type));
  const held = await r.books();
  if (JSON.stringify(held, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v)) !== JSON.stringify(r.baseline, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v))) {
    console.log('WARNING: the simulator holds resources after the run (see test/integration/lifecycle)');
  }
} finally {
  await r.stop();
}
console.log(`lifecycle: create_p50_ms=${fmt(sim.create)} destroy_p50_ms=${fmt(sim.destroy)} (scrub excluded)`);
