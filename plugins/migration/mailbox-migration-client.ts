/**
 * Host side of the migration RPCs of one vGPU's mailbox (docs/reference/host-rpc-mailbox.md, message types 4–10), as
 * defined in docs/migration.md "Mailbox protocol" (the upstream RFC has only the IDs and the buffer fields; the
 * protocol is ours). The 2 MiB migration buffer is a ring with free-running u32 byte counters (position = counter mod
 * 2 MiB):
 *
 * - SAVE (source, device stopped): GSP produces. Host zeroes ctrl.migration_buf_cpu_access_offset (GET), sets
 *   ctrl.is_migration_in_progress, calls MIGRATION_SAVE_STATE (returns once the save has started; the GSP has reset
 *   response.migration_buf_gsp_access_offset (PUT) and migration_state_save_complete to 0). GSP writes bytes at PUT
 *   while PUT − GET < 2 MiB and advances PUT after the bytes; when done it sets migration_state_save_complete = 1
 *   AFTER its last PUT update. Host copies [GET, PUT), then publishes GET. End: complete = 1 and GET == PUT.
 * - RESTORE (destination, RESUMING→STOP): host produces. MIGRATION_RESTORE_STATE with payload {u64 total bytes};
 *   host writes at its PUT (ctrl.migration_buf_cpu_access_offset) while PUT − GET < 2 MiB, GSP consumes and
 *   advances its GET (response.migration_buf_gsp_access_offset). When GET == total, host calls
 *   MIGRATION_RESTORE_DEFERRED_STATE; result 0 means the state was accepted.
 */
import { ErrorCode, VgpuError } from '../../core/contracts/exceptions.js';
import type { HostMapping } from '../../core/contracts/memory.js';
import { CTRL_BUFFER, MgmtHeap, RESPONSE_BUFFER, VgpuRpcMsg } from '../../core/firmware-abi/vgpu-mailbox.js';
import type { FirmwareContextSource } from './precopy-engine.js';
import { WAKE_SLICE_MS } from '../../core/contracts/memory.js';

export interface MailboxCaller {
  call(type: number, payload?: Uint8Array, opts?: { timeoutMs?: number; signal?: AbortSignal }): Promise<Uint8Array>;
}

const RING = MgmtHeap.MIGRATION_OFFSET;
const RING_SIZE = MgmtHeap.MIGRATION_SIZE;
const CPU_OFF = MgmtHeap.CTRL_OFFSET + CTRL_BUFFER.offsetOf('migration_buf_cpu_access_offset');
const IN_PROGRESS = MgmtHeap.CTRL_OFFSET + CTRL_BUFFER.offsetOf('is_migration_in_progress');
const GSP_OFF = MgmtHeap.RESPONSE_OFFSET + RESPONSE_BUFFER.offsetOf('migration_buf_gsp_access_offset');
const COMPLETE = MgmtHeap.RESPONSE_OFFSET + RESPONSE_BUFFER.offsetOf('migration_state_save_complete');

export interface MailboxMigrationOptions {
  caller: MailboxCaller;
  /** Host mapping of the comm buffer (offset 0 = control buffer). */
  mapping: HostMapping;
  /** Deadline for the whole save or restore, and for each call. */
  timeoutMs?: number;
  pollMs?: number;
}

export class MailboxMigrationClient implements FirmwareContextSource {
  private readonly timeoutMs: number;
  private readonly pollMs: number;
  constructor(private readonly o: MailboxMigrationOptions) {
    this.timeoutMs = o.timeoutMs ?? 30_000;
    this.pollMs = o.pollMs ?? 1;
  }

  stopWork(): Promise<Uint8Array> { return this.o.caller.call(VgpuRpcMsg.MIGRATION_STOP_WORK); }

  /**
   * One mailbox round trip, ms: GET_GUEST_INFO, a read-only query any configured plugin task answers. Pre-copy
   * measures it to price the stop (five migration calls sit on the downtime path) instead of guessing.
   */
  async probe(): Promise<number> {
    const t0 = performance.now();
    await this.o.caller.call(VgpuRpcMsg.GET_GUEST_INFO);
    return performance.now() - t0;
  }
  cancelStop(): Promise<Uint8Array> { return this.o.caller.call(VgpuRpcMsg.MIGRATION_CANCEL_STOP); }
  resumeWork(): Promise<Uint8Array> { return this.o.caller.call(VgpuRpcMsg.MIGRATION_RESUME_WORK); }

  async cancel(): Promise<void> {
    await this.o.caller.call(VgpuRpcMsg.MIGRATION_CANCEL_SAVE);
    this.setInProgress(false);
  }

  async *save(signal?: AbortSignal): AsyncGenerator<Uint8Array> {
    const m = this.o.mapping;
    this.u32(CPU_OFF, 0);
    this.setInProgress(true);
    await this.o.caller.call(VgpuRpcMsg.MIGRATION_SAVE_STATE, new Uint8Array(0), signal ? { signal } : {});
    let get = 0;
    const deadline = Date.now() + this.timeoutMs;
    for (;;) {
      if (signal?.aborted) throw new VgpuError(ErrorCode.Cancelled, 'firmware state save cancelled', { hint: 'migrate again' });
      const complete = this.r32(COMPLETE) !== 0; // read BEFORE put: complete is set after the last PUT update
      const put = this.r32(GSP_OFF);
      const avail = (put - get) >>> 0;
      if (avail > RING_SIZE) throw this.protocol(`GSP PUT ${put} is ${avail} bytes ahead of GET ${get} (ring is ${RING_SIZE})`);
      if (avail > 0) {
        yield this.readRing(get, avail);
        get = (get + avail) >>> 0;
        this.u32(CPU_OFF, get);
        continue;
      }
      if (complete) break;
      if (Date.now() > deadline) throw this.timeout('save');
      await this.waitWord(GSP_OFF, put, deadline);
    }
    this.setInProgress(false);
    void m;
  }

  /** Feed a saved context to the destination's GSP plugin and have it validated. */
  async restore(chunks: readonly Uint8Array[], signal?: AbortSignal): Promise<void> {
    chunks = [...chunks];
    const total = chunks.reduce((n, c) => n + c.byteLength, 0);
    const p = Buffer.alloc(8);
    p.writeBigUInt64LE(BigInt(total));
    // A context that fits the ring is written BEFORE the call with PUT = its length (the GSP may consume it in
    // the call itself, as the simulated plugin task does); a bigger one streams through the ring after the call.
    let put = 0;
    if (total <= RING_SIZE) {
      for (const c of chunks) { this.writeRing(put, c); put += c.byteLength; }
    }
    this.u32(CPU_OFF, put);
    this.setInProgress(true);
    await this.o.caller.call(VgpuRpcMsg.MIGRATION_RESTORE_STATE, p, signal ? { signal } : {});
    if (put === total) chunks = [];
    const deadline = Date.now() + this.timeoutMs;
    const waitSpace = async (need: number): Promise<number> => {
      for (;;) {
        const get = this.r32(GSP_OFF);
        const free = RING_SIZE - ((put - get) >>> 0);
        if (free >= need || (free > 0 && need > RING_SIZE)) return free;
        if (Date.now() > deadline) throw this.timeout('restore');
        if (signal?.aborted) throw new VgpuError(ErrorCode.Cancelled, 'firmware state restore cancelled', { hint: 'reset the device' });
        await this.waitWord(GSP_OFF, get, deadline);
      }
    };
    for (const c of chunks) {
      let off = 0;
      while (off < c.byteLength) {
        const free = await waitSpace(1);
        const n = Math.min(free, c.byteLength - off);
        this.writeRing(put, c.subarray(off, off + n));
        put = (put + n) >>> 0;
        off += n;
        this.u32(CPU_OFF, put);
      }
    }
    for (let get = this.r32(GSP_OFF); get !== put; get = this.r32(GSP_OFF)) {
      if (Date.now() > deadline) throw this.timeout('restore');
      await this.waitWord(GSP_OFF, get, deadline);
    }
    await this.o.caller.call(VgpuRpcMsg.MIGRATION_RESTORE_DEFERRED_STATE);
    this.setInProgress(false);
  }

  private readRing(from: number, n: number): Buffer {
    const out = Buffer.allocUnsafe(n);
    const pos = from % RING_SIZE;
    const first = Math.min(n, RING_SIZE - pos);
    this.o.mapping.read(RING + pos, first).copy(out, 0);
    if (first < n) this.o.mapping.read(RING, n - first).copy(out, first);
    return out;
  }

  private writeRing(at: number, data: Uint8Array): void {
    const pos = at % RING_SIZE;
    const first = Math.min(data.byteLength, RING_SIZE - pos);
    this.o.mapping.write(RING + pos, data.subarray(0, first));
    if (first < data.byteLength) this.o.mapping.write(RING, data.subarray(first));
  }

  /**
   * Until the GSP may have moved the word at `off` from `seen` (its PUT or GET): asleep on the word where the device
   * wakes it (HostMapping.waitWord32 — the simulated plugin task does), else one poll period. Bounded by
   * WAKE_SLICE_MS either way, so the deadline and an abort are checked.
   */
  private async waitWord(off: number, seen: number, deadline: number): Promise<void> {
    const m = this.o.mapping;
    const ms = Math.max(0, Math.min(WAKE_SLICE_MS, deadline - Date.now()));
    if (m.waitWord32 !== undefined) await m.waitWord32(off, seen, ms);
    else await new Promise((r) => setTimeout(r, Math.min(this.pollMs, ms)));
  }

  private setInProgress(v: boolean): void { this.o.mapping.write(IN_PROGRESS, Uint8Array.of(v ? 1 : 0)); }
  private u32(off: number, v: number): void { const b = Buffer.alloc(4); b.writeUInt32LE(v >>> 0); this.o.mapping.write(off, b); }
  private r32(off: number): number { return this.o.mapping.read(off, 4).readUInt32LE(0); }

  private protocol(msg: string): VgpuError {
    return new VgpuError(ErrorCode.FirmwareRpc, `migration buffer protocol violation: ${msg}`, { hint: 'the GSP plugin task misbehaves; reset the vGPU' });
  }
  private timeout(what: string): VgpuError {
    return new VgpuError(ErrorCode.RpcTimeout, `firmware state ${what} made no progress within ${this.timeoutMs} ms`, {
      hint: 'the GSP plugin task stopped moving the migration buffer offsets; cancel the migration and check the vGPU log',
    });
  }
}
