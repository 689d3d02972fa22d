/**
 * The host side of one vGPU's RPC mailbox (docs/reference/host-rpc-mailbox.md): the control/response/message buffers
 * at the start of the vGPU's management heap (reached through the host mapping of its first 0x274000 bytes) and the
 * VF priv doorbell in PF BAR0.
 *
 * One call in flight per vGPU (upstream holds a mutex; here a promise chain does the same without blocking the
 * event loop). Every wait is bounded by a deadline from the config: upstream polls up to 120 s per call and 10 s for
 * the bootloaded magic in a busy loop (docs/reference/host-rpc-mailbox.md).
 */
import { ErrorCode, VgpuError } from '../../core/contracts/exceptions.js';
import type { RegisterWindow } from '../../core/contracts/hal.js';
import type { HostMapping } from '../../core/contracts/memory.js';
import {
  CTRL_BUFFER, GSP_PLUGIN_BOOTLOADED, MAX_MESSAGE_SIZE, MgmtHeap, RESPONSE_BUFFER, VF_PRIV_DOORBELL_OFFSET, VgpuRpcMsg,
  doorbellValue, initialCtrlHeader, vgpuRpcMsgName,
} from '../../core/firmware-abi/vgpu-mailbox.js';
import { pollUntil } from './poll-until.js';
import { AdaptiveSpin } from '../../core/runtime/adaptive-spin.js';

export interface HostRpcChannelOptions {
  /** Host mapping of the mgmt heap's comm buffer (offset 0 = control buffer). */
  mapping: HostMapping;
  /** PF BAR0, for the doorbell. */
  registers: RegisterWindow;
  gfid: number;
  /** Default per-call deadline. */
  callTimeoutMs: number;
  /** Poll timer period once the fast phase is over. */
  pollIntervalMs?: number;
}

export interface RpcCallOptions {
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Bytes to copy back from the message buffer after success (in/out payloads); default the payload's size. */
  replySize?: number;
}

const CTRL = MgmtHeap.CTRL_OFFSET;
const RESP = MgmtHeap.RESPONSE_OFFSET;
const MSG = MgmtHeap.MESSAGE_OFFSET;
const SEQ_OFF = CTRL + CTRL_BUFFER.offsetOf('message_seq_num');
const TYPE_OFF = CTRL + CTRL_BUFFER.offsetOf('message_type');
const PROCESSED_OFF = RESP + RESPONSE_BUFFER.offsetOf('message_seq_num_processed');
const RESULT_OFF = RESP + RESPONSE_BUFFER.offsetOf('result_code');
/** The control-buffer header as [offset, bytes] writes: version, then the four buffer offsets. */
const HEADER_WRITES: ReadonlyArray<readonly [number, Uint8Array]> = (() => {
  const h = initialCtrlHeader();
  const v = Buffer.alloc(4);
  v.writeUInt32LE(h.version!);
  const out: Array<readonly [number, Uint8Array]> = [[CTRL + CTRL_BUFFER.offsetOf('version'), v]];
  for (const f of ['response_buff_offset', 'message_buff_offset', 'migration_buff_offset', 'error_buff_offset'] as const) {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(h[f]!);
    out.push([CTRL + CTRL_BUFFER.offsetOf(f), b]);
  }
  return out;
})();

/**
 * Write the control-buffer header into a mailbox mapping: version and the four buffer offsets, field by field. Only
 * those fields: the plugin task may already have written the BOOTLOADED magic into message_seq_num (which lies
 * between them), and a whole-struct or read-modify-write would erase it. Idempotent: writing it again changes
 * nothing the plugin task could see.
 */
export function writeCtrlHeader(m: HostMapping): void {
  // Each field its own mapped write (a BAR1 store each upstream), never the message_type and message_seq_num
  // between them. The encoded fields are constants, built once.
  for (const [off, bytes] of HEADER_WRITES) m.write(off, bytes);
}

/**
 * One back-off state for every mailbox of this process: what it adapts to is how busy this host is, which a vGPU's
 * own two or three calls could not tell (a channel of its own would spin on every new vGPU's first call).
 */
const MAILBOX_SPIN = new AdaptiveSpin();

export class HostRpcChannel {
  /** The spin every mailbox of this process shares (its hits and misses, for benches). */
  static readonly sharedSpin: AdaptiveSpin = MAILBOX_SPIN;
  private seq = 0;
  private chain: Promise<unknown> = Promise.resolve();
  private closedWhy: string | null = null;
  /** Spin-before-sleep for each call's answer (adaptive-spin.ts): upstream busy-polls this word outright. */
  readonly spin = MAILBOX_SPIN;

  constructor(private readonly opts: HostRpcChannelOptions) {}

  get gfid(): number {
    return this.opts.gfid;
  }

  /** Host sequence counter (the last number sent). */
  get sequence(): number {
    return this.seq;
  }

  /** Write the control-buffer header (writeCtrlHeader). */
  writeHeader(): void {
    writeCtrlHeader(this.opts.mapping);
  }

  /**
   * Re-attach to a mailbox a previous daemon set up (warm restart): continue its sequence numbers from the control
   * buffer instead of starting at 1, which the plugin task would take for a number it has already served.
   * Returns the sequence number found.
   */
  resumeSequence(): number {
    const seq = this.readU32(SEQ_OFF);
    this.seq = seq === GSP_PLUGIN_BOOTLOADED ? 0 : seq;
    return this.seq;
  }

  /** Wait until the plugin task has written GSP_PLUGIN_BOOTLOADED into ctrl.message_seq_num. */
  async waitBootloaded(timeoutMs: number, signal?: AbortSignal): Promise<void> {
    const word = this.watch(SEQ_OFF);
    await pollUntil(() => (this.assertOpen('the bootload wait'), word.read() === GSP_PLUGIN_BOOTLOADED ? true : undefined), {
      timeoutMs, what: `the BOOTLOADED magic of the GSP plugin task for gfid ${this.opts.gfid}`,
      hint: 'the plugin task did not start: check the GSP log of this gfid and timeouts.bootloadMs',
      ...(this.opts.pollIntervalMs !== undefined ? { intervalMs: this.opts.pollIntervalMs } : {}),
      ...(signal !== undefined ? { signal } : {}),
      ...(word.sleep !== undefined ? { sleep: word.sleep } : {}),
    });
  }

  /**
   * A mailbox word to wait on: `read` loads it and remembers the value; `sleep` (only where the mapping can sleep on
   * a device write) sleeps while the word still holds that value. A write between the read and the sleep ends the
   * sleep at once (the futex compares first), so no answer is missed.
   */
  private watch(off: number): { read(): number; sleep?: (ms: number) => Promise<void> } {
    const m = this.opts.mapping;
    let last = 0;
    const read = (): number => (last = this.readU32(off));
    if (m.waitWord32 === undefined) return { read };
    return { read, sleep: (ms) => m.waitWord32!(off, last, ms) };
  }

  /**
   * One RPC: payload → message buffer, type and sequence → control buffer, ring the doorbell, wait for
   * `message_seq_num_processed`, check `result_code`, copy the (in/out) payload back. Calls queue behind each
   * other; a failed call does not block the next one.
   */
  call(type: number, payload: Uint8Array = new Uint8Array(0), opts: RpcCallOptions = {}): Promise<Uint8Array> {
    const run = this.chain.then(() => this.callNow(type, payload, opts));
    this.chain = run.catch(() => undefined);
    return run;
  }

  /** Refuse further calls (destroy, unwinding, GPU lost). Calls already queued fail with the reason. */
  close(why: string): void {
    this.closedWhy ??= why;
  }

  private async callNow(type: number, payload: Uint8Array, opts: RpcCallOptions): Promise<Uint8Array> {
    const name = vgpuRpcMsgName(type);
    this.assertOpen(`RPC ${name}`);
    if (!Number.isInteger(type) || type < 1 || type >= VgpuRpcMsg.MAX) {
      throw new VgpuError(ErrorCode.InvalidArgument, `RPC message type ${type} is not 1..${VgpuRpcMsg.MAX - 1}`, { hint: 'use a VgpuRpcMsg value' });
    }
    const replySize = opts.replySize ?? payload.byteLength;
    if (payload.byteLength > MAX_MESSAGE_SIZE || replySize > MAX_MESSAGE_SIZE) {
      throw new VgpuError(ErrorCode.InvalidArgument, `RPC ${name} payload of ${Math.max(payload.byteLength, replySize)} bytes exceeds the ${MAX_MESSAGE_SIZE}-byte message buffer`, {
        hint: 'split the request', details: { type },
      });
    }
    const m = this.opts.mapping;
    if (payload.byteLength > 0) m.write(MSG, payload);
    this.writeU32(TYPE_OFF, type);
    // The counter starts at 0, so the first call sends 1 and overwrites the BOOTLOADED magic (as upstream).
    this.seq = (this.seq + 1) >>> 0;
    const seq = this.seq;
    this.writeU32(SEQ_OFF, seq);
    const bell = doorbellValue(this.opts.gfid);
    this.opts.registers.write32(VF_PRIV_DOORBELL_OFFSET, bell);
    this.opts.registers.read32(VF_PRIV_DOORBELL_OFFSET); // posting flush, as upstream reads it back

    const word = this.watch(PROCESSED_OFF);
    await pollUntil(() => (this.assertOpen(`RPC ${name}`), word.read() === seq ? true : undefined), {
      timeoutMs: opts.timeoutMs ?? this.opts.callTimeoutMs,
      what: `the reply to RPC ${name} (seq ${seq}) from the plugin task of gfid ${this.opts.gfid}`,
      ...(this.opts.pollIntervalMs !== undefined ? { intervalMs: this.opts.pollIntervalMs } : {}),
      ...(opts.signal !== undefined ? { signal: opts.signal } : {}),
      ...(word.sleep !== undefined ? { sleep: word.sleep, spin: this.spin, spinKey: type } : {}),
    });
    const result = this.readU32(RESULT_OFF);
    if (result !== 0) {
      throw new VgpuError(ErrorCode.FirmwareRpc, `RPC ${name} to the plugin task of gfid ${this.opts.gfid} failed with result code 0x${result.toString(16)}`, {
        hint: 'the GSP plugin refused the request; see the vGPU task log', details: { gfid: this.opts.gfid, type, resultCode: result },
      });
    }
    return replySize > 0 ? Uint8Array.from(m.read(MSG, replySize)) : new Uint8Array(0);
  }

  /** A closed channel (GPU lost, teardown) ends every wait at once instead of letting it run into its deadline. */
  private assertOpen(what: string): void {
    if (this.closedWhy === null) return;
    throw new VgpuError(this.closedWhy === 'GPU lost' ? ErrorCode.GpuLost : ErrorCode.IllegalState,
      `${what} on the mailbox of gfid ${this.opts.gfid} stopped: the channel is closed (${this.closedWhy})`, {
        hint: 'the vGPU is being torn down or its GPU was lost', details: { gfid: this.opts.gfid },
      });
  }

  private readU32(off: number): number {
    return this.opts.mapping.read(off, 4).readUInt32LE(0);
  }

  private writeU32(off: number, v: number): void {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v >>> 0);
    this.opts.mapping.write(off, b);
  }
}
