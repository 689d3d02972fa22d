/**
 * The guest's side of a vGPU's firmware task (docs/vfio-user.md "Guest RPC"): the guest rings the VF doorbell
 * (token 0 setup, 1 message) after putting a control page, a response page and a message buffer in its own memory;
 * the task reads them by DMA, does the work, writes the answer back by DMA and raises leaf-0 bit 0 (MSI-X vector 0).
 * Modelled on the guest-RM protocol of open-gpu-kernel-modules (src/nvidia/src/kernel/vgpu/rpc.c: control and
 * response buffers in guest sysmem, the control buffer's address in MAILBOX_SCRATCH(2/3), doorbell handles 0/1,
 * responseId == requestId); the page layout and the function numbers are the simulator's.
 *
 * Runs on the GSP thread, inside the plugin task: it answers only while the task runs (not after SHUTDOWN, not
 * while MIGRATION_STOP_WORK holds the vGPU — rings wait until RESUME_WORK), and it keeps the task's record for the
 * front (state, FB slice) in the VF state page.
 *
 * A stop that comes while a call is being served (its DMA reads in flight) must leave nothing to land after it is
 * acknowledged: the call checks the work state at its commit point — after reading what the guest asked, before
 * the first thing the guest can see (a DMA write, an exception record taken, the interrupt). Stopped before that
 * point, the call is withdrawn: its ring counts as not yet seen, so it is saved as pending and answered once the
 * work runs again (here after CANCEL_STOP/RESUME_WORK, or on the migration's destination). Past it, the call
 * finishes. Either way the task answers STOP_WORK only once the call has settled (settled()).
 */
import type { SharedArena } from '../../../../native/native-ops.js';
import { NvStatus } from '../../../../core/firmware-abi/nv-status.js';
import { Bar0, Region } from '../device-layout.js';
import { TaskState, VfIntr, VfPage, vfPage } from './vf-layout.js';
import { GuestDoorbell, SCRATCH_GUEST_RPC_HI, SCRATCH_GUEST_RPC_LO, VfRegisterFile } from './vf-registers.js';
import { VfDmaClient } from './vf-dma-client.js';
import { restorePending, snapshotRegisters, stageRegisters, VF_MAX_EXCEPTIONS, type VfGuestState } from './vf-guest-state.js';

export const GuestRpcFn = { ECHO: 1, GET_INFO: 2, CE_COPY: 3, GET_EXCEPTIONS: 4 } as const;

/** A call the work stop caught before its commit point: nothing of it reached the guest. */
class Withdrawn extends Error {}

const CTRL_VERSION = 1;
const MSG_MIN = 4096;
const MSG_MAX = 128 << 10;
/** Largest CE copy one call may ask for [simulator choice]: bounds the time one call holds the task. */
const CE_MAX = 64 << 20;
const MAX_EXCEPTIONS = VF_MAX_EXCEPTIONS;

export interface GuestRpcOptions {
  arena: SharedArena;
  gfid: number;
  /** The vGPU type (updated once SETUP_CONFIG names it). */
  typeId: number;
  /** Arena offset of FB byte 0 and the guest FB slice (FB offsets). */
  fbBase: bigint;
  slice: { offset: bigint; size: bigint };
  log(line: string): void;
}

interface Setup {
  ctrl: bigint;
  resp: bigint;
  msg: bigint;
  msgSize: number;
}

export class GuestRpcService {
  readonly vf: number;
  private readonly regs: VfRegisterFile;
  private readonly dma: VfDmaClient;
  private readonly page: bigint;
  private setup: Setup | null = null;
  private busy = false;
  /** The call being served, until it settles. */
  private inFlight: Promise<void> | null = null;
  /** The work runs (MIGRATION_STOP_WORK clears it until RESUME_WORK or CANCEL_STOP). */
  private working = true;
  private stopped = false;
  private readonly exceptions: Array<{ eventId: number; at: number }> = [];
  private readonly startedAt = Date.now();
  /** Calls answered (tests). */
  answered = 0;

  constructor(private readonly o: GuestRpcOptions) {
    this.vf = o.gfid - 1;
    this.page = BigInt(vfPage(this.vf));
    this.regs = new VfRegisterFile(o.arena, this.vf, o.arena.load32(BigInt(Region.BAR0 + Bar0.PMC_BOOT_0)));
    this.dma = new VfDmaClient(o.arena, this.vf);
    const a = o.arena;
    a.window(this.page + BigInt(VfPage.FB_OFFSET), 8).writeBigUInt64LE(o.slice.offset);
    a.window(this.page + BigInt(VfPage.FB_SIZE), 8).writeBigUInt64LE(o.slice.size);
    this.store(VfPage.TASK_TYPE, o.typeId);
    // Rings from before this task (an earlier tenant of the VF) are not ours to answer.
    this.store(VfPage.RINGS_SEEN, this.load(VfPage.RINGS));
    this.store(VfPage.RINGS_SEEN + 4, this.load(VfPage.RINGS + 4));
    this.store(VfPage.RESETS_SEEN, this.load(VfPage.RESETS));
    // Registers a migration staged for an earlier tenant and its front never adopted are not this guest's.
    if (restorePending(o.arena, this.vf)) stageRegisters(o.arena, this.vf, null);
    this.setState(TaskState.RUNNING);
  }

  /**
   * MIGRATION_SAVE_STATE (the work is stopped): the guest-visible state of the VF — registers as the guest reads
   * them, its RPC channel, doorbells not answered yet, exception records not fetched yet (vf-guest-state.ts).
   */
  saveGuestState(): VfGuestState {
    return {
      regs: snapshotRegisters(this.o.arena, this.vf, () => this.regs.pending()),
      rpc: this.setup === null ? null : { ...this.setup },
      ringsPending: [this.load(VfPage.RINGS) !== this.load(VfPage.RINGS_SEEN), this.load(VfPage.RINGS + 4) !== this.load(VfPage.RINGS_SEEN + 4)],
      exceptions: this.exceptions.map((e) => ({ ...e })),
    };
  }

  /**
   * MIGRATION_RESTORE_DEFERRED_STATE accepted an image: take the source's guest-visible state. The registers are
   * staged for the front (their only writer) to adopt before the guest's next access; a doorbell the source had
   * not answered is pending here, answered once the work runs again.
   */
  restoreGuestState(st: VfGuestState): void {
    this.setup = st.rpc === null ? null : { ...st.rpc };
    this.exceptions.splice(0, this.exceptions.length, ...st.exceptions.slice(-MAX_EXCEPTIONS));
    // A reset the front asked for before the restore is over: the restored state replaces what it cleared.
    this.store(VfPage.RESETS_SEEN, this.load(VfPage.RESETS));
    for (const t of [0, 1]) this.store(VfPage.RINGS_SEEN + 4 * t, this.load(VfPage.RINGS + 4 * t) - (st.ringsPending[t] === true ? 1 : 0));
    stageRegisters(this.o.arena, this.vf, st.regs);
  }

  private load(off: number): number {
    return this.o.arena.load32(this.page + BigInt(off));
  }

  private store(off: number, v: number): void {
    this.o.arena.store32(this.page + BigInt(off), v >>> 0);
  }

  /** The configured type (the bootload may leave it 0, docs/reference/create-order.md). */
  setType(typeId: number): void {
    this.o.typeId = typeId;
    this.store(VfPage.TASK_TYPE, typeId);
  }

  setState(state: number): void {
    this.store(VfPage.TASK_STATE, state);
  }

  /** The task's work state changed (running, or held by MIGRATION_STOP_WORK). */
  setWork(running: boolean): void {
    this.working = running;
    if (!this.stopped) this.setState(running ? TaskState.RUNNING : TaskState.STOPPED);
  }

  /** Settles once the call being served (if any) has finished or been withdrawn; null when none is. */
  settled(): Promise<void> | null {
    return this.inFlight;
  }

  /** SHUTDOWN: answer nothing any more. */
  stop(): void {
    this.stopped = true;
    this.setState(TaskState.SHUTDOWN);
  }

  /** A firmware exception hit this vGPU: keep a record and raise leaf-0 bit 1. */
  exception(eventId: number): void {
    if (this.stopped) return;
    this.exceptions.push({ eventId, at: Date.now() - this.startedAt });
    if (this.exceptions.length > MAX_EXCEPTIONS) this.exceptions.shift();
    this.regs.raise(VfIntr.EXCEPTION);
  }

  /** One scan (after any doorbell): a reset, then the guest's rings, while the work runs. */
  poll(workRunning: boolean): void {
    if (this.stopped) return;
    const resets = this.load(VfPage.RESETS);
    if (resets !== this.load(VfPage.RESETS_SEEN)) {
      this.store(VfPage.RESETS_SEEN, resets);
      this.setup = null;
      this.exceptions.length = 0;
      // Only the rings made before the reset are dropped (the front noted them): a guest that set up its RPC again
      // right after its reset, before this scan ran, is answered (discarding every ring counted so far lost it).
      this.store(VfPage.RINGS_SEEN, this.load(VfPage.RESET_RINGS));
      this.store(VfPage.RINGS_SEEN + 4, this.load(VfPage.RESET_RINGS + 4));
      this.o.log(`guest side of gfid ${this.o.gfid} reset`);
    }
    if (!workRunning || this.busy) return;
    if (!this.ringPending()) return;
    this.busy = true;
    this.inFlight = this.serve().finally(() => {
      this.busy = false;
      this.inFlight = null;
    });
  }

  private ringPending(): boolean {
    return this.load(VfPage.RINGS) !== this.load(VfPage.RINGS_SEEN) || this.load(VfPage.RINGS + 4) !== this.load(VfPage.RINGS_SEEN + 4);
  }

  private async serve(): Promise<void> {
    try {
      // Rings are counted, but a request is its requestId: several rings of a token before we look are one request.
      while (!this.stopped && this.working && this.ringPending()) {
        const setupRings = this.load(VfPage.RINGS);
        const token = setupRings !== this.load(VfPage.RINGS_SEEN) ? 0 : 1;
        const seenAt = VfPage.RINGS_SEEN + 4 * token;
        const seen = this.load(seenAt);
        const resets = this.load(VfPage.RESETS_SEEN);
        this.store(seenAt, this.load(VfPage.RINGS + 4 * token));
        try {
          await (token === 0 ? this.handleSetup() : this.handleMessage());
        } catch (e) {
          if (!(e instanceof Withdrawn)) throw e;
          // Not seen after all (unless a reset dropped the rings meanwhile): saved as pending, served after the stop.
          if (this.load(VfPage.RESETS_SEEN) === resets) this.store(seenAt, seen);
          this.o.log(`gfid ${this.o.gfid}: guest doorbell ${token} withdrawn by the work stop; answered once the work runs again`);
          return;
        }
      }
    } catch (e) {
      this.o.log(`guest RPC of gfid ${this.o.gfid} failed: ${(e as Error).message}`);
    }
  }

  /** The last point at which a call may be withdrawn: what follows is visible to the guest. */
  private commit(): void {
    if (!this.working || this.stopped) throw new Withdrawn('work stopped');
  }

  private async handleSetup(): Promise<void> {
    // As the guest reads them: a setup ring carried over by a migration may run before the front adopted the
    // restored registers.
    const scratch = snapshotRegisters(this.o.arena, this.vf, () => 0).scratch;
    const addr = (BigInt(scratch[SCRATCH_GUEST_RPC_HI] ?? 0) << 32n) | BigInt(scratch[SCRATCH_GUEST_RPC_LO] ?? 0);
    if (addr === 0n) {
      this.setup = null;
      this.o.log(`gfid ${this.o.gfid}: guest RPC torn down`);
      return;
    }
    const ctrl = await this.dma.read(addr, 32);
    if (typeof ctrl === 'number') return this.busError('control page', addr, ctrl);
    const version = ctrl.readUInt32LE(0);
    const requestId = ctrl.readUInt32LE(4);
    const resp = ctrl.readBigUInt64LE(8);
    const msg = ctrl.readBigUInt64LE(16);
    const msgSize = ctrl.readUInt32LE(24);
    const valid = version === CTRL_VERSION && msgSize >= MSG_MIN && msgSize <= MSG_MAX && resp !== 0n && msg !== 0n;
    this.commit();
    if (valid) this.setup = { ctrl: addr, resp, msg, msgSize };
    else this.o.log(`gfid ${this.o.gfid}: guest RPC setup refused (version ${version}, message buffer ${msgSize} bytes)`);
    if (resp !== 0n) await this.respond(resp, requestId, valid ? NvStatus.OK : NvStatus.INVALID_ARGUMENT);
  }

  private async handleMessage(): Promise<void> {
    const s = this.setup;
    if (s === null) {
      this.o.log(`gfid ${this.o.gfid}: guest doorbell ${GuestDoorbell.RPC_MESSAGE} before the RPC setup; ignored`);
      return;
    }
    const ctrl = await this.dma.read(s.ctrl, 8);
    if (typeof ctrl === 'number') return this.busError('control page', s.ctrl, ctrl);
    const requestId = ctrl.readUInt32LE(4);
    const head = await this.dma.read(s.msg, 8);
    if (typeof head === 'number') return this.busError('message buffer', s.msg, head);
    const fn = head.readUInt32LE(0);
    const len = head.readUInt32LE(4);
    if (len > s.msgSize - 8) {
      this.commit();
      return this.respond(s.resp, requestId, NvStatus.INVALID_ARGUMENT);
    }
    const payload = len === 0 ? Buffer.alloc(0) : await this.dma.read(s.msg + 8n, len);
    if (typeof payload === 'number') return this.busError('message payload', s.msg + 8n, payload);
    this.commit();
    const { status, answer } = await this.call(fn, payload);
    if (answer !== undefined) {
      if (answer.length > s.msgSize - 8) return this.respond(s.resp, requestId, NvStatus.INVALID_ARGUMENT);
      const out = Buffer.alloc(8 + answer.length);
      out.writeUInt32LE(fn, 0);
      out.writeUInt32LE(answer.length, 4);
      out.set(answer, 8);
      const st = await this.dma.write(s.msg, out);
      if (st !== 0) return this.busError('message buffer', s.msg, st);
    }
    await this.respond(s.resp, requestId, status);
  }

  private async call(fn: number, p: Buffer): Promise<{ status: number; answer?: Uint8Array }> {
    switch (fn) {
      case GuestRpcFn.ECHO:
        return { status: NvStatus.OK, answer: p };
      case GuestRpcFn.GET_INFO: {
        const out = Buffer.alloc(20);
        out.writeUInt32LE(this.o.gfid, 0);
        out.writeUInt32LE(this.o.typeId, 4);
        out.writeBigUInt64LE(this.o.slice.size, 8);
        out.writeUInt32LE(this.regs.guestRead32(0), 16);
        return { status: NvStatus.OK, answer: out };
      }
      case GuestRpcFn.CE_COPY: {
        if (p.length < 24) return { status: NvStatus.INVALID_ARGUMENT };
        const fbOff = p.readBigUInt64LE(0);
        const iova = p.readBigUInt64LE(8);
        const len = p.readUInt32LE(16);
        const dir = p.readUInt32LE(20);
        if (dir > 1 || len === 0 || len > CE_MAX || fbOff > this.o.slice.size || BigInt(len) > this.o.slice.size - fbOff) {
          this.o.log(`gfid ${this.o.gfid}: CE copy of ${len} bytes at FB offset 0x${fbOff.toString(16)} refused (slice of 0x${this.o.slice.size.toString(16)} bytes)`);
          return { status: NvStatus.INVALID_ARGUMENT };
        }
        const st = await this.dma.copyFb(dir === 0, this.o.slice.offset + fbOff, iova, len);
        return { status: st === 0 ? NvStatus.OK : NvStatus.INVALID_ADDRESS };
      }
      case GuestRpcFn.GET_EXCEPTIONS: {
        const recs = this.exceptions.splice(0);
        const out = Buffer.alloc(4 + 16 * recs.length);
        out.writeUInt32LE(recs.length, 0);
        recs.forEach((r, i) => {
          out.writeUInt32LE(r.eventId, 4 + 16 * i);
          out.writeBigUInt64LE(BigInt(r.at), 12 + 16 * i);
        });
        return { status: NvStatus.OK, answer: out };
      }
      default:
        return { status: NvStatus.NOT_SUPPORTED };
    }
  }

  private async respond(resp: bigint, requestId: number, status: number): Promise<void> {
    const out = Buffer.alloc(8);
    out.writeUInt32LE(requestId, 0);
    out.writeUInt32LE(status, 4);
    // result before responseId: a guest that sees the id reads a finished answer. One 8-byte write keeps both in
    // one DMA (in order within it).
    const st = await this.dma.write(resp, out);
    if (st !== 0) return this.busError('response page', resp, st);
    this.answered++;
    this.regs.raise(VfIntr.RPC_ANSWERED);
  }

  private busError(what: string, iova: bigint, errno: number): void {
    this.o.log(`gfid ${this.o.gfid}: DMA to the guest's ${what} at IOVA 0x${iova.toString(16)} failed (errno ${errno}); no answer`);
  }
}

/** Cleanup: the VF has no task any more (its record is cleared for the front). */
export function clearVfTaskRecord(arena: SharedArena, vf: number): void {
  const page = BigInt(vfPage(vf));
  arena.store32(page + BigInt(VfPage.TASK_STATE), TaskState.NONE);
  arena.store32(page + BigInt(VfPage.TASK_TYPE), 0);
  arena.window(page + BigInt(VfPage.FB_OFFSET), 16).fill(0);
}
