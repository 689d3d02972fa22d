/**
 * A CopyChannel (docs/reference/core-driver-interface.md ops 21–27) for a simulated GPU: its own VA space, a
 * pushbuffer with begin/emit accounting, and a submit that queues the dwords for the simulated copy engine. Work runs
 * asynchronously and in order per channel, as a GPFIFO does; completion is announced only by what the pushbuffer asks
 * for (semaphore release, non-stall interrupt), never by `submit` resolving. A pushbuffer the engine refuses, or an
 * MMU fault, is reported through `raiseError` (the HAL turns it into an RC event) and the waiter simply never sees
 * its semaphore, exactly as on a real channel.
 */
import type { FbBackingStore } from '../../../core/alloc/framebuffer-memory.js';
import type { ChannelMapOptions, CopyChannel } from '../../../core/contracts/channels.js';
import { ErrorCode, VgpuError } from '../../../core/contracts/exceptions.js';
import type { RpcOptions } from '../../../core/contracts/firmware.js';
import type { FbRange } from '../../../core/contracts/memory.js';
import { ChannelVaSpace } from './channel-va-space.js';
import { decodePushbuf } from './pushbuf-decoder.js';
import { runCopyEngine, vaTarget, type CeRunResult } from './sim-copy-engine.js';
import { PushbufWriter } from './pushbuf-writer.js';

export interface SimCopyChannelOptions {
  chid: number;
  owner: string;
  objectHandle: number;
  pushbufDwords: number;
  /** The FB bytes, offset 0 = FB offset 0 (for the Ada simulator: the FB part of the device's SharedArena). */
  store: FbBackingStore;
  /** True while `range` is a live FB range of this GPU (mapping a freed range is refused). */
  isLive(range: FbRange): boolean;
  /** Deliver the FIFO non-stall interrupt of this CHID to the host, the way the HAL delivers events. */
  raiseNonstall(chid: number): void;
  /** Deliver a channel error (RC) for this CHID. */
  raiseError(chid: number, message: string): void;
  /** Throws when the GPU cannot take work now (firmware not running, GPU lost). */
  checkCanSubmit?(): void;
  onFree?(ch: SimCopyChannel): void;
  now?(): number;
}

export interface SimSubmission {
  chid: number;
  dwords: Uint32Array;
  at: number;
  /** Settles once the engine has run it: the result, or undefined when it was refused (see `error`). */
  done: Promise<CeRunResult | undefined>;
  error?: string;
}

/** How many recent submissions a channel keeps for inspection. */
const KEEP_SUBMISSIONS = 32;

export class SimCopyChannel implements CopyChannel {
  readonly chid: number;
  readonly owner: string;
  readonly objectHandle: number;
  readonly pushbufDwords: number;
  /** Recent submissions, oldest first (tests and debugging). */
  readonly submissions: SimSubmission[] = [];
  private readonly space: ChannelVaSpace;
  private readonly pushbuf: PushbufWriter;
  private live = true;
  private tail: Promise<unknown> = Promise.resolve();

  constructor(private readonly opts: SimCopyChannelOptions) {
    this.chid = opts.chid;
    this.owner = opts.owner;
    this.objectHandle = opts.objectHandle;
    this.pushbufDwords = opts.pushbufDwords;
    this.space = new ChannelVaSpace(`copy channel ${opts.chid}`);
    this.pushbuf = new PushbufWriter(opts.chid, opts.pushbufDwords);
  }

  get isLive(): boolean {
    return this.live;
  }

  get vaMappingCount(): number {
    return this.space.size;
  }

  mapMemory(range: FbRange, opts: ChannelMapOptions = {}): bigint {
    this.requireLive();
    if (!range || typeof range !== 'object' || !this.opts.isLive(range)) {
      throw new VgpuError(ErrorCode.NotFound, `cannot map FB range #${range?.id} into copy channel ${this.chid}: not a live range`, {
        hint: 'map a range this GPU reserved and has not freed',
      });
    }
    return this.space.map(range, opts);
  }

  unmapMemory(gpuVa: bigint): void {
    this.space.unmap(gpuVa);
  }

  begin(dwords: number): void {
    this.requireLive();
    this.pushbuf.begin(dwords);
  }

  emit(dword: number): void {
    this.pushbuf.emit(dword);
  }

  async submit(opts?: RpcOptions): Promise<void> {
    this.requireLive();
    if (opts?.signal?.aborted) {
      throw new VgpuError(ErrorCode.Cancelled, `submit on channel ${this.chid} was cancelled`, { hint: 'the caller aborted the call' });
    }
    this.opts.checkCanSubmit?.();
    const dwords = this.pushbuf.take();
    const sub: SimSubmission = { chid: this.chid, dwords, at: this.opts.now?.() ?? Date.now(), done: Promise.resolve(undefined) };
    // In order per channel, like a GPFIFO; the caller learns of completion from the semaphore and interrupt only.
    sub.done = this.tail.then(() => this.execute(sub));
    this.tail = sub.done;
    this.submissions.push(sub);
    if (this.submissions.length > KEEP_SUBMISSIONS) this.submissions.shift();
  }

  /** Resolves when every submitted pushbuffer has run (or been refused). */
  async idle(): Promise<void> {
    await this.tail;
  }

  async free(): Promise<void> {
    this.dispose();
  }

  /** Idempotent teardown. Work still queued faults on the emptied VA space rather than touching freed memory. */
  dispose(): void {
    if (!this.live) return;
    this.live = false;
    this.space.clear();
    this.pushbuf.reset();
    this.opts.onFree?.(this);
  }

  private async execute(sub: SimSubmission): Promise<CeRunResult | undefined> {
    // Completion is asynchronous on hardware: let submit() return before the engine starts.
    await new Promise<void>((r) => setImmediate(r));
    try {
      return await runCopyEngine(decodePushbuf(sub.dwords), vaTarget(this.space, this.opts.store), {
        objectHandle: this.objectHandle,
        onNonstall: () => this.opts.raiseNonstall(this.chid),
      });
    } catch (e) {
      sub.error = e instanceof Error ? e.message : String(e);
      this.opts.raiseError(this.chid, sub.error);
      return undefined;
    }
  }

  private requireLive(): void {
    if (!this.live) {
      throw new VgpuError(ErrorCode.IllegalState, `copy channel on CHID ${this.chid} was freed`, { hint: 'allocate a new copy channel' });
    }
  }
}
