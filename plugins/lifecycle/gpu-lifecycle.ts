/**
 * The vGPU lifecycle of one physical GPU: create / destroy / reset / BME for each VF, the per-vGPU state machine,
 * host events (docs/reference/core-driver-interface.md), firmware loss and exception routing.
 *
 * Concurrency: every operation on a VF runs in that VF's queue (KeyedQueue), different VFs in parallel. The
 * checks that decide whether a request is legal (VF free? vGPU ready?) and the state change that claims the VF run
 * synchronously at call time, before the first await, so two requests can never both pass a check.
 */
import { VfAbiError } from '../../core/manager/vf-abi-error.js';
import type { EventBus, FirmwareEventRecord, VgpuState } from '../../core/contracts/events.js';
import { ErrorCode, VgpuError, isVgpuError, type ExceptionRelay } from '../../core/contracts/exceptions.js';
import type { PhysicalGpu, VirtualFunction } from '../../core/contracts/hal.js';
import type { Logger } from '../../core/contracts/logger.js';
import type { FbScrubber } from '../../core/contracts/scrubber.js';
import type { GpuSummary } from '../../core/contracts/vgpu-service.js';
import type { JournalGpu, JournalQuarantine, JournalVgpu, VgpuJournal } from '../../core/contracts/vgpu-journal.js';
import type { QuarantinedVf, VfReleaseReport } from '../../core/contracts/vgpu-service.js';
import type { VgpuReleaser } from '../../core/contracts/vgpu-releaser.js';
import { MgmtHeap, VgpuRpcMsg, encodeBmeState } from '../../core/firmware-abi/vgpu-mailbox.js';
import { RmControl, encodePluginCleanupParams, encodeShutdownParams } from '../../core/firmware-abi/rm-controls.js';
import type { PgpuManager } from '../../core/manager/pgpu-manager.js';
import type { VgpuTypeRecord } from '../../core/metadata/metadata-file.js';
import {
  STEP_UNITS, scrubGuestFb, type CreateStep, type LifecycleTimeouts, type StepEnv, type UndoMode,
} from './create-steps.js';
import { HostRpcChannel } from './host-rpc-channel.js';
import { isDuplicateHandle } from './journal-damage.js';
import { KeyedQueue } from './vf-queue.js';
import { VfQuarantine } from './vf-quarantine.js';
import { VgpuRecord } from './vgpu-record.js';
import { assertTransition } from './vgpu-state.js';

export type GpuLifecycleState = GpuSummary['state'];

export interface GpuLifecycleOptions {
  gpu: PhysicalGpu;
  mgr: PgpuManager;
  bus: EventBus;
  relay: ExceptionRelay;
  logger: Logger;
  scrubber?: FbScrubber | undefined;
  /** Without a scrubber, create and reset anyway (config `plugins.lifecycle.allowUnscrubbedFb`); default: refuse. */
  allowUnscrubbedFb?: boolean;
  timeouts: LifecycleTimeouts;
  verifyScrub?: boolean;
  /** New vGPU id (unique across GPUs). */
  newId: () => string;
  /** Releases a vGPU from its VMM before a forced destroy (the vfio-user face); absent = nothing to release. */
  releaser?: VgpuReleaser | undefined;
  vmPid?: number;
  /** Write-ahead journal; absent = no persistence (unit tests). */
  journal?: VgpuJournal | undefined;
  /** Next RM client handle (journalled before use); absent = the HAL chooses. */
  newClientHandle?: (() => Promise<number>) | undefined;
}

/** Steps an adopted vGPU has "done": every create step, so destroy walks back all of them. */
const ALL_STEPS = STEP_UNITS.map((u) => u.name);

/**
 * Firmware events routed to the exception relay (docs/reference/core-driver-interface.md: upstream forwards none of
 * them).
 */
const EXCEPTION_EVENTS: Record<number, string> = { 0x1004: 'rc', 0x1005: 'mmu-fault', 0x1006: 'error-log' };

export class GpuLifecycle {
  readonly gpu: PhysicalGpu;
  readonly mgr: PgpuManager;
  private st: GpuLifecycleState = 'ready';
  private readonly byId = new Map<string, VgpuRecord>();
  private readonly byVf = new Map<number, VgpuRecord>();
  /** The last destroyed/failed record per VF: its log stays readable until the VF is reused. */
  private readonly retired = new Map<number, VgpuRecord>();
  private readonly queue = new KeyedQueue<number>();
  private readonly log: Logger;
  private readonly env: StepEnv;
  private readonly unsubscribe: Array<() => void> = [];
  private warnedNoScrubber = false;
  /** hClient handles of manager RM clients that may be alive (journalled per GPU; see JournalGpu). */
  managerClients: number[] = [];
  /** VFs whose state the journal lost: out of service until an operator releases them (vf-quarantine.ts). */
  private readonly vfQuarantine: VfQuarantine;
  private readonly releasing = new Map<number, Promise<VfReleaseReport>>();
  /** Why the GPU is not ready (lost, resetting), for `status`; null while ready. */
  private why: string | null = null;
  /** The GPU reset that follows a loss, while it runs (gpu-reset capability). */
  private recovery: { abort: AbortController; done: Promise<void> } | null = null;
  private detached = false;
  /** GPU resets completed since the start (status, metrics). */
  resets = 0;

  constructor(private readonly o: GpuLifecycleOptions) {
    this.gpu = o.gpu;
    this.mgr = o.mgr;
    this.log = o.logger.child({ gpu: o.gpu.bdf });
    this.env = {
      gpu: o.gpu, mgr: o.mgr, bus: o.bus, logger: this.log, scrubber: o.scrubber, timeouts: o.timeouts,
      verifyScrub: o.verifyScrub ?? false, vmPid: o.vmPid ?? process.pid,
      noScrubber: (reason) => {
        // Upstream skips the scrub silently when the core has no CE caps. Here create and reset are refused before
        // they get this far unless the config allows unscrubbed FB; a destroy still goes ahead (the next create
        // scrubs the range before handing it out). Said once per GPU.
        if (!this.warnedNoScrubber) {
          this.warnedNoScrubber = true;
          this.log.warn('no FB scrubber is bound (scrub plugin not loaded): guest FB is NOT scrubbed', { reason });
        }
      },
      unregister: (rec, mode) => this.unregister(rec, mode),
      quarantine: new Map(),
    };
    this.vfQuarantine = new VfQuarantine(this.env, o.journal, () => this.persistGpu());
  }

  get bdf(): string {
    return this.gpu.bdf;
  }

  get state(): GpuLifecycleState {
    return this.st;
  }

  /** Why the GPU is not ready (null while it is). */
  get reason(): string | null {
    return this.st === 'ready' ? null : this.why ?? this.st;
  }

  /** Resolves when a running GPU reset has finished (or at once when none runs). Tests, shutdown. */
  async recovered(): Promise<void> {
    await this.recovery?.done;
  }

  /** Subscribe to host and firmware events. */
  start(): void {
    this.unsubscribe.push(this.gpu.onHostEvent((e) => this.onHostEvent(e.kind, e.numVfs)));
    this.unsubscribe.push(this.gpu.firmware.onEvent((e) => this.onFirmwareEvent(e)));
    // Exceptions tagged with a gfid of this GPU belong to the vGPU on that VF (gfid = VF index + 1).
    this.unsubscribe.push(this.o.relay.addResolver((e) => {
      if (e.gpu !== this.bdf || e.gfid === undefined || e.gfid === 0) return undefined;
      const rec = this.byGfid(e.gfid);
      return rec === undefined ? undefined : { kind: 'vgpu', gpu: this.bdf, vgpuId: rec.id };
    }));
    this.unsubscribe.push(this.o.relay.subscribe('*', (e, owner) => {
      if (owner.kind === 'vgpu' && owner.gpu === this.bdf) this.byId.get(owner.vgpuId)?.log(`exception ${e.kind}: ${e.message}`);
    }));
  }

  /** Stop listening; vGPUs keep running (daemon restart / warm update must not destroy them). */
  detach(): void {
    this.detached = true;
    this.recovery?.abort.abort();
    for (const u of this.unsubscribe.splice(0)) u();
  }

  records(): VgpuRecord[] {
    return [...this.byId.values()].sort((a, b) => a.vf.index - b.vf.index);
  }

  record(id: string): VgpuRecord | undefined {
    return this.byId.get(id);
  }

  retiredRecord(id: string): VgpuRecord | undefined {
    for (const r of this.retired.values()) if (r.id === id) return r;
    return undefined;
  }

  byGfid(gfid: number): VgpuRecord | undefined {
    return this.byVf.get(gfid - 1);
  }

  vfOf(index: number): VirtualFunction | undefined {
    return this.gpu.vfs().find((v) => v.index === index);
  }

  /** Resolves when every queued operation has settled (tests, shutdown). */
  idle(): Promise<void> {
    return this.queue.idle();
  }

  // ---------------------------------------------------------------------------------------------------------------
  // create

  /**
   * Create a vGPU on VF `vfIndex`. The type is the VF's selected type; `type` selects it first when the VF has
   * none (and must match when it has one). Resolves when the vGPU is ready; rejects with VGPU_ECREATE naming the
   * failed step after unwinding exactly what was done.
   */
  create(vfIndex: number, type: VgpuTypeRecord | undefined, opts: { signal?: AbortSignal; requestId?: string; uuid?: Uint8Array } = {}): Promise<VgpuRecord> {
    const rec = this.register(vfIndex, type, opts.uuid); // synchronous: claims the VF or throws
    if (opts.requestId !== undefined) rec.requestId = opts.requestId; // journalled with the intent, before any step
    return this.queue.run(vfIndex, () => this.runCreate(rec, opts.signal));
  }

  private register(vfIndex: number, type: VgpuTypeRecord | undefined, uuid?: Uint8Array): VgpuRecord {
    this.assertUsable('create a vGPU');
    this.assertScrubber('create a vGPU');
    const vf = this.vfOf(vfIndex);
    if (vf === undefined) {
      throw new VgpuError(ErrorCode.NotFound, `${this.bdf} has no VF ${vfIndex} (${this.gpu.vfs().length} VFs enabled)`, {
        hint: 'pick a VF index below the VF count', details: { gpu: this.bdf, vf: vfIndex },
      });
    }
    this.vfQuarantine.assertCreatable(vfIndex, (i) => this.vfBdf(i));
    const existing = this.byVf.get(vfIndex);
    if (existing !== undefined) {
      throw new VgpuError(ErrorCode.Busy, `VF ${vfIndex} of ${this.bdf} already has vGPU ${existing.id} (${existing.state})`, {
        hint: existing.state === 'lost' ? 'destroy the lost vGPU first' : 'destroy that vGPU first, or pick another VF',
        details: { gpu: this.bdf, vf: vfIndex, vgpu: existing.id, state: existing.state },
      });
    }
    if (this.queue.busy(vfIndex)) {
      throw new VgpuError(ErrorCode.Busy, `VF ${vfIndex} of ${this.bdf} is busy (an operation on it is still running)`, {
        hint: 'retry when it finishes', details: { gpu: this.bdf, vf: vfIndex },
      });
    }
    let sel = this.mgr.selectionOf(vfIndex);
    let autoSelected = false;
    if (sel === undefined) {
      if (type === undefined) {
        throw new VgpuError(ErrorCode.InvalidArgument, `VF ${vfIndex} of ${this.bdf} has no vGPU type selected`, {
          hint: 'name a type, or write one to the VF\'s current_vgpu_type first', details: { gpu: this.bdf, vf: vfIndex },
        });
      }
      // Select through the admin ABI so every rule of current_vgpu_type applies, in the order an operator acts on
      // them when several bind at once: the type's instance cap, then FB (guest placement, heap), then the CHID run.
      this.mgr.abi.writeCurrent(vfIndex, `${type.id}\n`);
      sel = this.mgr.selectionOf(vfIndex)!;
      autoSelected = true;
    } else if (type !== undefined && type.id !== sel.type.id) {
      throw new VgpuError(ErrorCode.InvalidArgument, `VF ${vfIndex} of ${this.bdf} has type ${sel.type.id} (${sel.type.name}) selected, not ${type.id} (${type.name})`, {
        hint: 'omit the type to use the selected one, or write 0 to current_vgpu_type and select another',
        details: { gpu: this.bdf, vf: vfIndex, selected: sel.type.id, requested: type.id },
      });
    } else {
      // The selection (the operator's) already holds its instance and FB placement: the CHID run is what is left.
      this.assertChidRoom(sel.type, vfIndex);
    }
    if (!this.mgr.policy.isUsable(sel.type)) {
      // Upstream accepts the selection and fails the create in setup_fbmem_heap (-ENODEV): nothing is made. A type
      // this call selected itself is deselected again; one the operator wrote to current_vgpu_type stays, as upstream.
      if (autoSelected) this.mgr.policy.deselect(vfIndex);
      throw new VfAbiError('ENODEV', `vGPU type ${sel.type.id} (${sel.type.name}) does not support ECC, and ECC is enabled on ${this.bdf}`, {
        hint: 'pick a type with ECC support, or disable ECC on the GPU', details: { gpu: this.bdf, vf: vfIndex, typeId: sel.type.id },
      });
    }
    const rec = new VgpuRecord(this.o.newId(), this.bdf, vf, sel.type, sel, uuid !== undefined ? { uuid, createdAt: Date.now() } : undefined);
    rec.autoSelected = autoSelected;
    this.byId.set(rec.id, rec);
    this.byVf.set(vfIndex, rec);
    this.retired.delete(vfIndex);
    // The VF is "open" while it has a vGPU: its type cannot change under it (EBUSY on current_vgpu_type).
    this.mgr.setVfOpen(vfIndex, true);
    this.transition(rec, 'creating');
    this.step(rec, 'register', 'begin');
    rec.done.push('register');
    this.step(rec, 'register', 'done');
    return rec;
  }

  /**
   * Refuse up front (VGPU_ENOSPC, nothing made) a create whose CHID run cannot be found: CHIDs are handed out as
   * contiguous runs sized by the type (chidsPerVgpu), and a heterogeneous mix can leave enough free IDs in total but
   * no run long enough. Without this the create got as far as its 'chids' step and was unwound from there.
   */
  private assertChidRoom(type: VgpuTypeRecord, vf: number): void {
    const count = this.mgr.chidsFor(type);
    const s = this.gpu.channels.stats();
    if (count > 0 && this.mgr.chidRoomFor(type, { exceptVf: vf, atMost: 1 }) < 1) {
      throw new VgpuError(ErrorCode.NoSpace, `no run of ${count} free CHIDs for a ${type.name} on ${this.bdf} (longest free run ${s.largestFree})`, {
        hint: 'destroy a vGPU of another type to free a longer CHID run, or choose a type with more instances (fewer CHIDs each)',
        details: { gpu: this.bdf, type: type.id, chids: count, largestFree: s.largestFree },
      });
    }
  }

  private async runCreate(rec: VgpuRecord, signal?: AbortSignal): Promise<VgpuRecord> {
    let current: CreateStep = 'register';
    try {
      // Write-ahead: the intent is on disk before the first hardware step.
      await this.journalPut(rec, 'creating');
      for (const unit of STEP_UNITS) {
        if (unit.name === 'register') continue;
        current = unit.name;
        if (signal?.aborted) throw new VgpuError(ErrorCode.Cancelled, `create of ${rec.id} was cancelled`, { hint: 'the caller aborted it' });
        if (this.st === 'lost' || this.st === 'resetting') throw this.lostError();
        if (unit.name === 'rm-client' && this.o.newClientHandle !== undefined) {
          // The handle goes to the journal BEFORE the firmware allocates it (with the FB/heap/CHIDs taken so far).
          rec.clientHandle = await this.o.newClientHandle();
          await this.journalPut(rec, 'creating');
        }
        this.step(rec, unit.name, 'begin');
        for (let tries = 1; ; tries++) {
          try {
            await unit.do(rec, this.env, signal);
            break;
          } catch (e) {
            // The firmware already has a client with that handle: one a lost or damaged journal record held (the
            // sequence restarted below it). Skip it, journalling the next handle before trying again.
            if (unit.name !== 'rm-client' || this.o.newClientHandle === undefined || !isDuplicateHandle(e) || tries >= 8) throw e;
            this.log.warn('the firmware already holds this RM client handle; journalling the next one', { vgpu: rec.id, hClient: rec.clientHandle });
            rec.clientHandle = await this.o.newClientHandle();
            await this.journalPut(rec, 'creating');
          }
        }
        rec.done.push(unit.name);
        // Resources that outlive the daemon are journalled before moving on — unless the record on disk already
        // names them: with its client handle journalled before RM_ALLOC (newClientHandle), a rollback frees that
        // handle and stops a plugin task of the gfid whatever came after (rollbackJournalled), so two more
        // atomic writes (two fsyncs each, ~2–4 ms on the state disk: docs/benchmarks.md) would add nothing.
        if ((unit.name === 'rm-client' || unit.name === 'bootload') && rec.clientHandle === undefined) await this.journalPut(rec, 'creating');
        this.step(rec, unit.name, 'done');
      }
      await this.journalPut(rec, 'ready');
      this.transition(rec, 'ready');
      if (rec.autoSelected) this.persistGpu();
      rec.log(`ready: type ${rec.type.id} (${rec.type.name}), FB 0x${rec.res.guestFb!.offset.toString(16)}+0x${rec.res.guestFb!.size.toString(16)}, CHIDs ${rec.res.chids!.offset}+${rec.res.chids!.count}`);
      return rec;
    } catch (cause) {
      this.step(rec, current, 'failed');
      const lost = this.st === 'lost' || this.st === 'resetting';
      await this.walkBack(rec, lost ? 'lost' : 'unwind');
      const inner = cause instanceof Error ? cause.message : String(cause);
      const journalFailed = current === 'register' && isVgpuError(cause) && (cause.code === ErrorCode.StateFull || cause.code === ErrorCode.Journal);
      // The intent could not be journalled: nothing was made, and the journal's own error says what to free.
      const err = journalFailed
        ? new VgpuError(cause.code, `cannot create a vGPU on VF ${rec.vf.index} of ${this.bdf}: ${inner}`, { hint: cause.hint, details: { ...cause.details, gpu: this.bdf, vf: rec.vf.index }, cause })
        : new VgpuError(ErrorCode.CreateStep, `creating vGPU ${rec.id} on VF ${rec.vf.index} of ${this.bdf} failed at step '${current}': ${inner}`, {
          hint: isVgpuError(cause) ? cause.hint : 'see the daemon log for the failing step',
          details: { step: current, gpu: this.bdf, vf: rec.vf.index, vgpu: rec.id, ...(isVgpuError(cause) ? { cause: cause.code } : {}) },
          cause,
        });
      rec.error = { code: isVgpuError(cause) ? cause.code : ErrorCode.Internal, message: inner, step: current };
      rec.log(`create failed at step '${current}': ${inner}`);
      this.log.error('vGPU create failed; unwound the steps done', { vgpu: rec.id, step: current, error: cause });
      // A failed create is gone from the list (its log stays readable until the VF is reused), also one a GPU loss
      // interrupted: it never served a guest, and the lost firmware holds nothing of it, so listing it as 'lost'
      // would only leave the operator a vGPU to remove that never existed.
      if (lost) this.forget(rec);
      this.transition(rec, 'failed', lost ? 'GPU lost during create' : `step '${current}' failed`);
      // The VF's type selection before the vGPU record: see destroy.
      await this.persistGpuNow();
      await this.journalRemove(rec.id);
      throw err;
    }
  }

  // ---------------------------------------------------------------------------------------------------------------
  // destroy

  /**
   * Destroy a vGPU (docs/reference/create-order.md). In use by a VMM → EBUSY unless `force`. Destroying while it is
   * being created is refused (IllegalState); a second destroy while one runs joins it.
   */
  destroy(id: string, opts: { force?: boolean } = {}): Promise<void> {
    const rec = this.byId.get(id);
    if (rec === undefined) throw notFound(id);
    if (rec.destroying !== undefined) return rec.destroying;
    if (rec.state === 'creating') {
      throw new VgpuError(ErrorCode.IllegalState, `vGPU ${id} is still being created`, {
        hint: 'wait for the create to finish (or fail), then destroy it', details: { vgpu: id, state: rec.state },
      });
    }
    if (rec.inUse && opts.force !== true) {
      const pid = rec.exposure?.pid ?? null;
      throw new VgpuError(ErrorCode.Busy, `vGPU ${id} is in use by a VM${pid !== null ? ` (VMM pid ${pid}, attached through ${rec.exposure!.socket})` : ''}`, {
        hint: 'stop the VM first, or pass force (the VMM is asked to release the device and disconnected)',
        details: { vgpu: id, ...(pid !== null ? { vmmPid: pid } : {}) },
      });
    }
    const release = rec.inUse && opts.force === true && rec.exposure?.pid != null ? this.o.releaser : undefined;
    if (rec.state === 'lost') {
      // Nothing left to free on the host: drop the record.
      rec.destroying = this.queue.run(rec.vf.index, async () => {
        this.forget(rec);
        await this.journalRemove(rec.id);
        this.transition(rec, 'destroyed', 'operator removed the lost vGPU');
        this.persistGpu();
      });
      return rec.destroying;
    }
    this.transition(rec, 'stopping'); // synchronous: a reset or a second destroy now sees 'stopping'
    rec.destroying = this.queue.run(rec.vf.index, async () => {
      if (release !== undefined) {
        // Forced destroy of an attached vGPU: the VMM is told and disconnected before anything is torn down.
        try {
          await release.release(rec.id, 'vGPU destroyed (forced)');
        } catch (error) {
          this.log.warn('could not release the vGPU from its VMM; destroying anyway', { vgpu: rec.id, error });
        }
      }
      // Write-ahead: 'stopping' is on disk before the first teardown step; a crash mid-walk is rolled back at start.
      try {
        await this.journalPut(rec, 'stopping');
      } catch (error) {
        // Without its journal entry a crash mid-destroy would leave the next start adopting a half-torn-down vGPU:
        // refuse, with nothing done. The vGPU stays ready; the error says what to free.
        delete rec.destroying;
        if (rec.state === 'stopping') this.transition(rec, 'ready', 'destroy refused: could not journal it');
        this.log.error('destroy refused: could not journal it', { vgpu: rec.id, error });
        const e = isVgpuError(error) ? error : new VgpuError(ErrorCode.Journal, String(error));
        throw new VgpuError(e.code, `cannot destroy ${rec.id}: ${e.message}`, { hint: e.hint, details: { ...e.details, vgpu: rec.id }, cause: error });
      }
      await this.walkBack(rec, 'destroy');
      this.forget(rec); // a GPU loss mid-destroy skipped the unregister; the operator asked for it gone
      // The VF's deselection reaches the journal BEFORE the vGPU record goes: a crash in between would otherwise
      // leave the VF's type selected at the next start (as if an operator had chosen it) with no vGPU on it, which
      // on a homogeneous GPU blocks every other type (found by a kill -9 during a layout apply).
      await this.persistGpuNow();
      await this.journalRemove(rec.id);
      this.transition(rec, 'destroyed');
    });
    return rec.destroying;
  }

  /** Run the undos of the steps done, newest first. Each undo's failure is logged and the walk continues. */
  private async walkBack(rec: VgpuRecord, mode: UndoMode): Promise<void> {
    const byName = new Map(STEP_UNITS.map((u) => [u.name, u]));
    for (const name of [...rec.done].reverse()) {
      const unit = byName.get(name as CreateStep)!;
      this.step(rec, unit.name, 'undo');
      try {
        await unit.undo(rec, this.env, mode);
      } catch (error) {
        this.log.warn(`undo of step '${name}' failed; continuing`, { vgpu: rec.id, mode, error });
        rec.log(`undo of '${name}' failed: ${(error as Error).message}`);
      }
      rec.done.pop();
    }
  }

  private unregister(rec: VgpuRecord, mode: UndoMode): void {
    if (mode === 'lost') return; // a lost vGPU stays listed (state 'lost') until an operator removes it
    this.forget(rec);
  }

  private forget(rec: VgpuRecord): void {
    if (this.byId.get(rec.id) !== rec) return;
    this.byId.delete(rec.id);
    if (this.byVf.get(rec.vf.index) === rec) this.byVf.delete(rec.vf.index);
    this.retired.set(rec.vf.index, rec);
    this.mgr.setVfOpen(rec.vf.index, false);
    if (rec.autoSelected) {
      try {
        this.mgr.policy.deselect(rec.vf.index);
      } catch (error) {
        this.log.warn('could not deselect the VF type the create selected', { vgpu: rec.id, error });
      }
    }
  }

  // ---------------------------------------------------------------------------------------------------------------
  // reset, BME, in-use

  /** VFIO_DEVICE_RESET (docs/reference/create-order.md): RPC RESET, then scrub the guest FB (reason 'reset'). */
  reset(id: string): Promise<void> {
    const rec = this.readyRecord(id, 'reset');
    this.assertScrubber(`reset vGPU ${id}`);
    return this.queue.run(rec.vf.index, async () => {
      this.readyRecord(id, 'reset');
      this.step(rec, 'reset', 'begin');
      await rec.res.channel!.call(VgpuRpcMsg.RESET);
      await scrubGuestFb(rec, this.env, 'reset');
      rec.log('reset');
      this.step(rec, 'reset', 'done');
    });
  }

  /** UPDATE_BME_STATE {enable} (docs/reference/create-order.md). Unlike upstream, close may send enable=false. */
  setBme(id: string, enable: boolean): Promise<void> {
    const rec = this.readyRecord(id, 'change bus mastering of');
    return this.queue.run(rec.vf.index, async () => {
      this.readyRecord(id, 'change bus mastering of');
      await rec.res.channel!.call(VgpuRpcMsg.UPDATE_BME_STATE, encodeBmeState({ enable }));
      rec.log(`bus master ${enable ? 'enabled' : 'disabled'}`);
    });
  }

  setInUse(id: string, inUse: boolean): void {
    const rec = this.byId.get(id);
    if (rec === undefined) throw notFound(id);
    rec.markedInUse = inUse;
  }

  /** The vfio-user face reports the socket and the attached VMM (pid null: none attached). */
  setExposure(id: string, e: { socket: string; pid: number | null } | null): void {
    const rec = this.byId.get(id);
    if (rec === undefined) throw notFound(id);
    const was = rec.exposure?.pid ?? null;
    rec.exposure = e;
    const now = e?.pid ?? null;
    if (was !== now) rec.log(now !== null ? `VMM attached (pid ${now}) through ${e!.socket}` : `VMM detached${was !== null ? ` (pid ${was})` : ''}`);
  }

  /**
   * Never hand out FB that was not wiped: a create (FB for a new guest) and a reset (the FB may go to the next VM)
   * need a scrubber, unless the config explicitly allows unscrubbed FB.
   */
  private assertScrubber(what: string): void {
    if (this.o.scrubber !== undefined || this.o.allowUnscrubbedFb === true) return;
    throw new VgpuError(ErrorCode.IllegalState, `refusing to ${what} on ${this.bdf}: no FB scrubber is bound, so the guest FB could still hold another tenant's data`, {
      hint: "load the scrub plugin (plugins.enabled: ['*'], or list 'scrub'); only a test rig that must run without it sets plugins.lifecycle.allowUnscrubbedFb: true",
      details: { gpu: this.bdf, reason: 'no-scrubber' },
    });
  }

  private readyRecord(id: string, what: string): VgpuRecord {
    const rec = this.byId.get(id);
    if (rec === undefined) throw notFound(id);
    if (rec.state !== 'ready' || rec.res.channel === undefined) {
      throw new VgpuError(ErrorCode.IllegalState, `cannot ${what} vGPU ${id}: it is ${rec.state}`, {
        hint: 'only a ready vGPU can do that', details: { vgpu: id, state: rec.state },
      });
    }
    return rec;
  }

  // ---------------------------------------------------------------------------------------------------------------
  // quarantined VFs (their state was lost with a damaged journal record; see vf-quarantine.ts)

  /** Take a VF out of service at start (a damaged record's VF, or one quarantined by an earlier run). */
  holdQuarantined(entry: JournalQuarantine): JournalQuarantine {
    if (this.byVf.has(entry.vf)) {
      throw new VgpuError(ErrorCode.Busy, `VF ${entry.vf} of ${this.bdf} has a vGPU; it cannot be quarantined`, { hint: 'this is a reconcile bug' });
    }
    return this.vfQuarantine.hold(entry);
  }

  isQuarantined(vf: number): boolean {
    return this.vfQuarantine.has(vf);
  }

  /** True while a quarantined VF whose holdings are unknown makes every create on this GPU wait. */
  createsBlocked(): boolean {
    return this.vfQuarantine.blocksCreates();
  }

  quarantinedVfs(): QuarantinedVf[] {
    return this.vfQuarantine.list((vf) => this.vfBdf(vf));
  }

  /** The operator's release of a quarantined VF; runs in the VF's queue like any operation on it. */
  releaseVf(vf: number): Promise<VfReleaseReport> {
    const pending = this.releasing.get(vf);
    if (pending !== undefined) return pending; // a second release while one runs joins it
    this.assertUsable('release a quarantined VF');
    if (!this.vfQuarantine.has(vf)) return this.vfQuarantine.release(vf); // throws VGPU_ESTATE
    const p = this.queue.run(vf, () => this.vfQuarantine.release(vf)).finally(() => this.releasing.delete(vf));
    this.releasing.set(vf, p);
    return p;
  }

  /** The PCI address of VF `vf` (its index when it is not enabled). */
  vfBdf(vf: number): string {
    return this.vfOf(vf)?.bdf ?? `${this.bdf} VF ${vf}`;
  }

  // ---------------------------------------------------------------------------------------------------------------
  // journal and warm restart

  /** Build the journal record of a vGPU from what it holds now. */
  private journalRecord(rec: VgpuRecord, state: JournalVgpu['state']): JournalVgpu {
    const r = rec.res;
    return {
      id: rec.id, gpu: this.bdf, vf: rec.vf.index, typeId: rec.type.id, typeName: rec.type.name, state,
      placementId: rec.selection.placement.id, autoSelected: rec.autoSelected, uuid: rec.uuidHex,
      ...(rec.selection.mixedSlot !== undefined ? { mixedPlacementId: rec.selection.mixedSlot } : {}),
      ...(r.chids !== undefined ? { chids: { offset: r.chids.offset, count: r.chids.count } } : {}),
      ...(r.guestFb !== undefined ? { guestFb: { offset: r.guestFb.offset, size: r.guestFb.size } } : {}),
      ...(r.heap !== undefined ? { heap: { offset: r.heap.offset, size: r.heap.size } } : {}),
      ...(rec.clientHandle !== undefined ? { clientHandle: rec.clientHandle } : {}),
      ...(r.client !== undefined ? { client: { ...r.client } } : {}),
      ...(r.pluginTask === true ? { pluginTask: true } : {}),
      ...(rec.requestId !== undefined ? { requestId: rec.requestId } : {}),
      createdAt: rec.createdAt, updatedAt: Date.now(),
    };
  }

  private async journalPut(rec: VgpuRecord, state: JournalVgpu['state']): Promise<void> {
    if (this.o.journal !== undefined) await this.o.journal.putVgpu(this.journalRecord(rec, state));
  }

  private async journalRemove(id: string): Promise<void> {
    try {
      await this.o.journal?.removeVgpu(id);
    } catch (error) {
      // The next start finds a record of a vGPU that is gone and rolls it back (idempotent frees): log, go on.
      this.log.error('could not remove the journal record of a vGPU', { vgpu: id, error });
    }
  }

  /** persistGpu, awaited (a failure is logged: the next start re-derives what it can). */
  private async persistGpuNow(): Promise<void> {
    const j = this.o.journal;
    if (j === undefined) return;
    await j.putGpu(this.gpuRecord()).catch((error: unknown) => this.log.error('could not journal the GPU state', { error }));
  }

  /** Journal this GPU's manager clients and VF type selections (fire and forget; writes are ordered). */
  persistGpu(): void {
    const j = this.o.journal;
    if (j === undefined) return;
    j.putGpu(this.gpuRecord()).catch((error: unknown) => this.log.error('could not journal the GPU state', { error }));
  }

  private gpuRecord(): JournalGpu {
    return {
      bdf: this.bdf, managerClients: [...this.managerClients], updatedAt: Date.now(),
      selections: this.mgr.policy.selections().map((s) => ({ vf: s.vf, typeId: s.type.id, placementId: s.placement.id })),
    };
  }

  /**
   * Re-attach a vGPU a previous daemon left running (warm restart), WITHOUT touching the guest: the type selection,
   * CHIDs, guest FB and heap are re-taken at their journalled places, the heap's comm buffer re-mapped (not zeroed),
   * the RM client rebuilt from its journalled handles, and the mailbox re-attached continuing its sequence numbers.
   * A GET_GUEST_INFO through the mailbox then proves the plugin task is still there. Any failure tears down
   * everything (the guest FB is scrubbed) and rejects; the caller drops the record.
   */
  async adopt(j: JournalVgpu): Promise<VgpuRecord> {
    const fail = (why: string): VgpuError => new VgpuError(ErrorCode.IllegalState, `cannot adopt vGPU ${j.id}: ${why}`, {
      hint: 'it was rolled back; create it again', details: { vgpu: j.id, gpu: this.bdf, vf: j.vf },
    });
    const vf = this.vfOf(j.vf);
    if (vf === undefined) throw fail(`VF ${j.vf} is not enabled any more`);
    if (this.byVf.has(j.vf) || this.byId.has(j.id)) throw fail(`VF ${j.vf} or id ${j.id} is already taken`);
    const type = this.mgr.policy.typeById(j.typeId);
    if (type === undefined) throw fail(`type ${j.typeId} is not installed any more`);
    if (j.chids === undefined || j.guestFb === undefined || j.heap === undefined || j.client === undefined || j.pluginTask !== true) {
      throw fail('its journal record is incomplete');
    }
    let sel = this.mgr.selectionOf(j.vf);
    if (sel === undefined) sel = this.mgr.policy.select(j.vf, j.typeId, restoreAt(j));
    else if (sel.type.id !== j.typeId) throw fail(`VF ${j.vf} has type ${sel.type.id} selected, not ${j.typeId}`);
    const rec = new VgpuRecord(j.id, this.bdf, vf, type, sel, { uuid: Uint8Array.from(Buffer.from(j.uuid, 'hex')), createdAt: j.createdAt });
    rec.autoSelected = j.autoSelected;
    if (j.clientHandle !== undefined) rec.clientHandle = j.clientHandle;
    if (j.requestId !== undefined) rec.requestId = j.requestId;
    this.byId.set(rec.id, rec);
    this.byVf.set(j.vf, rec);
    this.retired.delete(j.vf);
    this.mgr.setVfOpen(j.vf, true);
    rec.done.push('register');
    const mem = this.gpu.memory;
    try {
      rec.res.chids = this.mgr.allocChids({ vf: j.vf, count: j.chids.count, owner: rec.id, at: j.chids.offset });
      rec.done.push('chids');
      rec.res.guestFb = mem.reserve({ size: j.guestFb.size, align: this.mgr.vmmuSegmentSize, at: j.guestFb.offset, owner: rec.id, label: 'guest-fb' });
      rec.done.push('guest-fb', 'scrub');
      const heap = this.mgr.reserveHeap({ vf: j.vf, size: j.heap.size, at: j.heap.offset, owner: rec.id });
      rec.res.heap = heap;
      // Mapped, NOT zeroed: the control buffer holds the live mailbox state of the running plugin task.
      rec.res.heapMapping = mem.map(heap, { offset: 0n, size: BigInt(MgmtHeap.COMM_BUFF_SIZE) });
      rec.done.push('mgmt-heap');
      rec.res.client = { ...j.client };
      rec.done.push('rm-client');
      rec.res.pluginTask = true;
      rec.done.push('bootload');
      const ch = new HostRpcChannel({
        mapping: rec.res.heapMapping, registers: this.gpu.registers, gfid: rec.gfid,
        callTimeoutMs: this.o.timeouts.mailboxMs, pollIntervalMs: this.o.timeouts.pollIntervalMs,
      });
      const seq = ch.resumeSequence();
      rec.res.channel = ch;
      rec.done.push('rpc-setup');
      // Liveness: a configured plugin task answers GET_GUEST_INFO; a gone one (GSP rebooted) never answers.
      await ch.call(VgpuRpcMsg.GET_GUEST_INFO, new Uint8Array(0), { timeoutMs: Math.min(this.o.timeouts.mailboxMs, 2000) });
      rec.done.push('ready');
      rec.state = 'ready';
      rec.log(`adopted after a daemon restart: FB 0x${j.guestFb.offset.toString(16)}+0x${j.guestFb.size.toString(16)}, CHIDs ${j.chids.offset}+${j.chids.count}, mailbox seq ${seq}`);
      this.o.bus.emit('vgpu:state', { gpu: this.bdf, vgpuId: rec.id, vf: rec.vf.index, from: null, to: 'ready', reason: 'adopted after a daemon restart' });
      await this.journalPut(rec, 'ready');
      return rec;
    } catch (cause) {
      rec.log(`adopt failed: ${(cause as Error).message}`);
      const scrubbed = rec.done.includes('guest-fb');
      await this.walkBack(rec, 'destroy');
      // What the walk could not reach (it failed before re-taking them): the firmware side and the FB contents.
      await this.rollbackJournalled(j, { scrub: !scrubbed });
      throw new VgpuError(ErrorCode.IllegalState, `cannot adopt vGPU ${j.id}: ${(cause as Error).message}`, {
        hint: 'it was rolled back; create it again', details: { vgpu: j.id, gpu: this.bdf, vf: j.vf }, cause,
      });
    }
  }

  /**
   * A journalled vGPU the device cannot hold any more: GSP-RM was rebooted while no daemon watched (the device was
   * restarted, or reset). Its firmware side is undone (idempotent, fast on a fresh GSP-RM) and its guest FB scrubbed,
   * and it is listed as 'lost' with the reason until an operator destroys it — reported, as a GPU reset reports the
   * vGPUs it took, rather than silently gone. Its VF keeps its type selection until then.
   */
  async reportLost(j: JournalVgpu, reason: string): Promise<VgpuRecord | undefined> {
    await this.rollbackJournalled(j);
    const vf = this.vfOf(j.vf);
    const type = this.mgr.policy.typeById(j.typeId);
    if (vf === undefined || type === undefined || this.byVf.has(j.vf) || this.byId.has(j.id)) return undefined;
    let sel = this.mgr.selectionOf(j.vf);
    try {
      if (sel === undefined) sel = this.mgr.policy.select(j.vf, j.typeId, restoreAt(j));
    } catch (error) {
      this.log.warn('a vGPU lost while the daemon was down cannot be listed (its VF type cannot be selected again)', { vgpu: j.id, error });
      return undefined;
    }
    if (sel.type.id !== j.typeId) return undefined;
    const rec = new VgpuRecord(j.id, this.bdf, vf, type, sel, { uuid: Uint8Array.from(Buffer.from(j.uuid, 'hex')), createdAt: j.createdAt });
    rec.autoSelected = j.autoSelected;
    rec.state = 'lost';
    rec.error = { code: ErrorCode.GpuLost, message: reason };
    this.byId.set(rec.id, rec);
    this.byVf.set(j.vf, rec);
    this.mgr.setVfOpen(j.vf, true);
    rec.log(`lost: ${reason}`);
    this.o.bus.emit('vgpu:state', { gpu: this.bdf, vgpuId: rec.id, vf: rec.vf.index, from: null, to: 'lost', reason });
    return rec;
  }

  /**
   * Undo what a journalled vGPU may hold without re-attaching it (a create or destroy a crash interrupted, or a
   * failed adopt): shut down and clean up the plugin task of its gfid, free its RM client (by the journalled
   * handle even if the allocation never finished), and scrub what was its guest FB. Every step is idempotent and
   * its failure logged, so a half-made record never blocks the start.
   */
  async rollbackJournalled(j: JournalVgpu, opts: { scrub?: boolean } = {}): Promise<void> {
    const fw = this.gpu.firmware;
    const rpc = { timeoutMs: this.o.timeouts.rpcMs };
    const gfid = j.vf + 1;
    const hClient = j.client?.hClient ?? j.clientHandle;
    const quiet = async (what: string, fn: () => Promise<unknown>): Promise<void> => {
      try {
        await fn();
      } catch (error) {
        this.log.debug(`rollback of ${j.id}: ${what} failed (nothing to undo?)`, { error: (error as Error).message });
      }
    };
    if (hClient !== undefined) {
      // A plugin task may run only if the client existed: bootload is sent on it. Ask through the manager's
      // client when the vGPU's own never finished allocating.
      const client = j.client ?? this.mgr.client;
      if (await this.pluginTaskMayRun(j)) {
        await quiet('SHUTDOWN_GSP_VGPU_PLUGIN_TASK', () => fw.control(client, RmControl.VGPU_MGR_INTERNAL_SHUTDOWN_GSP_VGPU_PLUGIN_TASK, encodeShutdownParams(gfid), rpc));
        await quiet('VGPU_PLUGIN_CLEANUP', () => fw.control(client, RmControl.VGPU_MGR_INTERNAL_VGPU_PLUGIN_CLEANUP, encodePluginCleanupParams(gfid), rpc));
      }
      await quiet('free RM client', () => fw.freeClient(j.client ?? { hClient, hDevice: 0, hSubdevice: 0 }, rpc));
    }
    if (opts.scrub !== false && j.guestFb !== undefined && j.chids !== undefined && this.o.scrubber !== undefined) {
      // It held a guest's data: wipe it before the FB goes back to the pool (the next create scrubs too).
      await quiet('scrub of the old guest FB', async () => {
        const range = this.gpu.memory.reserve({ size: j.guestFb!.size, at: j.guestFb!.offset, align: this.mgr.vmmuSegmentSize, owner: j.id, label: 'guest-fb' });
        let chids;
        try {
          chids = this.gpu.channels.alloc(j.chids!.count, j.id, { at: j.chids!.offset });
          await this.o.scrubber!.scrub({
            gpu: this.gpu, range, chids, vgpuId: j.id, reason: 'destroy', timeoutMs: this.o.timeouts.scrubMs, scratchBelow: this.mgr.region.base,
          });
        } finally {
          if (chids !== undefined) this.gpu.channels.free(chids);
          this.gpu.memory.free(range);
        }
      });
    }
  }

  /**
   * Whether the firmware may run a plugin task for the record's gfid (bootload sent, or possibly in flight). A
   * journalled client handle counts: the create journals nothing more between RM_ALLOC and 'ready' once the handle
   * is on disk, so a crash during BOOTLOAD leaves only the handle. Stopping a task that is not there answers "no such
   * task", which the rollback ignores.
   */
  private async pluginTaskMayRun(j: JournalVgpu): Promise<boolean> {
    return j.pluginTask === true || j.client !== undefined || j.clientHandle !== undefined;
  }

  // ---------------------------------------------------------------------------------------------------------------
  // host events (docs/reference/core-driver-interface.md)

  private onHostEvent(kind: 'suspend' | 'resume' | 'unbind' | 'sriov-configure', numVfs?: number): void {
    this.o.bus.emit('host:event', { gpu: this.bdf, kind, ...(numVfs !== undefined ? { numVfs } : {}) });
    this.log.info('host event', { kind, numVfs });
    switch (kind) {
      case 'sriov-configure': {
        const n = numVfs ?? 0;
        void this.teardown((r) => r.vf.index >= n, `SR-IOV reconfigured to ${n} VFs`).then(() => {
          for (const s of this.mgr.policy.selections()) if (s.vf >= n) this.mgr.policy.deselect(s.vf);
        });
        break;
      }
      case 'unbind':
        this.st = 'unbound';
        void this.teardown(() => true, 'PF driver unbound').then(() => {
          for (const s of this.mgr.policy.selections()) this.mgr.policy.deselect(s.vf);
        });
        break;
      case 'suspend':
        if (this.st === 'ready') this.st = 'suspended';
        void this.quiesce(true);
        break;
      case 'resume':
        if (this.st === 'suspended') this.st = 'ready';
        void this.quiesce(false);
        break;
    }
  }

  /**
   * Tear down the matching vGPUs. Upstream SIGTERMs the VMM and waits, unbounded, for it to close the device
   * (docs/reference/core-driver-interface.md, docs/reference/create-order.md): one hung VMM blocks the PF unbind
   * forever. Here the device is gone, so the vGPU is destroyed now (forced) and every resource freed; the VMM sees
   * its device vanish.
   */
  private async teardown(match: (r: VgpuRecord) => boolean, why: string): Promise<void> {
    const jobs: Promise<void>[] = [];
    for (const r of this.records()) {
      if (!match(r)) continue;
      r.log(`torn down: ${why}`);
      if (r.state === 'creating') {
        // Let the create finish (or fail), then destroy what it made.
        jobs.push(this.queue.run(r.vf.index, async () => {}).then(() => (this.byId.get(r.id) === r && r.state !== 'failed' ? this.destroy(r.id, { force: true }) : undefined)));
      } else {
        jobs.push(this.destroy(r.id, { force: true }));
      }
    }
    const results = await Promise.allSettled(jobs);
    for (const res of results) if (res.status === 'rejected') this.log.error('teardown of a vGPU failed', { why, error: res.reason });
  }

  /**
   * Suspend: quiesce each ready vGPU through its plugin task with MIGRATION_STOP_WORK; resume sends
   * MIGRATION_RESUME_WORK. A documented choice (docs/reference/core-driver-interface.md: v2 has no suspend path at
   * all): it is the firmware's own "stop touching the GPU" request, the same the migration path uses before saving
   * state.
   */
  private async quiesce(stop: boolean): Promise<void> {
    const jobs = this.records().filter((r) => r.state === 'ready' && r.suspended !== stop).map((r) => this.queue.run(r.vf.index, async () => {
      if (r.state !== 'ready' || r.res.channel === undefined) return;
      this.step(r, stop ? 'suspend' : 'resume', 'begin');
      try {
        await r.res.channel.call(stop ? VgpuRpcMsg.MIGRATION_STOP_WORK : VgpuRpcMsg.MIGRATION_RESUME_WORK);
        r.suspended = stop;
        r.log(stop ? 'suspended (MIGRATION_STOP_WORK)' : 'resumed (MIGRATION_RESUME_WORK)');
        this.step(r, stop ? 'suspend' : 'resume', 'done');
      } catch (error) {
        this.step(r, stop ? 'suspend' : 'resume', 'failed');
        this.log.error(`could not ${stop ? 'suspend' : 'resume'} a vGPU`, { vgpu: r.id, error });
      }
    }));
    await Promise.allSettled(jobs);
  }

  // ---------------------------------------------------------------------------------------------------------------
  // firmware events: loss and exceptions

  private onFirmwareEvent(e: FirmwareEventRecord): void {
    if (e.name === 'GPU_LOST' || e.name === 'GSP_LOST' || (this.gpu.firmware.state === 'crashed' && this.st !== 'resetting')) {
      this.markLost(Buffer.from(e.payload).toString('utf8') || e.name);
      return;
    }
    const kind = EXCEPTION_EVENTS[e.eventId];
    if (kind === undefined) return;
    // The relay resolves the owner (the vGPU on that gfid, else this GPU) and logs it there.
    this.o.relay.report({
      gpu: this.bdf, source: 'firmware', kind, eventId: e.eventId, fatal: false, at: e.at,
      message: `${e.name}${e.gfid !== undefined ? ` (gfid ${e.gfid})` : ''}`,
      ...(e.gfid !== undefined ? { gfid: e.gfid } : {}),
    });
  }

  /**
   * The GPU (its firmware) is gone: every vGPU goes to 'lost' and the host side of each (FB, heap mapping, CHIDs)
   * is freed. No firmware call is made: a dead GSP would only time out, and it holds nothing any more.
   */
  markLost(reason: string): void {
    if (this.st === 'lost' || this.st === 'resetting') {
      // Lost again (the device came back and went away, or a reset failed and the device was restarted): the next
      // reset waits for the next device. A reset already waiting simply goes on.
      if (this.recovery === null) this.startRecovery(reason);
      return;
    }
    this.st = 'lost';
    this.why = reason;
    this.log.error('GPU lost: every vGPU on it is lost', { reason });
    this.o.bus.emit('gpu:lost', { gpu: this.bdf, reason });
    this.o.relay.report({ gpu: this.bdf, source: 'firmware', kind: 'gsp-crash', fatal: true, at: Date.now(), message: `GPU lost: ${reason}` });
    for (const r of this.records()) {
      if (r.state === 'ready' || r.state === 'stopping') {
        const from = r.state;
        r.res.channel?.close('GPU lost');
        this.transition(r, 'lost', reason);
        r.log(`lost: ${reason}`);
        // A destroy already running finishes its own walk in 'destroy' mode (its firmware calls fail fast with
        // GpuLost and are logged); otherwise free the host side now.
        if (from === 'ready') void this.queue.run(r.vf.index, () => this.walkBack(r, 'lost'));
      } else if (r.state === 'creating') {
        r.res.channel?.close('GPU lost'); // its create fails at the next step and unwinds in 'lost' mode
      }
    }
    this.startRecovery(reason);
  }

  // ---------------------------------------------------------------------------------------------------------------
  // GPU reset after a loss

  /**
   * The path a host takes after a fatal GSP error or a device that fell off the bus (OpenRM marks the GPU "reset
   * required", kernel_gsp_tu102.c gpuMarkDeviceForReset; NVIDIA's Xid catalogue lists a GPU reset as the action for
   * Xid 119/120): every vGPU is already 'lost' with its host side freed; wait for the device if it is gone, reset it
   * (HAL), boot GSP-RM again, give the manager a new RM client with the types uploaded again, and the GPU is 'ready'
   * — same FB file, nothing deleted. The lost vGPUs stay listed as 'lost' (with the reason) until an operator
   * destroys them: their guests must be restarted on new vGPUs, as after a reset on real hardware.
   */
  private startRecovery(reason: string): void {
    if (this.gpu.reset === undefined || this.recovery !== null || this.detached) return;
    const abort = new AbortController();
    const done = this.recover(reason, abort.signal).finally(() => {
      if (this.recovery?.abort === abort) this.recovery = null;
    });
    this.recovery = { abort, done };
  }

  private async recover(reason: string, signal: AbortSignal): Promise<void> {
    const t0 = performance.now();
    this.o.bus.emit('gpu:reset', { gpu: this.bdf, phase: 'begin', reason });
    try {
      // The lost vGPUs' host-side walks run in their VF queues: they finish before the device is touched.
      await this.queue.idle();
      await this.gpu.reset!({
        signal,
        onWaiting: (why) => {
          this.why = `${reason}; ${why}`;
          this.log.warn('GPU reset waits for the device', { why });
          this.o.bus.emit('gpu:reset', { gpu: this.bdf, phase: 'waiting', reason: why });
        },
      });
      this.st = 'resetting';
      this.why = `GPU reset after: ${reason}`;
      const timeoutMs = this.o.timeouts.rpcMs;
      const fw = await this.gpu.firmware.boot({ version: this.gpu.config.firmwareFloor, source: 'gpu-reset' }, { timeoutMs });
      // Write-ahead, as at start: the manager's new client handle is journalled before the firmware allocates it.
      const hClient = this.o.newClientHandle !== undefined ? await this.o.newClientHandle() : undefined;
      if (hClient !== undefined) {
        this.managerClients = [hClient];
        await this.persistGpuNow();
      }
      await this.mgr.rebindAfterReset({ timeoutMs, ...(hClient !== undefined ? { hClient } : {}) });
      if (hClient === undefined) this.managerClients = [this.mgr.client.hClient];
      const lost = this.records().filter((r) => r.state === 'lost');
      // The reset took GSP-RM's state with it: nothing journalled for them is alive in the device any more.
      for (const r of lost) await this.journalRemove(r.id);
      this.persistGpu();
      this.st = 'ready';
      this.why = null;
      this.resets++;
      const ms = Math.round(performance.now() - t0);
      this.log.warn('GPU reset done: GSP-RM rebooted, the GPU is ready; its vGPUs were lost and stay listed as lost until destroyed', {
        firmware: fw.version, lostVgpus: lost.map((r) => r.id), ms,
      });
      for (const r of lost) r.log(`the GPU was reset (${reason}); this vGPU did not survive: destroy it and create a new one`);
      this.o.bus.emit('gpu:reset', { gpu: this.bdf, phase: 'done', lostVgpus: lost.map((r) => r.id) });
      this.o.bus.emit('gpu:ready', { gpu: this.bdf });
    } catch (error) {
      if (this.detached || signal.aborted) return;
      this.st = 'lost';
      this.why = `GPU reset failed: ${(error as Error).message} (after: ${reason})`;
      this.log.error('GPU reset failed; the GPU stays lost until its device is restarted', { error });
      this.o.bus.emit('gpu:reset', { gpu: this.bdf, phase: 'failed', reason: (error as Error).message });
    }
  }

  private lostError(): VgpuError {
    const resetting = this.recovery !== null;
    return new VgpuError(ErrorCode.GpuLost, `${this.bdf} is lost: ${this.why ?? 'its firmware or device is gone'}`, {
      hint: resetting
        ? 'the GPU is being reset and comes back by itself (its device must be running); `vgpuctl status` says where it is'
        : 'restart its device (vgpu-sim); the daemon resets the GPU when the device is back',
      details: { gpu: this.bdf, state: this.st },
    });
  }

  private assertUsable(what: string): void {
    if (this.st === 'ready') return;
    if (this.st === 'lost' || this.st === 'resetting') throw this.lostError();
    throw new VgpuError(ErrorCode.IllegalState, `cannot ${what} on ${this.bdf}: the GPU is ${this.st}`, {
      hint: this.st === 'suspended' ? 'wait for the host to resume' : 'rebind the GPU and restart the daemon', details: { gpu: this.bdf, state: this.st },
    });
  }

  // ---------------------------------------------------------------------------------------------------------------

  private transition(rec: VgpuRecord, to: VgpuState, reason?: string): void {
    const from = rec.state === to && to === 'creating' ? null : rec.state;
    assertTransition(rec.id, from, to);
    rec.state = to;
    rec.log(`state ${from ?? '(new)'} → ${to}${reason ? ` (${reason})` : ''}`);
    this.o.bus.emit('vgpu:state', { gpu: this.bdf, vgpuId: rec.id, vf: rec.vf.index, from, to, ...(reason !== undefined ? { reason } : {}) });
  }

  private step(rec: VgpuRecord, step: string, phase: 'begin' | 'done' | 'undo' | 'failed'): void {
    this.log.debug('vGPU step', { vgpu: rec.id, step, phase });
    this.o.bus.emit('vgpu:step', { gpu: this.bdf, vgpuId: rec.id, step, phase });
  }
}

function notFound(id: string): VgpuError {
  return new VgpuError(ErrorCode.NotFound, `no vGPU ${id}`, { hint: 'list the vGPUs for their ids', details: { id } });
}

/** Where a journalled vGPU's selection is re-taken: its FB slot and, in mixed-size mode, NVIDIA's placement. */
function restoreAt(j: JournalVgpu): { placementAt: number; mixedAt?: number } {
  return { placementAt: j.placementId, ...(j.mixedPlacementId !== undefined ? { mixedAt: j.mixedPlacementId } : {}) };
}
