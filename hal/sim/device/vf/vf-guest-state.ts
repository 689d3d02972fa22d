/**
 * What a migration must carry of a VF's guest-visible state besides FB, and how it crosses processes.
 *
 * A guest does not know it was migrated (QEMU docs/interop/vfio-user.rst, MIG_DEVICE_STATE: STOP_COPY reads "the
 * device internal state", RESUMING loads it, RUNNING is "fully operational"): what it set on the device before must
 * be there afterwards — the interrupt enables and pending bits, the mailbox scratch registers, the firmware task's
 * record of its RPC channel, firmware exception records not yet fetched, and a doorbell it rang that the stopped
 * task had not answered yet. Real GSP-RM keeps the equivalent inside its opaque per-gfid plugin state; the simulator
 * puts it in the context image (plugin-task-context.ts, section "VF") the task saves and restores.
 *
 * The registers have ONE writer, the front (vf-layout.ts). So the device does not write them on restore: it stages
 * them in a block of the VF page (REG_RESTORE_*) and bumps REG_RESTORE_SEQ; the front adopts the block before the
 * guest's next register access (adoptRestoredRegisters), and a reset drops an unadopted one.
 */
import type { SharedArena } from '../../../../native/native-ops.js';
import { VfPage, vfPage } from './vf-layout.js';

export const VF_LEAVES = 8;
export const VF_SCRATCH = VfPage.SCRATCH_COUNT;
export const VF_MAX_EXCEPTIONS = 32;

export interface VfRegisterState {
  leafEnable: number[];
  topEnable: number;
  /** Leaf-0 bits pending (raised, not yet cleared by the guest). */
  pending: number;
  scratch: number[];
}

export interface GuestRpcChannel {
  ctrl: bigint;
  resp: bigint;
  msg: bigint;
  msgSize: number;
}

export interface VfGuestState {
  regs: VfRegisterState;
  /** The RPC channel the guest set up (null: none, or torn down). */
  rpc: GuestRpcChannel | null;
  /** Doorbells rung and not yet answered when the task stopped: [setup, message]. */
  ringsPending: [boolean, boolean];
  exceptions: Array<{ eventId: number; at: number }>;
}

// Section layout (simulator's, little-endian): flags u32 @0 (bit 0 RPC channel valid, bit 1 setup ring pending,
// bit 2 message ring pending), message buffer size u32 @4, control/response/message IOVAs u64 @8/@16/@24,
// CPU_INTR_LEAF_EN u32 ×8 @32, CPU_INTR_TOP_EN u32 @64, leaf-0 pending u32 @68, MAILBOX_SCRATCH u32 ×16 @72,
// exception count u32 @136, records {u32 event id, u32 reserved, u64 ms} ×32 @140.
const S = { FLAGS: 0, MSG_SIZE: 4, CTRL: 8, RESP: 16, MSG: 24, LEAF_EN: 32, TOP_EN: 64, PENDING: 68, SCRATCH: 72, EXC_COUNT: 136, EXC: 140 } as const;
export const VF_STATE_BYTES = S.EXC + 16 * VF_MAX_EXCEPTIONS;
const F_RPC = 1;
const F_RING_SETUP = 2;
const F_RING_MSG = 4;

export function encodeVfGuestState(st: VfGuestState, out: Buffer): void {
  out.fill(0, 0, VF_STATE_BYTES);
  const flags = (st.rpc !== null ? F_RPC : 0) | (st.ringsPending[0] ? F_RING_SETUP : 0) | (st.ringsPending[1] ? F_RING_MSG : 0);
  out.writeUInt32LE(flags, S.FLAGS);
  if (st.rpc !== null) {
    out.writeUInt32LE(st.rpc.msgSize >>> 0, S.MSG_SIZE);
    out.writeBigUInt64LE(st.rpc.ctrl, S.CTRL);
    out.writeBigUInt64LE(st.rpc.resp, S.RESP);
    out.writeBigUInt64LE(st.rpc.msg, S.MSG);
  }
  for (let i = 0; i < VF_LEAVES; i++) out.writeUInt32LE((st.regs.leafEnable[i] ?? 0) >>> 0, S.LEAF_EN + 4 * i);
  out.writeUInt32LE(st.regs.topEnable >>> 0, S.TOP_EN);
  out.writeUInt32LE(st.regs.pending >>> 0, S.PENDING);
  for (let i = 0; i < VF_SCRATCH; i++) out.writeUInt32LE((st.regs.scratch[i] ?? 0) >>> 0, S.SCRATCH + 4 * i);
  const recs = st.exceptions.slice(-VF_MAX_EXCEPTIONS);
  out.writeUInt32LE(recs.length, S.EXC_COUNT);
  recs.forEach((r, i) => {
    out.writeUInt32LE(r.eventId >>> 0, S.EXC + 16 * i);
    out.writeBigUInt64LE(BigInt(Math.max(0, Math.floor(r.at))), S.EXC + 16 * i + 8);
  });
}

/** Decode a section; throws an Error saying what is wrong (the caller is inside a CRC-checked image). */
export function decodeVfGuestState(b: Buffer): VfGuestState {
  if (b.byteLength < VF_STATE_BYTES) throw new Error(`VF state section of ${b.byteLength} bytes (${VF_STATE_BYTES} expected)`);
  const flags = b.readUInt32LE(S.FLAGS);
  if ((flags & ~(F_RPC | F_RING_SETUP | F_RING_MSG)) !== 0) throw new Error(`VF state flags 0x${flags.toString(16)} carry unknown bits`);
  const count = b.readUInt32LE(S.EXC_COUNT);
  if (count > VF_MAX_EXCEPTIONS) throw new Error(`VF state holds ${count} exception records (at most ${VF_MAX_EXCEPTIONS})`);
  const u32s = (at: number, n: number): number[] => Array.from({ length: n }, (_, i) => b.readUInt32LE(at + 4 * i));
  return {
    regs: { leafEnable: u32s(S.LEAF_EN, VF_LEAVES), topEnable: b.readUInt32LE(S.TOP_EN), pending: b.readUInt32LE(S.PENDING), scratch: u32s(S.SCRATCH, VF_SCRATCH) },
    rpc: (flags & F_RPC) === 0 ? null : {
      msgSize: b.readUInt32LE(S.MSG_SIZE), ctrl: b.readBigUInt64LE(S.CTRL), resp: b.readBigUInt64LE(S.RESP), msg: b.readBigUInt64LE(S.MSG),
    },
    ringsPending: [(flags & F_RING_SETUP) !== 0, (flags & F_RING_MSG) !== 0],
    exceptions: Array.from({ length: count }, (_, i) => ({ eventId: b.readUInt32LE(S.EXC + 16 * i), at: Number(b.readBigUInt64LE(S.EXC + 16 * i + 8)) })),
  };
}

/** Word access to one VF's state page. */
class VfPageWords {
  private readonly base: bigint;
  constructor(private readonly arena: SharedArena, vf: number) {
    this.base = BigInt(vfPage(vf));
  }
  load(off: number): number {
    return this.arena.load32(this.base + BigInt(off));
  }
  store(off: number, v: number): void {
    this.arena.store32(this.base + BigInt(off), v >>> 0);
  }
}

/**
 * The registers as the guest would read them now (device side, read-only): the live words, or — when the front has
 * not adopted a staged block yet (a vGPU migrated in and out again before its guest touched it) — that block.
 */
export function snapshotRegisters(arena: SharedArena, vf: number, livePending: () => number): VfRegisterState {
  const w = new VfPageWords(arena, vf);
  const staged = w.load(VfPage.REG_RESTORE_SEQ) !== w.load(VfPage.REG_RESTORE_DONE) && w.load(VfPage.REG_RESTORE_VALID) === 1;
  const words = (live: number, stagedAt: number, n: number): number[] =>
    Array.from({ length: n }, (_, i) => w.load((staged ? stagedAt : live) + 4 * i));
  return {
    leafEnable: words(VfPage.LEAF_EN, VfPage.REG_RESTORE_LEAF_EN, VF_LEAVES),
    topEnable: w.load(staged ? VfPage.REG_RESTORE_TOP_EN : VfPage.TOP_EN),
    pending: staged ? w.load(VfPage.REG_RESTORE_PENDING) : livePending(),
    scratch: words(VfPage.SCRATCH, VfPage.REG_RESTORE_SCRATCH, VF_SCRATCH),
  };
}

/** Device side: stage registers for the front to adopt (null: void any block not adopted yet). */
export function stageRegisters(arena: SharedArena, vf: number, regs: VfRegisterState | null): void {
  const w = new VfPageWords(arena, vf);
  if (regs !== null) {
    for (let i = 0; i < VF_LEAVES; i++) w.store(VfPage.REG_RESTORE_LEAF_EN + 4 * i, regs.leafEnable[i] ?? 0);
    w.store(VfPage.REG_RESTORE_TOP_EN, regs.topEnable);
    w.store(VfPage.REG_RESTORE_PENDING, regs.pending);
    for (let i = 0; i < VF_SCRATCH; i++) w.store(VfPage.REG_RESTORE_SCRATCH + 4 * i, regs.scratch[i] ?? 0);
  }
  w.store(VfPage.REG_RESTORE_VALID, regs === null ? 0 : 1);
  // Last: the front looks at the block only once the sequence moved.
  w.store(VfPage.REG_RESTORE_SEQ, w.load(VfPage.REG_RESTORE_SEQ) + 1);
}

/** Whether a staged block waits for the front (one load each: cheap enough to ask before every guest access). */
export function restorePending(arena: SharedArena, vf: number): boolean {
  let at = restoreWords.get(vf);
  if (at === undefined) {
    const base = BigInt(vfPage(vf));
    at = [base + BigInt(VfPage.REG_RESTORE_SEQ), base + BigInt(VfPage.REG_RESTORE_DONE)];
    restoreWords.set(vf, at);
  }
  return arena.load32(at[0]) !== arena.load32(at[1]);
}

/** Arena offsets of each VF's REG_RESTORE_SEQ and _DONE words, made once: the front asks on every guest access. */
const restoreWords = new Map<number, [bigint, bigint]>();

/**
 * Front side: adopt a staged block into the live registers (the front writes them, as it writes every guest access),
 * or just mark it seen when `drop` (a reset) or when it is void. `total(b)` = raises of leaf-0 bit b so far: a bit
 * pending at the source is made pending here by leaving its ACKED one behind the total. Returns true when registers
 * changed.
 */
export function adoptRestoredRegisters(arena: SharedArena, vf: number, total: (bit: number) => number, drop = false): boolean {
  const w = new VfPageWords(arena, vf);
  const seq = w.load(VfPage.REG_RESTORE_SEQ);
  if (seq === w.load(VfPage.REG_RESTORE_DONE)) return false;
  const apply = !drop && w.load(VfPage.REG_RESTORE_VALID) === 1;
  if (apply) {
    for (let i = 0; i < VF_LEAVES; i++) w.store(VfPage.LEAF_EN + 4 * i, w.load(VfPage.REG_RESTORE_LEAF_EN + 4 * i));
    w.store(VfPage.TOP_EN, w.load(VfPage.REG_RESTORE_TOP_EN));
    for (let i = 0; i < VF_SCRATCH; i++) w.store(VfPage.SCRATCH + 4 * i, w.load(VfPage.REG_RESTORE_SCRATCH + 4 * i));
    const pending = w.load(VfPage.REG_RESTORE_PENDING);
    for (let b = 0; b < 32; b++) w.store(VfPage.ACKED + 4 * b, ((pending >>> b) & 1) === 1 ? total(b) - 1 : total(b));
  }
  w.store(VfPage.REG_RESTORE_DONE, seq);
  return apply;
}
