/**
 * The vGPU create sequence of the upstream manager (docs/reference/create-order.md, C1–C8), one named unit per step,
 * each with `do` and `undo`. Unwinding a failed create runs the undos of the steps that completed, newest first
 * (docs/reference/create-order.md); destroy is the same walk with mode 'destroy' (which scrubs before freeing the
 * guest FB), and a lost GPU walks it with mode 'lost' (no firmware calls: the firmware is gone and holds nothing any
 * more).
 */
import type { EventBus } from '../../core/contracts/events.js';
import { ErrorCode, VgpuError, isVgpuError } from '../../core/contracts/exceptions.js';
import type { FbRange } from '../../core/contracts/memory.js';
import type { RmClient } from '../../core/contracts/firmware.js';
import { NvStatus } from '../../core/firmware-abi/nv-status.js';
import type { PhysicalGpu } from '../../core/contracts/hal.js';
import type { Logger } from '../../core/contracts/logger.js';
import type { FbScrubber } from '../../core/contracts/scrubber.js';
import {
  RmControl, encodeBootloadParams, encodePluginCleanupParams, encodeShutdownParams,
} from '../../core/firmware-abi/rm-controls.js';
import { MgmtHeap, VgpuRpcMsg, encodeConfigParams } from '../../core/firmware-abi/vgpu-mailbox.js';
import { chidsPerVgpu } from '../../core/manager/chid-room.js';
import type { PgpuManager } from '../../core/manager/pgpu-manager.js';
import { HostRpcChannel, writeCtrlHeader } from './host-rpc-channel.js';
import type { VgpuRecord } from './vgpu-record.js';

export const CREATE_STEPS = [
  'register', 'chids', 'guest-fb', 'scrub', 'mgmt-heap', 'rm-client', 'bootload', 'rpc-setup', 'ready',
] as const;
export type CreateStep = (typeof CREATE_STEPS)[number];

export type UndoMode = 'unwind' | 'destroy' | 'lost';

export interface LifecycleTimeouts {
  /** RM controls and client allocation. */
  rpcMs: number;
  /** Wait for the plugin task's BOOTLOADED magic. */
  bootloadMs: number;
  /** One mailbox call. */
  mailboxMs: number;
  scrubMs: number;
  pollIntervalMs: number;
}

/** What the steps need from the GPU's lifecycle. */
export interface StepEnv {
  gpu: PhysicalGpu;
  mgr: PgpuManager;
  bus: EventBus;
  logger: Logger;
  scrubber: FbScrubber | undefined;
  timeouts: LifecycleTimeouts;
  verifyScrub: boolean;
  /** Called once per scrub skipped for want of a scrubber (the lifecycle warns once per GPU). */
  noScrubber(reason: string): void;
  /** Unregister the record (the undo of 'register'). */
  unregister(rec: VgpuRecord, mode: UndoMode): void;
  /** VMM pid reported to the firmware. */
  vmPid: number;
  /**
   * FB the host could not give back because the firmware may still run a plugin task over it (its SHUTDOWN/CLEANUP
   * kept failing), by gfid. Freed once a later teardown of that gfid succeeds. Upstream frees such FB at once, so
   * the next vGPU's FB can land under a live task of the old one.
   */
  quarantine: Map<number, FbRange[]>;
}

export interface StepUnit {
  name: CreateStep;
  do(rec: VgpuRecord, env: StepEnv, signal?: AbortSignal): Promise<void> | void;
  /** Free what `do` acquired. Must not throw for a missing resource (it may run after a partial `do`). */
  undo(rec: VgpuRecord, env: StepEnv, mode: UndoMode): Promise<void> | void;
}

// Moved to the core so the type policy counts CHID runs as it counts heaps; re-exported for the lifecycle's users.
export { chidsPerVgpu, prevPow2 } from '../../core/manager/chid-room.js';

const rpcOpts = (env: StepEnv): { timeoutMs: number } => ({ timeoutMs: env.timeouts.rpcMs });

/** Zeros for the control, response and message buffers (mgmt-heap): one buffer, written by copy, never changed. */
const COMM_ZEROS = new Uint8Array(MgmtHeap.MIGRATION_OFFSET - MgmtHeap.CTRL_OFFSET);

/** Engine ids set in a GPU's engine bitmap, worked out once per bitmap (it does not change while the GPU is up). */
const enginesOf = new WeakMap<Uint8Array, readonly number[]>();
function engineIds(bitmap: Uint8Array): readonly number[] {
  let ids = enginesOf.get(bitmap);
  if (ids === undefined) {
    const found: number[] = [];
    for (let i = 0; i < bitmap.byteLength * 8; i++) if (((bitmap[i >> 3] ?? 0) >> (i & 7)) & 1) found.push(i);
    ids = Object.freeze(found);
    enginesOf.set(bitmap, ids);
  }
  return ids;
}

async function scrub(rec: VgpuRecord, env: StepEnv, reason: 'create' | 'reset' | 'destroy', signal?: AbortSignal): Promise<void> {
  const range = rec.res.guestFb;
  const chids = rec.res.chids;
  if (range === undefined || chids === undefined) return;
  if (env.scrubber === undefined) {
    env.noScrubber(reason);
    return;
  }
  rec.lastScrub = await env.scrubber.scrub({
    gpu: env.gpu, range, chids, vgpuId: rec.id, reason, timeoutMs: env.timeouts.scrubMs, scratchBelow: env.mgr.region.base,
    ...(env.verifyScrub ? { verify: true } : {}), ...(signal !== undefined ? { signal } : {}),
  });
  rec.log(`scrubbed ${range.size} bytes of guest FB (${reason}) in ${rec.lastScrub.durationMs} ms`);
}

/** Scrub for a reset (RPC RESET has already been sent). Exported for the lifecycle's reset operation. */
export const scrubGuestFb = scrub;

const rmStatusOf = (e: unknown): number | undefined =>
  isVgpuError(e) && typeof e.details['rmStatus'] === 'number' ? (e.details['rmStatus'] as number) : undefined;

/**
 * Shut down and clean up the firmware's plugin task for `rec.gfid`, each call tried twice (a transient failure is
 * not the end of the task). "No such task" counts as done. Returns true when the firmware no longer holds a task
 * for the gfid; then FB quarantined for it earlier is released. Upstream warns once per call and moves on, leaving
 * a task GSP-RM still runs over FB the host hands to the next vGPU.
 */
export async function stopPluginTask(rec: Pick<VgpuRecord, 'id' | 'gfid'>, env: StepEnv, client: RmClient): Promise<boolean> {
  const attempt = async (cmd: number, params: Uint8Array, what: string, alreadyDone: readonly number[]): Promise<boolean> => {
    for (let i = 1; i <= 2; i++) {
      try {
        await env.gpu.firmware.control(client, cmd, params, rpcOpts(env));
        return true;
      } catch (error) {
        const st = rmStatusOf(error);
        if (st !== undefined && alreadyDone.includes(st)) return true;
        env.logger.warn(`${what} failed (try ${i} of 2)`, { vgpu: rec.id, gfid: rec.gfid, error });
      }
    }
    return false;
  };
  // SHUTDOWN of a task already shut down answers INVALID_STATE: that is the state we want.
  await attempt(RmControl.VGPU_MGR_INTERNAL_SHUTDOWN_GSP_VGPU_PLUGIN_TASK, encodeShutdownParams(rec.gfid),
    'SHUTDOWN_GSP_VGPU_PLUGIN_TASK', [NvStatus.OBJECT_NOT_FOUND, NvStatus.INVALID_STATE]);
  // Between SHUTDOWN and CLEANUP the task's log areas still hold its last lines: the logging plugin reads them now.
  env.bus.emit('vgpu:step', { gpu: env.gpu.bdf, vgpuId: rec.id, step: 'plugin-shutdown', phase: 'done' });
  const cleaned = await attempt(RmControl.VGPU_MGR_INTERNAL_VGPU_PLUGIN_CLEANUP, encodePluginCleanupParams(rec.gfid),
    'VGPU_PLUGIN_CLEANUP', [NvStatus.OBJECT_NOT_FOUND]);
  if (cleaned) {
    for (const r of env.quarantine.get(rec.gfid) ?? []) env.gpu.memory.free(r);
    env.quarantine.delete(rec.gfid);
  }
  return cleaned;
}

function bootload(client: RmClient, params: Uint8Array, env: StepEnv): Promise<Uint8Array> {
  return env.gpu.firmware.control(client, RmControl.VGPU_MGR_INTERNAL_BOOTLOAD_GSP_VGPU_PLUGIN_TASK, params, rpcOpts(env));
}

/** A failed BOOTLOAD: stop whatever task it may have started, then hand back the error to throw. */
async function failedBootload(rec: VgpuRecord, env: StepEnv, client: RmClient, error: unknown): Promise<unknown> {
  delete rec.res.pluginTask;
  if (isVgpuError(error, ErrorCode.GpuLost)) return error; // the firmware is gone, and its tasks with it
  if (!(await stopPluginTask(rec, env, client))) rec.res.taskStuck = true;
  return error;
}

/** Free an FB range, unless the firmware may still run a task over it (then it waits in the quarantine). */
function releaseFb(rec: VgpuRecord, env: StepEnv, range: FbRange, mode: UndoMode): void {
  if (rec.res.taskStuck === true && mode !== 'lost') {
    const q = env.quarantine.get(rec.gfid) ?? [];
    q.push(range);
    env.quarantine.set(rec.gfid, q);
    env.logger.error(`keeping ${range.label} reserved: the firmware may still run the plugin task of gfid ${rec.gfid}`, {
      vgpu: rec.id, gfid: rec.gfid, offset: range.offset.toString(), size: range.size.toString(),
      hint: 'it is released when a later create or destroy on this VF cleans the task up, or when the GPU is reset',
    });
    return;
  }
  env.gpu.memory.free(range);
}

export const STEP_UNITS: readonly StepUnit[] = [
  {
    name: 'register',
    // C1: the record was inserted synchronously by create(), before any await, so two creates on one VF can never
    // both pass the check. Nothing more to do here.
    do() {},
    undo(rec, env, mode) { env.unregister(rec, mode); },
  },
  {
    name: 'chids',
    do(rec, env) {
      const count = chidsPerVgpu(env.mgr.channelCount, rec.type.maxInstance);
      if (count < 1) {
        throw new VgpuError(ErrorCode.NoSpace, `type ${rec.type.name} allows ${rec.type.maxInstance} instances but the GPU has only ${env.mgr.channelCount} vGPU channels`, {
          hint: 'the metadata does not fit this GPU',
        });
      }
      rec.res.chids = env.mgr.allocChids({ vf: rec.vf.index, count, owner: rec.id });
    },
    undo(rec, env) {
      const c = rec.res.chids;
      if (c === undefined) return;
      delete rec.res.chids;
      env.gpu.channels.free(c);
    },
  },
  {
    name: 'guest-fb',
    async do(rec, env) {
      if (env.quarantine.has(rec.gfid)) {
        // An earlier vGPU of this VF left a task the firmware would not stop, over FB this placement may need:
        // try again now (on the manager's client: this vGPU has none yet).
        env.logger.warn('cleaning up the plugin task an earlier vGPU left on this VF', { vgpu: rec.id, gfid: rec.gfid });
        if (!(await stopPluginTask(rec, env, env.mgr.client))) {
          throw new VgpuError(ErrorCode.Busy, `the firmware still runs the plugin task of an earlier vGPU on VF ${rec.vf.index} and refuses to stop it`, {
            hint: 'its FB stays reserved; try another VF, or reset the GPU', details: { gfid: rec.gfid },
          });
        }
      }
      // Always at the placement the type policy chose (both policies place in the guest-FB region), aligned to the
      // VMMU segment: the firmware maps guest FB in whole segments.
      rec.res.guestFb = env.gpu.memory.reserve({
        size: rec.selection.fbBytes, align: env.mgr.vmmuSegmentSize, at: env.mgr.placementOffset(rec.selection.placement),
        owner: rec.id, label: 'guest-fb',
      });
    },
    async undo(rec, env, mode) {
      const fb = rec.res.guestFb;
      if (fb === undefined) return;
      try {
        // Unwinding a create needs no scrub: no guest ever saw this FB, and the create scrub (if it ran) zeroed it.
        if (mode === 'destroy') await scrub(rec, env, 'destroy');
      } catch (error) {
        // Upstream v2 returns here and leaks the FB block (docs/reference/create-order.md). We free it anyway: the
        // next vGPU that gets this FB is scrubbed at create, so nothing leaks to the next tenant either.
        env.logger.warn('destroy scrub failed; freeing the guest FB anyway (the next create scrubs it)', { vgpu: rec.id, error });
        rec.log(`destroy scrub failed: ${(error as Error).message}`);
      } finally {
        delete rec.res.guestFb;
        releaseFb(rec, env, fb, mode);
      }
    },
  },
  {
    name: 'scrub',
    async do(rec, env, signal) { await scrub(rec, env, 'create', signal); },
    undo() {},
  },
  {
    name: 'mgmt-heap',
    do(rec, env) {
      // The manager places it below the guest-FB region (never on a guest placement a VF has selected but not yet
      // reserved) and refuses it with VGPU_ENOSPC by the same count `types` reports available instances with.
      const heap = env.mgr.reserveHeap({ vf: rec.vf.index, size: rec.type.gspHeapSize, owner: rec.id });
      try {
        rec.res.heapMapping = env.gpu.memory.map(heap, { offset: 0n, size: BigInt(MgmtHeap.COMM_BUFF_SIZE) });
        // Zero the control, response and message buffers: heap FB is reused from earlier vGPUs, and a stale
        // message_seq_num_processed equal to our next sequence number would pass for an answer (upstream relies
        // on whatever the FB held).
        rec.res.heapMapping.write(MgmtHeap.CTRL_OFFSET, COMM_ZEROS);
        // The control-buffer header goes in now, before BOOTLOAD, not only after it as upstream writes it: a plugin
        // task that finds it when it starts answers with the BOOTLOADED magic at once, so the host's wait is not
        // one period of the task's header scan (a header written later is an FB write, which rings nothing; the
        // simulated task scans for it every 2 ms — that wait was 2.2 ms of a 5 ms create, docs/benchmarks.md).
        // Inference: nothing in the public sources says GSP-RM clears the control buffer (host → GSP) when the task
        // starts; should a firmware do so, rpc-setup writes the header again after BOOTLOAD (upstream's place),
        // and the wait is then what upstream's is.
        writeCtrlHeader(rec.res.heapMapping);
      } catch (error) {
        rec.res.heapMapping?.unmap();
        delete rec.res.heapMapping;
        env.gpu.memory.free(heap); // as upstream: a failed BAR1 map frees the heap itself
        throw error;
      }
      rec.res.heap = heap;
    },
    undo(rec, env, mode) {
      const m = rec.res.heapMapping;
      const heap = rec.res.heap;
      delete rec.res.heapMapping;
      delete rec.res.heap;
      try {
        m?.unmap();
      } finally {
        if (heap !== undefined) releaseFb(rec, env, heap, mode);
      }
    },
  },
  {
    name: 'rm-client',
    async do(rec, env) {
      // The handle, when chosen, is already in the journal: a crash during this call cannot leak the client.
      rec.res.client = await env.gpu.firmware.allocClient({ ...rpcOpts(env), ...(rec.clientHandle !== undefined ? { hClient: rec.clientHandle } : {}) });
    },
    async undo(rec, env, mode) {
      const c = rec.res.client;
      if (c === undefined) return;
      delete rec.res.client;
      // A lost firmware has forgotten its clients; asking it would only time out.
      if (mode !== 'lost') await env.gpu.firmware.freeClient(c, rpcOpts(env));
    },
  },
  {
    name: 'bootload',
    async do(rec, env) {
      const heap = rec.res.heap!;
      const fb = rec.res.guestFb!;
      const chids = rec.res.chids!;
      // chidOffset[engine] = the vGPU's first CHID for each engine the GPU has, up to the struct's 0x54 entries.
      const engines = engineIds(env.mgr.engineBitmap);
      const chidOffset = new Array<number>(Math.min((engines.at(-1) ?? -1) + 1, 0x54)).fill(0);
      for (const e of engines) if (e < chidOffset.length) chidOffset[e] = chids.offset;
      const base = heap.offset;
      const params = encodeBootloadParams({
        dbdf: rec.dbdf,
        gfid: rec.gfid,
        // Upstream v2 never sets vgpuType (it stays 0), so the firmware cannot check the type it boots against
        // the uploaded table (docs/reference/create-order.md). We send the type id.
        vgpuType: rec.type.id,
        vmPid: env.vmPid,
        swizzId: 0,
        numChannels: chids.count,
        numPluginChannels: 1,
        chidOffset,
        bDisableDefaultSmcExecPartRestore: false,
        numGuestFbSegments: 1,
        guestFbPhysAddrList: [fb.offset],
        guestFbLengthList: [fb.size],
        pluginHeapMemoryPhysAddr: base,
        pluginHeapMemoryLength: heap.size,
        ctrlBuffOffset: 0n,
        // Upstream passes heap ADDRESS + offset in the "...Offset" fields; the firmware expects exactly that.
        initTaskLogBuffOffset: base + BigInt(MgmtHeap.INIT_TASK_LOG_OFFSET),
        initTaskLogBuffSize: BigInt(MgmtHeap.INIT_TASK_LOG_SIZE),
        vgpuTaskLogBuffOffset: base + BigInt(MgmtHeap.VGPU_TASK_LOG_OFFSET),
        vgpuTaskLogBuffSize: BigInt(MgmtHeap.VGPU_TASK_LOG_SIZE),
        kernelLogBuffOffset: base + BigInt(MgmtHeap.KERNEL_LOG_OFFSET),
        kernelLogBuffSize: BigInt(MgmtHeap.KERNEL_LOG_SIZE),
        bDeviceProfilingEnabled: false,
      });
      const client = rec.res.client!;
      // The task may run even when the call fails: a lost or late reply (timeout) does not mean GSP-RM did not
      // start it. Upstream marks the task only after a good reply, so such a task is never shut down.
      rec.res.pluginTask = true;
      try {
        await bootload(client, params, env);
      } catch (error) {
        if (rmStatusOf(error) !== NvStatus.IN_USE) throw await failedBootload(rec, env, client, error);
        // A task of an earlier vGPU on this VF that could not be cleaned then: clean it now and try once more.
        env.logger.warn('BOOTLOAD found a plugin task left for this gfid; cleaning it up and retrying once', { vgpu: rec.id, gfid: rec.gfid });
        if (!(await stopPluginTask(rec, env, client))) throw await failedBootload(rec, env, client, error);
        try {
          await bootload(client, params, env);
        } catch (again) {
          throw await failedBootload(rec, env, client, again);
        }
      }
    },
    async undo(rec, env, mode) {
      if (rec.res.pluginTask !== true) return;
      delete rec.res.pluginTask;
      if (mode === 'lost' || rec.res.client === undefined) return;
      // The host resources below are freed regardless; FB the task may still use waits in the quarantine.
      if (!(await stopPluginTask(rec, env, rec.res.client))) rec.res.taskStuck = true;
    },
  },
  {
    name: 'rpc-setup',
    async do(rec, env, signal) {
      const ch = new HostRpcChannel({
        mapping: rec.res.heapMapping!, registers: env.gpu.registers, gfid: rec.gfid,
        callTimeoutMs: env.timeouts.mailboxMs, pollIntervalMs: env.timeouts.pollIntervalMs,
      });
      rec.res.channel = ch;
      ch.writeHeader(); // again, where upstream writes it (see mgmt-heap): the same bytes, the magic untouched
      await ch.waitBootloaded(env.timeouts.bootloadMs, signal);
      const sig = signal !== undefined ? { signal } : {};
      // v2 sends VERSION_NEGOTIATION without a payload (docs/reference/host-rpc-mailbox.md); so do we.
      await ch.call(VgpuRpcMsg.VERSION_NEGOTIATION, new Uint8Array(0), sig);
      const heterogeneous = env.mgr.policy.policy === 'heterogeneous';
      await ch.call(VgpuRpcMsg.SETUP_CONFIG_PARAMS_AND_INIT, encodeConfigParams({
        dbdf: rec.dbdf,
        vgpu_device_instance_id: rec.res.client!.hClient,
        vgpu_type: rec.type.id,
        vm_pid: env.vmPid,
        num_channels: rec.res.chids!.count,
        num_plugin_channels: 1,
        // NVIDIA's mixed-size placement id (GiB slot) where the type table has NVIDIA's mixed-size rules, else the
        // FB segment index this project places by (core/manager/mixed-size-placements.ts).
        placement_id: heterogeneous ? rec.selection.mixedSlot ?? rec.selection.placement.id : 0,
        // Upstream gives every vGPU the same captured UUID; each of ours has its own.
        vgpu_uuid: rec.uuid,
      }), sig);
    },
    undo(rec) {
      rec.res.channel?.close('vGPU torn down');
      delete rec.res.channel;
    },
  },
  {
    name: 'ready',
    do() {},
    undo() {},
  },
];
