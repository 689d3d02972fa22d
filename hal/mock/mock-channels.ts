/**
 * The mock CHID pool and copy-engine channels. A submit records the pushbuffer, then — asynchronously, as the
 * hardware would — runs the memset/copy/semaphore methods it understands (ce-pushbuf-decoder.ts) against the
 * mock FB and delivers a FIFO non-stall event for the channel's CHID through the firmware's event listeners
 * (record shape: see mock-firmware.ts). A pushbuffer it cannot run raises RC_TRIGGERED instead of non-stall, so
 * a waiter times out just as it would on a real channel error.
 */
import { ChannelPoolBase } from '../../core/alloc/channel-pool.js';
import type { ChannelMapOptions, ChannelRange, CopyChannel } from '../../core/contracts/channels.js';
import { ErrorCode, VgpuError } from '../../core/contracts/exceptions.js';
import type { RpcOptions } from '../../core/contracts/firmware.js';
import type { FbRange } from '../../core/contracts/memory.js';
import { decodePushbuf, runCopyEngine, type CeRunResult } from './ce-pushbuf-decoder.js';
import type { MockControls, RunContext } from './mock-controls.js';
import { MOCK_EVENT, type MockFirmware } from './mock-firmware.js';
import type { MockMemory } from './mock-memory.js';

export interface MockSubmission {
  chid: number;
  dwords: Uint32Array;
  at: number;
  /** Settles when the engine has run the pushbuffer (before the non-stall event is delivered). */
  done: Promise<CeRunResult | undefined>;
  /** Set when the engine could not run it. */
  error?: string;
}

interface VaMapping {
  va: bigint;
  range: FbRange;
  offset: bigint;
  size: bigint;
}

export interface CopyChannelInfo {
  chid: number;
  owner: string;
  objectHandle: number;
  vaMappings: number;
}

const VA_BASE = 1n << 32n;

export class MockChannelPool extends ChannelPoolBase {
  private readonly copyChannels = new Map<number, MockCopyChannel>();
  /** Every pushbuffer submitted on any copy channel of this GPU, in order. */
  readonly submissions: MockSubmission[] = [];

  constructor(
    total: number,
    private readonly controls: MockControls,
    private readonly ctx: () => RunContext,
    private readonly firmware: MockFirmware,
    private readonly memory: MockMemory,
    private readonly opts: { pushbufDwords: number; copyEngineClass: number; now: () => number },
  ) {
    super(total, { name: 'CHID pool' });
  }

  override alloc(count: number, owner: string, opts: { at?: number } = {}): ChannelRange {
    return this.controls.runSync('channels.alloc', this.ctx().gpu, { count, owner, ...opts }, () => super.alloc(count, owner, opts));
  }

  override free(range: ChannelRange): void {
    this.controls.runSync('channels.free', this.ctx().gpu, { offset: range?.offset, count: range?.count }, () => super.free(range));
  }

  allocCopyChannel(chid: number, owner: string): Promise<CopyChannel> {
    return this.controls.run('channels.allocCopyChannel', { chid, owner }, this.ctx(), () => {
      this.checkCopyChid(chid, owner);
      this.firmware.requireRunning('allocCopyChannel');
      if (this.copyChannels.has(chid)) {
        throw new VgpuError(ErrorCode.Busy, `CHID ${chid} already has a copy channel (owner ${this.copyChannels.get(chid)!.owner})`, {
          hint: 'free the existing copy channel first',
          details: { chid },
        });
      }
      const ch = new MockCopyChannel(chid, owner, this.firmware.newHandle(), this.opts.pushbufDwords, this, this.controls, this.ctx, this.firmware, this.memory, this.opts.now);
      this.copyChannels.set(chid, ch);
      return ch;
    });
  }

  /** Live copy channels (the books). */
  liveCopyChannels(): CopyChannelInfo[] {
    return [...this.copyChannels.values()].map((c) => ({ chid: c.chid, owner: c.owner, objectHandle: c.objectHandle, vaMappings: c.vaMappingCount }));
  }

  copyChannel(chid: number): MockCopyChannel | undefined {
    return this.copyChannels.get(chid);
  }

  /** @internal called by a channel when it is freed. */
  release(ch: MockCopyChannel): void {
    if (this.copyChannels.get(ch.chid) === ch) this.copyChannels.delete(ch.chid);
  }

  /** Free every copy channel and CHID range (GPU close). */
  freeAll(): void {
    for (const ch of [...this.copyChannels.values()]) ch.dispose();
    for (const r of this.list()) super.free(r);
  }
}

export class MockCopyChannel implements CopyChannel {
  private readonly maps = new Map<bigint, VaMapping>();
  private nextVa = VA_BASE;
  private pending: number[] = [];
  private reserved = 0;
  private live = true;

  constructor(
    readonly chid: number,
    readonly owner: string,
    readonly objectHandle: number,
    readonly pushbufDwords: number,
    private readonly pool: MockChannelPool,
    private readonly controls: MockControls,
    private readonly ctx: () => RunContext,
    private readonly firmware: MockFirmware,
    private readonly memory: MockMemory,
    private readonly now: () => number,
  ) {}

  get vaMappingCount(): number {
    return this.maps.size;
  }

  mapMemory(range: FbRange, opts: ChannelMapOptions = {}): bigint {
    return this.controls.runSync('channel.mapMemory', this.ctx().gpu, { chid: this.chid, id: range?.id, ...opts }, () => {
      this.requireLive();
      if (!this.memory.has(range)) {
        throw new VgpuError(ErrorCode.NotFound, `cannot map FB range #${range?.id} into channel ${this.chid}: not a live range`, {
          hint: 'map a range this GPU reserved and has not freed',
        });
      }
      const offset = opts.offset ?? 0n;
      const size = opts.size ?? range.size - offset;
      if (offset < 0n || size <= 0n || offset + size > range.size) {
        throw new VgpuError(ErrorCode.InvalidArgument, `channel mapping [${offset}, ${offset + size}) is outside FB range #${range.id}`, {
          hint: 'keep offset and size inside the range',
        });
      }
      const align = opts.hugePage ? 2n << 20n : 64n << 10n;
      const va = ((this.nextVa + align - 1n) / align) * align;
      this.nextVa = va + size;
      this.maps.set(va, { va, range, offset, size });
      return va;
    });
  }

  unmapMemory(gpuVa: bigint): void {
    this.controls.runSync('channel.unmapMemory', this.ctx().gpu, { chid: this.chid, gpuVa }, () => {
      if (!this.maps.delete(gpuVa)) {
        throw new VgpuError(ErrorCode.NotFound, `no mapping at GPU VA 0x${gpuVa.toString(16)} in channel ${this.chid}`, {
          hint: 'unmap the VA mapMemory returned, once',
        });
      }
    });
  }

  begin(dwords: number): void {
    this.controls.runSync('channel.begin', this.ctx().gpu, { chid: this.chid, dwords }, () => {
      this.requireLive();
      if (!Number.isInteger(dwords) || dwords <= 0) {
        throw new VgpuError(ErrorCode.InvalidArgument, `begin(${dwords}): need a positive dword count`, { hint: 'reserve room for the methods you emit' });
      }
      if (this.reserved + dwords > this.pushbufDwords) {
        throw new VgpuError(ErrorCode.NoSpace, `pushbuffer of channel ${this.chid} holds ${this.pushbufDwords} dwords; ${this.reserved} reserved, ${dwords} more asked`, {
          hint: 'submit what is pending first, or emit fewer methods',
        });
      }
      this.reserved += dwords;
    });
  }

  emit(dword: number): void {
    if (this.pending.length >= this.reserved) {
      throw new VgpuError(ErrorCode.IllegalState, `emit beyond the ${this.reserved} dwords reserved with begin() on channel ${this.chid}`, {
        hint: 'call begin(n) with the number of dwords you will emit',
      });
    }
    this.pending.push(dword >>> 0);
  }

  submit(opts?: RpcOptions): Promise<void> {
    const base = this.ctx();
    const ctx: RunContext = { ...base, timeoutMs: opts?.timeoutMs ?? base.timeoutMs, ...(opts?.signal ? { signal: opts.signal } : {}) };
    return this.controls.run('channel.submit', { chid: this.chid, dwords: this.pending.length }, ctx, () => {
      this.requireLive();
      this.firmware.requireRunning('submit');
      const dwords = Uint32Array.from(this.pending);
      this.pending = [];
      this.reserved = 0;
      const sub: MockSubmission = { chid: this.chid, dwords, at: this.now(), done: Promise.resolve(undefined) };
      sub.done = this.execute(sub);
      this.pool.submissions.push(sub);
    });
  }

  free(): Promise<void> {
    return this.controls.run('channel.free', { chid: this.chid }, this.ctx(), () => this.dispose());
  }

  /** Idempotent teardown without recording. */
  dispose(): void {
    if (!this.live) return;
    this.live = false;
    this.maps.clear();
    this.pending = [];
    this.reserved = 0;
    this.pool.release(this);
  }

  private async execute(sub: MockSubmission): Promise<CeRunResult | undefined> {
    // Let submit() resolve first: completion is asynchronous on real hardware too.
    await new Promise<void>((r) => setImmediate(r));
    if (this.firmware.state !== 'running') return undefined;
    try {
      const result = await runCopyEngine(decodePushbuf(sub.dwords), {
        fill: (va, length, pattern) => this.memory.store.fill(this.translate(va, length), length, pattern),
        copy: (src, dst, length) => {
          const bytes = this.memory.store.read(this.translate(src, BigInt(length)), length);
          this.memory.store.window(this.translate(dst, BigInt(length)), length).set(bytes);
        },
        write32: (va, value) => this.memory.store.window(this.translate(va, 4n), 4).writeUInt32LE(value >>> 0),
      });
      this.firmware.emitNonstall(this.chid);
      return result;
    } catch (e) {
      sub.error = e instanceof Error ? e.message : String(e);
      const payload = new Uint8Array(4);
      new DataView(payload.buffer).setUint32(0, this.chid, true);
      this.firmware.emitEvent({ eventId: MOCK_EVENT.RC_TRIGGERED.id, name: MOCK_EVENT.RC_TRIGGERED.name, payload });
      return undefined;
    }
  }

  private translate(va: bigint, length: bigint): bigint {
    for (const m of this.maps.values()) {
      if (va >= m.va && va + length <= m.va + m.size) return m.range.offset + m.offset + (va - m.va);
    }
    throw new Error(`GPU VA [0x${va.toString(16)}, +${length}) is not mapped in channel ${this.chid} (MMU fault)`);
  }

  private requireLive(): void {
    if (!this.live) {
      throw new VgpuError(ErrorCode.IllegalState, `copy channel on CHID ${this.chid} was freed`, { hint: 'allocate a new copy channel' });
    }
  }
}
