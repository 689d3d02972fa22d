// vGPU create/destroy latency on the mock HAL with the fake plugin task answering the mailbox, scrub excluded (no
// scrubber bound). Floor measured in the same run: the same HAL calls done by hand without the lifecycle (CHIDs,
// guest FB, heap + map, client, BOOTLOAD, bootloaded wait and two mailbox RPCs, then the frees), so the ratio is
// the cost of the step machinery, events and checks. Last line: lifecycle: create_p50_ms=… destroy_p50_ms=…
import { MgmtHeap, VgpuRpcMsg } from '../core/firmware-abi/vgpu-mailbox.js';
import { RmControl, encodeBootloadParams } from '../core/firmware-abi/rm-controls.js';
import { HostRpcChannel } from '../plugins/lifecycle/host-rpc-channel.js';
import { STEP_UNITS } from '../plugins/lifecycle/create-steps.js';
import { TYPES, rig } from '../test/unit/lifecycle/lifecycle-rig.js';
import { fmt } from './lib/timing.js';

const N = Number(process.env['LIFECYCLE_BENCH_N'] ?? 300);
const p50 = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const now = (): number => Number(process.hrtime.bigint()) / 1e6;

const r = await rig({ scrubber: null, timeouts: { bootloadMs: 5000, mailboxMs: 5000 } });
r.logger.lines.length = 0;
const type = TYPES[1]!; // -4Q
const create: number[] = [];
const destroy: number[] = [];
for (let i = 0; i < N; i++) {
  const t0 = now();
  const rec = await r.lc.create(i % 4, type);
  const t1 = now();
  await r.lc.destroy(rec.id);
  const t2 = now();
  create.push(t1 - t0);
  destroy.push(t2 - t1);
}

// Floor: the bare HAL work of one create + destroy.
const floor: number[] = [];
const gpu = r.gpu;
const sel = r.mgr.policy.select(7, type.id);
for (let i = 0; i < N; i++) {
  const t0 = now();
  const chids = gpu.channels.alloc(128, 'floor');
  const fb = gpu.memory.reserve({ size: sel.fbBytes, align: r.mgr.vmmuSegmentSize, at: r.mgr.placementOffset(sel.placement), owner: 'floor', label: 'guest-fb' });
  const heap = gpu.memory.reserve({ size: type.gspHeapSize, owner: 'floor', label: 'mgmt-heap' });
  const map = gpu.memory.map(heap, { size: BigInt(MgmtHeap.COMM_BUFF_SIZE) });
  map.write(0, new Uint8Array(MgmtHeap.MIGRATION_OFFSET));
  const client = await gpu.firmware.allocClient();
  const rec = { gfid: 8 };
  await gpu.firmware.control(client, RmControl.VGPU_MGR_INTERNAL_BOOTLOAD_GSP_VGPU_PLUGIN_TASK, encodeBoot({ gfid: rec.gfid, heapAddr: heap.offset, heapLen: heap.size, fbAddr: fb.offset, fbLen: fb.size }));
  const ch = new HostRpcChannel({ mapping: map, registers: gpu.registers, gfid: rec.gfid, callTimeoutMs: 5000, pollIntervalMs: 1 });
  ch.writeHeader();
  await ch.waitBootloaded(5000);
  await ch.call(VgpuRpcMsg.VERSION_NEGOTIATION);
  await ch.call(VgpuRpcMsg.SETUP_CONFIG_PARAMS_AND_INIT, new Uint8Array(112));
  await gpu.firmware.control(client, RmControl.VGPU_MGR_INTERNAL_SHUTDOWN_GSP_VGPU_PLUGIN_TASK, new Uint8Array(4));
  await gpu.firmware.control(client, RmControl.VGPU_MGR_INTERNAL_VGPU_PLUGIN_CLEANUP, Uint8Array.of(rec.gfid, 0, 0, 0));
  await gpu.firmware.freeClient(client);
  map.unmap();
  gpu.memory.free(heap);
  gpu.memory.free(fb);
  gpu.channels.free(chids);
  floor.push(now() - t0);
}
r.mgr.policy.deselect(7);

function encodeBoot(o: { gfid: number; heapAddr: bigint; heapLen: bigint; fbAddr: bigint; fbLen: bigint }): Uint8Array {
  return encodeBootloadParams({
    gfid: o.gfid, vgpuType: type.id, numChannels: 128, numPluginChannels: 1, numGuestFbSegments: 1,
    guestFbPhysAddrList: [o.fbAddr], guestFbLengthList: [o.fbLen], pluginHeapMemoryPhysAddr: o.heapAddr, pluginHeapMemoryLength: o.heapLen,
  });
}

const c = p50(create);
const d = p50(destroy);
const f = p50(floor);
console.log(`steps: ${STEP_UNITS.map((s) => s.name).join(' → ')}; ${N} cycles of ${type.name} on the mock HAL`);
console.log(`floor (same HAL calls by hand, create+destroy) p50 ${fmt(f)} ms; lifecycle create+destroy p50 ${fmt(c + d)} ms; ratio ${fmt((c + d) / f)}`);
console.log(`lifecycle: create_p50_ms=${fmt(c)} destroy_p50_ms=${fmt(d)} (scrub excluded)`);
