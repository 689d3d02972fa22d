// vGPU create/destroy latency, scrub excluded (no scrubber bound), on two HALs:
//  - the SIMULATED RTX 6000 Ada (worker mode, 8 GiB FB): real GSP-RM RPCs over the shared queues to the GSP thread
//    and the simulated plugin task's FB mailbox — the figures of the last line;
//  - the mock HAL with the fake plugin task (no transport at all: what the step machinery itself costs).
// Floor, measured in the same run on the same GPU and interleaved with the lifecycle cycles (so drift and noise hit
// both alike): the same HAL calls, RPCs and mailbox calls done by hand without the lifecycle (CHIDs, guest FB, heap
// + map + zeroing, RM client, BOOTLOAD, header + BOOTLOADED wait, VERSION_NEGOTIATION, SETUP_CONFIG; then SHUTDOWN,
// CLEANUP, client free, unmap and frees). The ratio is the cost of the steps' bookkeeping, events, checks and journal
// hooks. Per step (issue 15 item 4): every lifecycle step is timed from its bus events ('vgpu:step' begin → done for
// a create step; undo → the next undo for a destroy step) and every floor call on its own, p50 and p99 each, so a
// step's cost sits next to the same calls' cost by hand. Round-trip floor (issue 15 item 4: "the floor is the firmware
// round trips a create needs, not a polling interval"): each floor cycle also times one bare GSP RPC (NOP) and one bare
// mailbox call (VERSION_NEGOTIATION), outside its two halves; a create needs 4 + 2 of them, served one at a time, and
// their p50s summed are `roundtrip_floor_ms`. Where the wake-ups went (the "wake-ups" line): how often the host's
// reply-wait and mailbox spins caught their answer (core/runtime/adaptive-spin.ts), and how often the simulated GSP
// thread slept against how often its look after a reply caught the next command (hal/sim/gsp/firmware-spin.ts).
// Last line: lifecycle: create_p50_ms=… destroy_p50_ms=… …
import type { EventBus } from '../core/contracts/events.js';
import type { PhysicalGpu } from '../core/contracts/hal.js';
import type { PgpuManager } from '../core/manager/pgpu-manager.js';
import type { VgpuTypeRecord } from '../core/metadata/metadata-file.js';
import { MgmtHeap, VgpuRpcMsg, encodeConfigParams } from '../core/firmware-abi/vgpu-mailbox.js';
import { RmControl, encodeBootloadParams, encodePluginCleanupParams, encodeShutdownParams } from '../core/firmware-abi/rm-controls.js';
import { HostRpcChannel } from '../plugins/lifecycle/host-rpc-channel.js';
import { GspFunction } from '../hal/gsp/gsp-layout.js';
import { STEP_UNITS } from '../plugins/lifecycle/create-steps.js';
import { TYPES, rig } from '../test/unit/lifecycle/lifecycle-rig.js';
import { simRig, type SimRig } from '../test/integration/lifecycle/sim-rig.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ExceptionRelayImpl } from '../core/exception-relay.js';
import { FileVgpuJournal } from '../plugins/state/file-vgpu-journal.js';
import { GpuLifecycle } from '../plugins/lifecycle/gpu-lifecycle.js';
import { JournalSequenceBlock } from '../core/alloc/journal-sequence-block.js';
import { fmt } from './lib/timing.js';
import { cpuModel, loadAverage, percentile } from './lib/proc-stats.js';
import { GspFirmwareClient } from '../hal/gsp-gpu/gsp-firmware-client.js';

const N = Number(process.env['LIFECYCLE_BENCH_N'] ?? 300);
const WARMUP = 20;
const p50 = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const now = (): number => performance.now();
/** The VF the floor uses (the lifecycle cycles VFs 0–3). */
const FLOOR_VF = 7;
/** The floor writes the control-buffer header before BOOTLOAD, as the lifecycle does (see create-steps.ts). */
const HEADER_FIRST = process.env['LIFECYCLE_BENCH_HEADER_AFTER'] !== '1';

/** Samples (ms) by name, in first-seen order. */
class Samples {
  readonly by = new Map<string, number[]>();
  add(name: string, ms: number): void {
    const xs = this.by.get(name);
    if (xs === undefined) this.by.set(name, [ms]);
    else xs.push(ms);
  }
}

interface Figures {
  create: number[]; destroy: number[]; floorCreate: number[]; floorDestroy: number[];
  /** CPU time of the whole process (every thread: the simulated GSP runs on a worker) per create+destroy, ms. */
  cpu: number[]; floorCpu: number[];
  /** Lifecycle steps: 'create:<step>', 'destroy:<step>', plus what lies outside any step. */
  steps: Samples;
  /** Floor calls: 'create:<call>', 'destroy:<call>'. */
  floor: Samples;
  /** Bare round trips: 'rpc' (GSP NOP), 'mailbox' (VERSION_NEGOTIATION). */
  roundTrips: Samples;
}

/** A stopwatch for the floor: `lap(name)` records the time since the previous lap. */
function laps(out: Samples | null, phase: string): (name: string) => void {
  let t = now();
  return (name) => {
    const t1 = now();
    out?.add(`${phase}:${name}`, t1 - t);
    t = t1;
  };
}

/** The bare create + destroy of one vGPU on `gpu`, timed in its two halves and call by call. */
async function floorCycle(gpu: PhysicalGpu, mgr: PgpuManager, type: VgpuTypeRecord, out: Figures, record: boolean): Promise<void> {
  const sel = mgr.selectionOf(FLOOR_VF)!;
  const gfid = FLOOR_VF + 1;
  const t0 = now();
  let lap = laps(record ? out.floor : null, 'create');
  const count = Math.min(64, mgr.channelCount);
  const chids = gpu.channels.alloc(count, 'floor');
  lap('chids');
  const fb = gpu.memory.reserve({ size: sel.fbBytes, align: mgr.vmmuSegmentSize, at: mgr.placementOffset(sel.placement), owner: 'floor', label: 'guest-fb' });
  lap('guest-fb');
  const heap = gpu.memory.reserve({ size: type.gspHeapSize, owner: 'floor', label: 'mgmt-heap' });
  const map = gpu.memory.map(heap, { size: BigInt(MgmtHeap.COMM_BUFF_SIZE) });
  map.write(0, new Uint8Array(MgmtHeap.MIGRATION_OFFSET));
  lap('mgmt-heap');
  const client = await gpu.firmware.allocClient();
  lap('rm-client');
  const h = heap.offset;
  const dbdf = 0x4100 + gfid;
  const ch = new HostRpcChannel({ mapping: map, registers: gpu.registers, gfid, callTimeoutMs: 5000, pollIntervalMs: 1 });
  if (HEADER_FIRST) ch.writeHeader();
  await gpu.firmware.control(client, RmControl.VGPU_MGR_INTERNAL_BOOTLOAD_GSP_VGPU_PLUGIN_TASK, encodeBootloadParams({
    dbdf, gfid, vgpuType: type.id, vmPid: process.pid, numChannels: count, numPluginChannels: 1, numGuestFbSegments: 1,
    guestFbPhysAddrList: [fb.offset], guestFbLengthList: [fb.size], pluginHeapMemoryPhysAddr: h, pluginHeapMemoryLength: heap.size,
    initTaskLogBuffOffset: h + BigInt(MgmtHeap.INIT_TASK_LOG_OFFSET), initTaskLogBuffSize: BigInt(MgmtHeap.INIT_TASK_LOG_SIZE),
    vgpuTaskLogBuffOffset: h + BigInt(MgmtHeap.VGPU_TASK_LOG_OFFSET), vgpuTaskLogBuffSize: BigInt(MgmtHeap.VGPU_TASK_LOG_SIZE),
    kernelLogBuffOffset: h + BigInt(MgmtHeap.KERNEL_LOG_OFFSET), kernelLogBuffSize: BigInt(MgmtHeap.KERNEL_LOG_SIZE),
  }));
  lap('bootload');
  if (!HEADER_FIRST) ch.writeHeader();
  await ch.waitBootloaded(5000);
  lap('bootloaded-wait');
  await ch.call(VgpuRpcMsg.VERSION_NEGOTIATION);
  lap('version-negotiation');
  await ch.call(VgpuRpcMsg.SETUP_CONFIG_PARAMS_AND_INIT, encodeConfigParams({
    dbdf, vgpu_device_instance_id: client.hClient, vgpu_type: type.id, vm_pid: process.pid, num_channels: count, num_plugin_channels: 1,
  }));
  lap('setup-config');
  const t1 = now();
  // The bare round trips, outside both halves: the cheapest GSP RPC (NOP) and the cheapest mailbox call
  // (VERSION_NEGOTIATION again: a u32 read and written back). A create needs 4 + 2 of them (see roundTripFloor).
  let r0 = now();
  await gpu.firmware.rpc(GspFunction.NOP, new Uint8Array(0));
  let r1 = now();
  if (record) out.roundTrips.add('rpc', r1 - r0);
  r0 = r1;
  await ch.call(VgpuRpcMsg.VERSION_NEGOTIATION);
  r1 = now();
  if (record) out.roundTrips.add('mailbox', r1 - r0);
  lap = laps(record ? out.floor : null, 'destroy');
  ch.close('floor done');
  await gpu.firmware.control(client, RmControl.VGPU_MGR_INTERNAL_SHUTDOWN_GSP_VGPU_PLUGIN_TASK, encodeShutdownParams(gfid));
  lap('shutdown');
  await gpu.firmware.control(client, RmControl.VGPU_MGR_INTERNAL_VGPU_PLUGIN_CLEANUP, encodePluginCleanupParams(gfid));
  lap('cleanup');
  await gpu.firmware.freeClient(client);
  lap('free-client');
  map.unmap();
  gpu.memory.free(heap);
  lap('mgmt-heap');
  gpu.memory.free(fb);
  lap('guest-fb');
  gpu.channels.free(chids);
  lap('chids');
  const t2 = now();
  if (record) {
    out.floorCreate.push(t1 - t0);
    out.floorDestroy.push(t2 - t1);
  }
}

/** Step timings of one create or destroy, from the lifecycle's own 'vgpu:step' events. */
class StepClock {
  private marks: Array<{ step: string; phase: string; t: number }> = [];
  constructor(bus: EventBus) {
    bus.on('vgpu:step', (e) => { this.marks.push({ step: e.step, phase: e.phase, t: now() }); });
  }

  reset(): void {
    this.marks = [];
  }

  /**
   * Create: each step begin → done; what lies between (journal writes, state changes, the loop's turns) goes to
   * 'create:(between steps)', what precedes and follows the steps to its own entries. Destroy: the undo events only mark a start, so a step runs until the next one; before
   * the first is the destroy's own set-up, after the last its bookkeeping.
   */
  record(out: Samples, phase: 'create' | 'destroy', t0: number, t1: number): void {
    if (phase === 'create') {
      let inSteps = 0;
      const open = new Map<string, number>();
      for (const m of this.marks) {
        if (m.phase === 'begin') open.set(m.step, m.t);
        else if (m.phase === 'done' && open.has(m.step)) {
          const d = m.t - open.get(m.step)!;
          inSteps += d;
          out.add(`create:${m.step}`, d);
        }
      }
      const first = this.marks[0]?.t ?? t0;
      const last = this.marks.at(-1)?.t ?? t1;
      // Before the first event: create()'s synchronous checks and the VF's type selection (register emits at its
      // end); after the last: what follows 'ready' (the journal's 'ready' record, the state change, the caller's turn).
      out.add('create:(before register)', first - t0);
      out.add('create:(between steps)', last - first - inSteps);
      out.add('create:(after ready)', t1 - last);
      return;
    }
    const undos = this.marks.filter((m) => m.phase === 'undo');
    if (undos.length === 0) return;
    out.add('destroy:(before the first undo)', undos[0]!.t - t0);
    undos.forEach((m, i) => out.add(`destroy:${m.step}`, (undos[i + 1]?.t ?? t1) - m.t));
  }
}

async function lifecycleCycle(lc: GpuLifecycle, clock: StepClock, vf: number, type: VgpuTypeRecord, out: Figures, record: boolean): Promise<void> {
  clock.reset();
  const t0 = now();
  const rec = await lc.create(vf, type);
  const t1 = now();
  if (record) clock.record(out.steps, 'create', t0, t1);
  clock.reset();
  await lc.destroy(rec.id);
  const t2 = now();
  if (record) {
    clock.record(out.steps, 'destroy', t1, t2);
    out.create.push(t1 - t0);
    out.destroy.push(t2 - t1);
  }
}

/** WARMUP + N cycles of each, alternating lifecycle and floor. */
async function measure(gpu: PhysicalGpu, mgr: PgpuManager, lc: GpuLifecycle, bus: EventBus, type: VgpuTypeRecord): Promise<Figures> {
  const out: Figures = {
    create: [], destroy: [], floorCreate: [], floorDestroy: [], cpu: [], floorCpu: [], steps: new Samples(), floor: new Samples(), roundTrips: new Samples(),
  };
  const clock = new StepClock(bus);
  mgr.policy.select(FLOOR_VF, type.id);
  try {
    for (let i = 0; i < WARMUP + N; i++) {
      let c0 = process.cpuUsage();
      await lifecycleCycle(lc, clock, i % 4, type, out, i >= WARMUP);
      let c = process.cpuUsage(c0);
      if (i >= WARMUP) out.cpu.push((c.user + c.system) / 1000);
      c0 = process.cpuUsage();
      await floorCycle(gpu, mgr, type, out, i >= WARMUP);
      c = process.cpuUsage(c0);
      if (i >= WARMUP) out.floorCpu.push((c.user + c.system) / 1000);
    }
  } finally {
    mgr.policy.deselect(FLOOR_VF);
  }
  return out;
}

interface Summary { create: number; destroy: number; p99: number; perSecond: number; roundTripFloor: number }

/**
 * The firmware round trips a create cannot do without, served one at a time (docs/reference/create-order.md): three
 * RM_ALLOCs (client, device, subdevice) and BOOTLOAD on the GSP queues, VERSION_NEGOTIATION and SETUP_CONFIG on the
 * vGPU's mailbox. Their cost at the bare round trip is the floor a create's p50 is held against: what is left above
 * it is the firmware's own work in those calls and the lifecycle's steps, not a polling interval.
 */
const CREATE_RPCS = 4;
const CREATE_MAILBOX_CALLS = 2;

function report(what: string, type: VgpuTypeRecord, f: Figures): Summary {
  const c = p50(f.create);
  const d = p50(f.destroy);
  const fc = p50(f.floorCreate);
  const fd = p50(f.floorDestroy);
  console.log(`${what}: ${N} cycles of ${type.name}: lifecycle create p50 ${fmt(c)} ms, destroy p50 ${fmt(d)} ms; ` +
    `floor (same calls by hand) create p50 ${fmt(fc)} ms, destroy p50 ${fmt(fd)} ms; ` +
    `ratio create ${fmt(c / fc)}, destroy ${fmt(d / fd)}, create+destroy ${fmt((c + d) / (fc + fd))}`);
  // CPU time is what a loaded host does not inflate much (wall time there is mostly waiting for a core).
  const cpuMean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
  console.log(`  CPU per create+destroy (all threads, mean): lifecycle ${fmt(cpuMean(f.cpu))} ms, floor ${fmt(cpuMean(f.floorCpu))} ms, ratio ${fmt(cpuMean(f.cpu) / cpuMean(f.floorCpu))}`);
  const line = (s: Samples, phase: string): string => [...s.by].filter(([k]) => k.startsWith(`${phase}:`))
    .map(([k, xs]) => `${k.slice(phase.length + 1)} ${fmt(p50(xs))}/${fmt(percentile(xs, 99))}`).join(', ');
  for (const phase of ['create', 'destroy']) {
    console.log(`  ${phase} steps, p50/p99 ms: ${line(f.steps, phase)}`);
    console.log(`  ${phase} floor calls, p50/p99 ms: ${line(f.floor, phase)}`);
  }
  const rpc = p50(f.roundTrips.by.get('rpc') ?? [NaN]);
  const mailbox = p50(f.roundTrips.by.get('mailbox') ?? [NaN]);
  const roundTripFloor = CREATE_RPCS * rpc + CREATE_MAILBOX_CALLS * mailbox;
  console.log(`  round trips a create needs: ${CREATE_RPCS} GSP RPCs (3 RM_ALLOC, BOOTLOAD) at the bare NOP's p50 ${(rpc * 1000).toFixed(0)} µs + ` +
    `${CREATE_MAILBOX_CALLS} mailbox calls (VERSION_NEGOTIATION, SETUP_CONFIG) at a bare VERSION_NEGOTIATION's p50 ${(mailbox * 1000).toFixed(0)} µs ` +
    `= ${fmt(roundTripFloor)} ms; create p50 / that ${fmt(c / roundTripFloor)}`);
  const cycles = f.create.map((x, i) => x + f.destroy[i]!).reduce((a, b) => a + b, 0);
  return { create: c, destroy: d, p99: percentile(f.create, 99), perSecond: (f.create.length * 1000) / cycles, roundTripFloor };
}

/**
 * The same cycles through a lifecycle with the daemon's write-ahead journal (FileVgpuJournal in a temp dir on the
 * state dir's file system, LIFECYCLE_BENCH_STATE_DIR; default the OS temp dir): what the journal's atomic writes
 * (temp file, fsync, rename, directory fsync) add to each step. No floor: the floor has no journal.
 */
async function journalled(r: SimRig, type: VgpuTypeRecord): Promise<void> {
  const dir = mkdtempSync(join(process.env['LIFECYCLE_BENCH_STATE_DIR'] ?? tmpdir(), 'vgpud-lifecycle-bench-'));
  try {
    const journal = new FileVgpuJournal(dir);
    await journal.open();
    let n = 0;
    const handles = await JournalSequenceBlock.create(journal, 'rm-handle', 64, 0);
    const lc = new GpuLifecycle({
      gpu: r.gpu, mgr: r.mgr, bus: r.bus, relay: new ExceptionRelayImpl(r.bus, r.logger), logger: r.logger, allowUnscrubbedFb: true,
      timeouts: { rpcMs: 5000, bootloadMs: 5000, mailboxMs: 5000, scrubMs: 5000, pollIntervalMs: 1 },
      newId: () => `journalled-${++n}`, journal,
      // Handles from the journalled sequence, reserved in blocks of 64, as the daemon takes them (vgpu-service-impl).
      newClientHandle: async () => ((0xc2 << 24) | ((await handles.takeAsync()) & 0xffffff)) >>> 0,
    });
    const out: Figures = { create: [], destroy: [], floorCreate: [], floorDestroy: [], cpu: [], floorCpu: [], steps: new Samples(), floor: new Samples(), roundTrips: new Samples() };
    const clock = new StepClock(r.bus);
    const cycles = Math.max(20, Math.floor(N / 2));
    for (let i = 0; i < WARMUP + cycles; i++) await lifecycleCycle(lc, clock, i % 4, type, out, i >= WARMUP);
    const line = [...out.steps.by].filter(([k]) => k.startsWith('create:')).map(([k, xs]) => `${k.slice(7)} ${fmt(p50(xs))}`).join(', ');
    console.log(`with the file journal (${dir}): ${cycles} cycles: create p50 ${fmt(p50(out.create))} ms, destroy p50 ${fmt(p50(out.destroy))} ms`);
    console.log(`  create steps, p50 ms: ${line}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

interface Wakes { rpc: [number, number]; mailbox: [number, number]; fw: { sleeps: number; hits: number; misses: number; served: number } }

/** Counters of the waits' spins on both sides (core/runtime/adaptive-spin.ts, hal/sim/gsp/firmware-spin.ts). */
function wakeCounters(r: SimRig): () => Promise<Wakes> {
  const mailbox = HostRpcChannel.sharedSpin;
  return async () => {
    const rpc = r.gpu.firmware instanceof GspFirmwareClient ? r.gpu.firmware.replySpin : null;
    const g = await r.dev.controls.gspStats();
    return {
      rpc: [rpc?.hits ?? 0, rpc?.misses ?? 0], mailbox: [mailbox.hits, mailbox.misses],
      fw: { sleeps: g.sleeps, hits: g.spinHits, misses: g.spinMisses, served: g.requests },
    };
  };
}

/** Where the wake-ups went: how often each side's look-before-sleep caught its answer, and the firmware's sleeps. */
function printWakes(a: Wakes, b: Wakes): void {
  const rate = (h: number, m: number): string => (h + m === 0 ? 'no spins' : `${h + m} spins caught ${((h * 100) / (h + m)).toFixed(0)} %`);
  const cmds = b.fw.served - a.fw.served;
  console.log(`  wake-ups (lifecycle and floor cycles): host GSP reply wait ${rate(b.rpc[0] - a.rpc[0], b.rpc[1] - a.rpc[1])}; ` +
    `host mailbox wait ${rate(b.mailbox[0] - a.mailbox[0], b.mailbox[1] - a.mailbox[1])}; ` +
    `simulated firmware: ${b.fw.sleeps - a.fw.sleeps} sleeps for ${cmds} GSP commands, looks after serving ${rate(b.fw.hits - a.fw.hits, b.fw.misses - a.fw.misses)}`);
}

console.log(`steps: ${STEP_UNITS.map((s) => s.name).join(' → ')}; scrub excluded (no scrubber bound); ${WARMUP} warm-up cycles not counted`);

// Mock HAL: no transport, the fake plugin task answers in-process.
{
  // At warn, as the simulator half below: the daemon logs at info, and a debug line kept per step is test
  // bookkeeping the floor does not pay.
  const r = await rig({ scrubber: null, allowUnscrubbedFb: true, timeouts: { bootloadMs: 5000, mailboxMs: 5000 }, logLevel: 'warn' });
  r.logger.lines.length = 0;
  const type = TYPES[1]!; // -4Q
  report('mock HAL', type, await measure(r.gpu, r.mgr, r.lc, r.bus, type));
}

// Simulator, worker mode: GSP-RM on its own thread, the plugin task's mailbox in the SAB-backed FB.
const r = await simRig({ bdf: '0000:81:00.0', mode: 'worker', logLevel: 'warn', timeouts: { rpcMs: 5000, bootloadMs: 5000, mailboxMs: 5000 } });
let sim: Summary;
try {
  const type = r.type('2Q');
  const wakes = wakeCounters(r);
  const w0 = await wakes();
  sim = report('simulator (worker mode, RTX 6000 Ada, 8 GiB FB)', type, await measure(r.gpu, r.mgr, r.lc, r.bus, type));
  printWakes(w0, await wakes());
  await journalled(r, type);
  const held = await r.books();
  if (JSON.stringify(held, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v)) !== JSON.stringify(r.baseline, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v))) {
    console.log('WARNING: the simulator holds resources after the run (see test/integration/lifecycle)');
  }
} finally {
  await r.stop();
}
console.log(`host: ${cpuModel()}, load average ${loadAverage()}`);
console.log(`lifecycle: create_p50_ms=${fmt(sim.create)} create_p99_ms=${fmt(sim.p99)} destroy_p50_ms=${fmt(sim.destroy)} ` +
  `create_destroy_per_s=${sim.perSecond.toFixed(0)} roundtrip_floor_ms=${fmt(sim.roundTripFloor)} (scrub excluded; one GPU, one stream)`);
