/**
 * The vGPU create sequence of the upstream manager (seed spec §2.3, C1–C8), one named unit per step, each with
 * `do` and `undo`. Unwinding a failed create runs the undos of the steps that completed, newest first (§2.6);
 * destroy (§2.5) is the same walk with mode 'destroy' (which scrubs before freeing the guest FB), and a lost GPU
 * walks it with mode 'lost' (no firmware calls: the firmware is gone and holds nothing any more).
 */
import type { EventBus } from '../../core/contracts/events.js';
import { ErrorCode, VgpuError } from '../../core/contracts/exceptions.js';
import type { PhysicalGpu } from '../../core/contracts/hal.js';
import type { Logger } from '../../core/contracts/logger.js';
import type { FbScrubber } from '../../core/contracts/scrubber.js';
import {
  RmControl, encodeBootloadParams, encodePluginCleanupParams, encodeShutdownParams,
} from '../../core/firmware-abi/rm-controls.js';
import { MgmtHeap, VgpuRpcMsg, encodeConfigParams } from '../../core/firmware-abi/vgpu-mailbox.js';
import type { PgpuManager } from '../../core/manager/pgpu-manager.js';
import { HostRpcChannel } from './host-rpc-channel.js';
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
}

export interface StepUnit {
  name: CreateStep;
  do(rec: VgpuRecord, env: StepEnv, signal?: AbortSignal): Promise<void> | void;
  /** Free what `do` acquired. Must not throw for a missing resource (it may run after a partial `do`). */
  undo(rec: VgpuRecord, env: StepEnv, mode: UndoMode): Promise<void> | void;
}

/** prev_pow2(n) for n ≥ 1. */
export function prevPow2(n: number): number {
  if (n < 1) return 0;
  return 2 ** Math.floor(Math.log2(n));
}

/** CHIDs per vGPU: prev_pow2(total / max_instance) (seed spec §2.3 C2; 2048/32 = 64). */
export function chidsPerVgpu(totalChids: number, maxInstance: number): number {
  return prevPow2(Math.floor(totalChids / maxInstance));
}

const rpcOpts = (env: StepEnv): { timeoutMs: number } => ({ timeoutMs: env.timeouts.rpcMs });

async function scrub(rec: VgpuRecord, env: StepEnv, reason: 'create' | 'reset' | 'destroy', signal?: AbortSignal): Promise<void> {
  const range = rec.res.guestFb;
  const chids = rec.res.chids;
  if (range === undefined || chids === undefined) return;
  if (env.scrubber === undefined) {
    env.noScrubber(reason);
    return;
  }
  rec.lastScrub = await env.scrubber.scrub({
    gpu: env.gpu, range, chids, vgpuId: rec.id, reason, timeoutMs: env.timeouts.scrubMs,
    ...(env.verifyScrub ? { verify: true } : {}), ...(signal !== undefined ? { signal } : {}),
  });
  rec.log(`scrubbed ${range.size} bytes of guest FB (${reason}) in ${rec.lastScrub.durationMs} ms`);
}

/** Scrub for a reset (RPC RESET has already been sent). Exported for the lifecycle's reset operation. */
export const scrubGuestFb = scrub;

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
      rec.res.chids = env.gpu.channels.alloc(count, rec.id);
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
    do(rec, env) {
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
        // Upstream v2 returns here and leaks the FB block (seed spec §2.6). We free it anyway: the next vGPU that
        // gets this FB is scrubbed at create, so nothing leaks to the next tenant either.
        env.logger.warn('destroy scrub failed; freeing the guest FB anyway (the next create scrubs it)', { vgpu: rec.id, error });
        rec.log(`destroy scrub failed: ${(error as Error).message}`);
      } finally {
        delete rec.res.guestFb;
        env.gpu.memory.free(fb);
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
      const heap = env.gpu.memory.reserve({ size: rec.type.gspHeapSize, owner: rec.id, label: 'mgmt-heap' });
      try {
        rec.res.heapMapping = env.gpu.memory.map(heap, { offset: 0n, size: BigInt(MgmtHeap.COMM_BUFF_SIZE) });
        // Zero the control, response and message buffers: heap FB is reused from earlier vGPUs, and a stale
        // message_seq_num_processed equal to our next sequence number would pass for an answer (upstream relies
        // on whatever the FB held).
        rec.res.heapMapping.write(MgmtHeap.CTRL_OFFSET, new Uint8Array(MgmtHeap.MIGRATION_OFFSET - MgmtHeap.CTRL_OFFSET));
      } catch (error) {
        rec.res.heapMapping?.unmap();
        delete rec.res.heapMapping;
        env.gpu.memory.free(heap); // as upstream: a failed BAR1 map frees the heap itself
        throw error;
      }
      rec.res.heap = heap;
    },
    undo(rec, env) {
      const m = rec.res.heapMapping;
      const heap = rec.res.heap;
      delete rec.res.heapMapping;
      delete rec.res.heap;
      try {
        m?.unmap();
      } finally {
        if (heap !== undefined) env.gpu.memory.free(heap);
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
      const engines: number[] = [];
      for (let i = 0; i < env.mgr.engineBitmap.byteLength * 8; i++) {
        if (((env.mgr.engineBitmap[i >> 3] ?? 0) >> (i & 7)) & 1) engines.push(i);
      }
      const chidOffset: number[] = [];
      for (const e of engines) chidOffset[e] = chids.offset;
      const base = heap.offset;
      const params = encodeBootloadParams({
        dbdf: rec.dbdf,
        gfid: rec.gfid,
        // Upstream v2 never sets vgpuType (it stays 0), so the firmware cannot check the type it boots against
        // the uploaded table (seed spec §2.3, §11 item 11). We send the type id.
        vgpuType: rec.type.id,
        vmPid: env.vmPid,
        swizzId: 0,
        numChannels: chids.count,
        numPluginChannels: 1,
        chidOffset: Array.from({ length: Math.min(chidOffset.length, 0x54) }, (_, i) => chidOffset[i] ?? 0),
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
      await env.gpu.firmware.control(rec.res.client!, RmControl.VGPU_MGR_INTERNAL_BOOTLOAD_GSP_VGPU_PLUGIN_TASK, params, rpcOpts(env));
      rec.res.pluginTask = true;
    },
    async undo(rec, env, mode) {
      if (rec.res.pluginTask !== true) return;
      delete rec.res.pluginTask;
      if (mode === 'lost' || rec.res.client === undefined) return;
      const client = rec.res.client;
      // Both warn and continue (upstream does the same): the host resources below must be freed regardless.
      try {
        await env.gpu.firmware.control(client, RmControl.VGPU_MGR_INTERNAL_SHUTDOWN_GSP_VGPU_PLUGIN_TASK, encodeShutdownParams(rec.gfid), rpcOpts(env));
      } catch (error) {
        env.logger.warn('SHUTDOWN_GSP_VGPU_PLUGIN_TASK failed; continuing', { vgpu: rec.id, gfid: rec.gfid, error });
      }
      try {
        await env.gpu.firmware.control(client, RmControl.VGPU_MGR_INTERNAL_VGPU_PLUGIN_CLEANUP, encodePluginCleanupParams(rec.gfid), rpcOpts(env));
      } catch (error) {
        env.logger.warn('VGPU_PLUGIN_CLEANUP failed; continuing', { vgpu: rec.id, gfid: rec.gfid, error });
      }
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
      ch.writeHeader();
      await ch.waitBootloaded(env.timeouts.bootloadMs, signal);
      const sig = signal !== undefined ? { signal } : {};
      // v2 sends VERSION_NEGOTIATION without a payload (seed spec §4.5, §11 item 13); so do we.
      await ch.call(VgpuRpcMsg.VERSION_NEGOTIATION, new Uint8Array(0), sig);
      const heterogeneous = env.mgr.policy.policy === 'heterogeneous';
      await ch.call(VgpuRpcMsg.SETUP_CONFIG_PARAMS_AND_INIT, encodeConfigParams({
        dbdf: rec.dbdf,
        vgpu_device_instance_id: rec.res.client!.hClient,
        vgpu_type: rec.type.id,
        vm_pid: env.vmPid,
        num_channels: rec.res.chids!.count,
        num_plugin_channels: 1,
        placement_id: heterogeneous ? rec.selection.placement.id : 0,
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
