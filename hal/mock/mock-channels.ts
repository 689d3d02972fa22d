/**
 * The mock CHID pool and copy-engine channels. A submit records the pushbuffer, then — asynchronously, as the
 * hardware would — runs it on the simulated copy engine (hal/sim/ce) against the mock FB; where the pushbuffer
 * asks for the non-blocking interrupt, a FIFO non-stall event for the channel's CHID goes out through the
 * firmware's event listeners (record shape: see mock-firmware.ts). A pushbuffer it cannot run raises RC_TRIGGERED
 * instead, so a waiter times out just as it would on a real channel error.
 *
 * Test controls (`pool.engine`): `hang` accepts submissions but never runs them (a wedged engine: no semaphore,
 * no interrupt); `fill` replaces the engine's FB fill (e.g. to skip a page and plant stale data).
 */
import { ChannelPoolBase } from '../../core/alloc/channel-pool.js';
import type { ChannelMapOptions, ChannelRange, CopyChannel } from '../../core/contracts/channels.js';
import { ErrorCode, VgpuError } from '../../core/contracts/exceptions.js';
import type { RpcOptions } from '../../core/contracts/firmware.js';
import type { FbRange } from '../../core/contracts/memory.js';
import { decodePushbuf, runCopyEngine, type CeRunResult } from './ce-pushbuf-decoder.js';
import { ChannelVaSpace } from '../sim/ce/channel-va-space.js';
import { vaTarget } from '../sim/ce/sim-copy-engine.js';
import type { MockControls, RunContext } from './mock-controls.js';
import { MOCK_EVENT, type MockFirmware } from './mock-firmware.js';
import type { MockMemory } from './mock-memory.js';
import { PushbufWriter } from '../sim/ce/pushbuf-writer.js';

export interface MockSubmission {
  chid: number;
  dwords: Uint32Array;
  at: number;
  /** Settles when the engine has run the pushbuffer (before the non-stall event is delivered). */
  done: Promise<CeRunResult | undefined>;
  /** Set when the engine could not run it. */
  error?: string;
}

/** Test controls of the mock copy engine (see the file comment). */
export interface MockEngineControls {
  hang: boolean;
  fill?: (fbOffset: bigint, length: bigint, pattern: number) => Promise<void>;
}

export interface CopyChannelInfo {
  chid: number;
  owner: string;
  objectHandle: number;
  vaMappings: number;
}

export class MockChannelPool extends ChannelPoolBase {
  private readonly copyChannels = new Map<number, MockCopyChannel>();
  /** Every pushbuffer submitted on any copy channel of this GPU, in order. */
  readonly submissions: MockSubmission[] = [];
  /** Test controls of the engine: see the file comment. */
  readonly engine: MockEngineControls = { hang: false };

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
  private readonly space: ChannelVaSpace;
  private readonly pushbuf: PushbufWriter;
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
  ) {
    this.space = new ChannelVaSpace(`channel ${chid}`);
    this.pushbuf = new PushbufWriter(chid, pushbufDwords);
  }

  get vaMappingCount(): number {
    return this.space.size;
  }

  mapMemory(range: FbRange, opts: ChannelMapOptions = {}): bigint {
    return this.controls.runSync('channel.mapMemory', this.ctx().gpu, { chid: this.chid, id: range?.id, ...opts }, () => {
      this.requireLive();
      if (!this.memory.has(range)) {
        throw new VgpuError(ErrorCode.NotFound, `cannot map FB range #${range?.id} into channel ${this.chid}: not a live range`, {
          hint: 'map a range this GPU reserved and has not freed',
        });
      }
      return this.space.map(range, opts);
    });
  }

  unmapMemory(gpuVa: bigint): void {
    this.controls.runSync('channel.unmapMemory', this.ctx().gpu, { chid: this.chid, gpuVa }, () => {
      this.space.unmap(gpuVa);
    });
  }

  begin(dwords: number): void {
    this.controls.runSync('channel.begin', this.ctx().gpu, { chid: this.chid, dwords }, () => {
      this.requireLive();
      this.pushbuf.begin(dwords);
    });
  }

  emit(dword: number): void {
    this.pushbuf.emit(dword);
  }

  submit(opts?: RpcOptions): Promise<void> {
    const base = this.ctx();
    const ctx: RunContext = { ...base, timeoutMs: opts?.timeoutMs ?? base.timeoutMs, ...(opts?.signal ? { signal: opts.signal } : {}) };
    return this.controls.run('channel.submit', { chid: this.chid, dwords: this.pushbuf.length }, ctx, () => {
      this.requireLive();
      this.firmware.requireRunning('submit');
      const dwords = this.pushbuf.take();
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
    this.space.clear();
    this.pushbuf.reset();
    this.pool.release(this);
  }

  private async execute(sub: MockSubmission): Promise<CeRunResult | undefined> {
    // Let submit() resolve first: completion is asynchronous on real hardware too.
    await new Promise<void>((r) => setImmediate(r));
    if (this.firmware.state !== 'running' || this.pool.engine.hang) return undefined;
    try {
      const target = vaTarget(this.space, this.memory.store);
      const fill = this.pool.engine.fill;
      if (fill !== undefined) target.fill = (va, length, pattern) => fill(this.space.translate(va, length), length, pattern);
      return await runCopyEngine(decodePushbuf(sub.dwords), target, {
        objectHandle: this.objectHandle,
        onNonstall: () => this.firmware.emitNonstall(this.chid),
      });
    } catch (e) {
      sub.error = e instanceof Error ? e.message : String(e);
      const payload = new Uint8Array(4);
      new DataView(payload.buffer).setUint32(0, this.chid, true);
      this.firmware.emitEvent({ eventId: MOCK_EVENT.RC_TRIGGERED.id, name: MOCK_EVENT.RC_TRIGGERED.name, payload });
      return undefined;
    }
  }

  private requireLive(): void {
    if (!this.live) {
      throw new VgpuError(ErrorCode.IllegalState, `copy channel on CHID ${this.chid} was freed`, { hint: 'allocate a new copy channel' });
    }
  }
}
