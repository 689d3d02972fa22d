/**
 * The two GSP rings over a SharedArena, as one side (host or GSP) sees them: a TX queue it produces into, an RX
 * queue it consumes from, and the doorbells of the control page. No encoding here — just slots, pointers, waits.
 *
 * Hot-path words are read and written with Atomics on an Int32Array over the region window (works on a
 * SharedArrayBuffer and on the addon's external mapping); only the blocking wait/wake go through the arena,
 * because only the arena knows how to sleep across processes (futex) or threads (Atomics.waitAsync).
 */
import type { SharedArena, WaitResult } from '../../native/native-ops.js';
import { ErrorCode, VgpuError } from '../../core/contracts/exceptions.js';
import {
  GSP_CONTROL_MAGIC,
  GSP_CONTROL_VERSION,
  GSP_PAGE_SIZE,
  GSP_QUEUE_ENTRY_OFFSET,
  GSP_QUEUE_FLAGS,
  GSP_QUEUE_MSG_COUNT,
  GSP_QUEUE_MSG_SIZE,
  GSP_QUEUE_RX_HDR_OFFSET,
  GSP_QUEUE_SIZE,
  GSP_QUEUE_VERSION,
  GSP_REGION_PAGES,
  GspControl,
  GspFwState,
  GspRegion,
  QueueHeader,
} from './gsp-layout.js';

export type GspSide = 'host' | 'gsp';

/** Typed-array views over one GSP region. */
export class GspRegionView {
  /** Plain Uint8Array over the region: its subarray() is much cheaper than Buffer's on the hot path. */
  readonly u8: Uint8Array;
  /** The arena window itself. */
  readonly buf: Buffer;
  readonly u32: Uint32Array;
  readonly i32: Int32Array;

  constructor(
    readonly arena: SharedArena,
    readonly base: bigint,
  ) {
    if (base % BigInt(GSP_PAGE_SIZE) !== 0n) {
      throw new VgpuError(ErrorCode.NativeAlign, `GSP region base 0x${base.toString(16)} is not page aligned`, {
        hint: 'place the GSP region on a 4 KiB boundary of the arena',
        details: { base: base.toString() },
      });
    }
    this.buf = arena.window(base, GspRegion.SIZE);
    this.u8 = new Uint8Array(this.buf.buffer, this.buf.byteOffset, GspRegion.SIZE);
    if (this.u8.byteOffset % 8 !== 0) {
      throw new VgpuError(ErrorCode.NativeAlign, 'GSP region window is not 8-byte aligned in its buffer', {
        hint: 'the arena returned a misaligned window; report this as a native-layer bug',
      });
    }
    this.u32 = new Uint32Array(this.u8.buffer, this.u8.byteOffset, GspRegion.SIZE / 4);
    this.i32 = new Int32Array(this.u8.buffer, this.u8.byteOffset, GspRegion.SIZE / 4);
  }

  /** Word index of a byte offset inside the region. */
  static word(byteOffset: number): number {
    return byteOffset >>> 2;
  }

  load(byteOffset: number): number {
    return Atomics.load(this.i32, byteOffset >>> 2) >>> 0;
  }
  store(byteOffset: number, value: number): void {
    Atomics.store(this.i32, byteOffset >>> 2, value | 0);
  }
  control(word: number): number {
    return this.load(GspRegion.CONTROL + word);
  }
  setControl(word: number, value: number): void {
    this.store(GspRegion.CONTROL + word, value);
  }
  fwState(): GspFwState {
    return this.control(GspControl.FW_STATE) as GspFwState;
  }
  heartbeat(): number {
    return this.control(GspControl.HEARTBEAT);
  }
  arenaOffset(byteOffset: number): bigint {
    return this.base + BigInt(byteOffset);
  }
}

/**
 * Host-side initialisation of a fresh region: PTE array, command-queue header, control page, firmware OFF.
 * The message-queue header is the GSP's to write (it does so when it starts), as on silicon.
 */
export function initGspRegion(view: GspRegionView): void {
  view.u8.fill(0, 0, GspRegion.CMDQ + GSP_PAGE_SIZE);
  view.u8.fill(0, GspRegion.MSGQ, GspRegion.MSGQ + GSP_PAGE_SIZE);
  view.u8.fill(0, GspRegion.CONTROL, GspRegion.SIZE);
  // PTE array: one 64-bit simulated DMA address (the arena offset) per page of the region.
  const pte = new BigUint64Array(view.u8.buffer, view.u8.byteOffset + GspRegion.PTE, GSP_REGION_PAGES);
  for (let i = 0; i < GSP_REGION_PAGES; i++) pte[i] = view.base + BigInt(i * GSP_PAGE_SIZE);
  writeQueueHeader(view, GspRegion.CMDQ);
  view.setControl(GspControl.FW_STATE, GspFwState.Off);
  view.setControl(GspControl.LAYOUT_VERSION, GSP_CONTROL_VERSION);
  // Magic last: a reader that sees it sees everything above.
  view.setControl(GspControl.MAGIC, GSP_CONTROL_MAGIC);
}

/** Write a queue's msgqTxHeader (writePtr 0) and its rx header (readPtr 0). */
export function writeQueueHeader(view: GspRegionView, queue: number): void {
  view.store(queue + QueueHeader.VERSION, GSP_QUEUE_VERSION);
  view.store(queue + QueueHeader.SIZE, GSP_QUEUE_SIZE);
  view.store(queue + QueueHeader.MSG_SIZE, GSP_QUEUE_MSG_SIZE);
  view.store(queue + QueueHeader.MSG_COUNT, GSP_QUEUE_MSG_COUNT);
  view.store(queue + QueueHeader.WRITE_PTR, 0);
  view.store(queue + QueueHeader.FLAGS, GSP_QUEUE_FLAGS);
  view.store(queue + QueueHeader.RX_HDR_OFF, GSP_QUEUE_RX_HDR_OFFSET);
  view.store(queue + QueueHeader.ENTRY_OFF, GSP_QUEUE_ENTRY_OFFSET);
  view.store(queue + QueueHeader.RX_READ_PTR, 0);
}

/** Throws unless the queue header at `queue` describes the geometry this code speaks. */
export function checkQueueHeader(view: GspRegionView, queue: number, what: string): void {
  const got = {
    version: view.load(queue + QueueHeader.VERSION),
    size: view.load(queue + QueueHeader.SIZE),
    msgSize: view.load(queue + QueueHeader.MSG_SIZE),
    msgCount: view.load(queue + QueueHeader.MSG_COUNT),
    rxHdrOff: view.load(queue + QueueHeader.RX_HDR_OFF),
    entryOff: view.load(queue + QueueHeader.ENTRY_OFF),
  };
  const want = {
    version: GSP_QUEUE_VERSION,
    size: GSP_QUEUE_SIZE,
    msgSize: GSP_QUEUE_MSG_SIZE,
    msgCount: GSP_QUEUE_MSG_COUNT,
    rxHdrOff: GSP_QUEUE_RX_HDR_OFFSET,
    entryOff: GSP_QUEUE_ENTRY_OFFSET,
  };
  for (const k of Object.keys(want) as (keyof typeof want)[]) {
    if (got[k] !== want[k]) {
      throw new VgpuError(ErrorCode.FirmwareBoot, `${what} queue header has ${k}=${got[k]}, expected ${want[k]}`, {
        hint: 'the other side initialised the GSP region with a different layout; restart both with the same build',
        details: { got, want },
      });
    }
  }
}

/**
 * A doorbell: counter word + sleeping flag word (see GspControl). Exactly one sleeper per doorbell.
 */
export class Doorbell {
  private readonly counterIdx: number;
  private readonly flagIdx: number;
  private readonly counterOff: bigint;
  /** Wake-ups sent (futex/notify calls) and sleeps taken on this doorbell by this side, for stats and benches. */
  wakes = 0;
  sleeps = 0;

  constructor(
    private readonly view: GspRegionView,
    counterWord: number,
    flagWord: number,
  ) {
    this.counterIdx = (GspRegion.CONTROL + counterWord) >>> 2;
    this.flagIdx = (GspRegion.CONTROL + flagWord) >>> 2;
    this.counterOff = view.arenaOffset(GspRegion.CONTROL + counterWord);
  }

  /**
   * This side's sleeps, numbered: the flag word holds the number of the sleep in progress (never 0), not just 1.
   * A ring clears the flag only if it still holds the number it saw (see ring()).
   */
  private sleepNo = Math.floor(Math.random() * 0x7ffffff0); // random start: a stale ring from before a re-attach cannot match

  /** Signal after publishing; costs a syscall only when the other side sleeps. */
  ring(force = false): void {
    this.wakeIfSleeping(this.announce(), force);
  }

  /**
   * First half of ring(): bump the counter and read the sleeper's flag (0 = awake, else the number of its sleep).
   * Split out only so a test can run the two halves with the sleeper's steps in between (a preempted producer).
   */
  announce(): number {
    const i32 = this.view.i32;
    Atomics.add(i32, this.counterIdx, 1);
    return Atomics.load(i32, this.flagIdx);
  }

  /**
   * Second half of ring(): wake the sleeper whose flag we read. The flag is cleared as we wake (the sleeper stays
   * asleep for ~50 µs after the notify, and every further ring in that window would otherwise pay another notify,
   * a syscall on the addon, for nothing) — but only by a compare-exchange against the SAME sleep's number.
   *
   * Why a number and not 1: a producer preempted between reading the flag and clearing it (a loaded host) used to
   * clear the flag of the sleeper's NEXT sleep, which had raised it again in between; its wake then landed before
   * that sleep was armed and was lost, and every later ring saw the flag down and sent no wake at all. The
   * sleeper slept on with messages in its ring until something else woke it — with no call in flight nothing did
   * (a GSP_INIT_DONE unseen for 60 s). With a number, the stale exchange fails and leaves the new sleep's flag
   * raised; the stale ring's own news is not lost either, since its counter bump preceded the new sleep's read of
   * the counter and its message preceded that sleep's re-check of the ring.
   */
  wakeIfSleeping(seenFlag: number, force = false): void {
    if (force || (seenFlag !== 0 && Atomics.compareExchange(this.view.i32, this.flagIdx, seenFlag, 0) === seenFlag)) {
      this.wakes++;
      this.view.arena.wake32(this.counterOff);
    }
  }

  /**
   * Sleep until rung (or `timeoutMs`), unless `ready()` already holds after the flag is raised.
   * Returns 'ok' when woken or ready, 'timed-out' otherwise.
   */
  async sleep(ready: () => boolean, timeoutMs: number): Promise<WaitResult> {
    // (A waiter that expects an answer spins BEFORE calling this: core/runtime/adaptive-spin.ts.)
    const i32 = this.view.i32;
    const seen = Atomics.load(i32, this.counterIdx);
    this.sleepNo = this.sleepNo >= 0x7fffffff ? 1 : this.sleepNo + 1;
    Atomics.store(i32, this.flagIdx, this.sleepNo);
    if (ready()) {
      Atomics.store(i32, this.flagIdx, 0);
      return 'ok';
    }
    this.sleeps++;
    try {
      const r = await this.view.arena.wait32(this.counterOff, seen >>> 0, timeoutMs);
      return r === 'timed-out' ? r : 'ok';
    } finally {
      Atomics.store(i32, this.flagIdx, 0);
    }
  }
}

/** Ring geometry shared by both ends. */
const CNT = GSP_QUEUE_MSG_COUNT;

/**
 * The producer end of one ring. Writes are local until publish(): a producer that writes a batch stores its
 * write pointer ONCE, so the consumer sees the whole batch at one wake-up and the pointer's cache line moves
 * between the cores once per batch instead of once per element.
 */
export class GspTxQueue {
  private readonly wptrIdx: number;
  /** The consumer's read pointer of this ring lives in the consumer's own (other) queue page. */
  private readonly rptrIdx: number;
  private readonly entries: number;
  private wptr: number;
  private published: number;
  /**
   * Free slots as last computed from the consumer's read pointer, minus what we wrote since. The read pointer
   * lives on a cache line the consumer writes; re-reading it for every element costs a cross-core miss, so we
   * look at it again only when this lower bound says the element might not fit.
   */
  private knownFree = 0;
  /**
   * Bytes of each slot that may be non-zero (what we last wrote there). We are the only writer of this ring, so
   * zeroing an element's padding only needs to clear what an older, longer element left — not the whole page
   * every time. Starts at a full page: the memory may come from an earlier run.
   */
  private readonly dirty = new Int32Array(CNT).fill(GSP_PAGE_SIZE);

  constructor(
    private readonly view: GspRegionView,
    ownQueue: number,
    peerQueue: number,
  ) {
    this.wptrIdx = (ownQueue + QueueHeader.WRITE_PTR) >>> 2;
    this.rptrIdx = (peerQueue + QueueHeader.RX_READ_PTR) >>> 2;
    this.entries = ownQueue + GSP_QUEUE_ENTRY_OFFSET;
    this.wptr = Atomics.load(view.i32, this.wptrIdx) >>> 0;
    this.published = this.wptr;
  }

  /**
   * Free slots, keeping one empty so that full and empty differ (nouveau `rptr + cnt - wptr - 1`). Counts
   * written-but-unpublished slots as taken.
   */
  free(): number {
    const rptr = Atomics.load(this.view.i32, this.rptrIdx) >>> 0;
    const f = rptr - this.wptr - 1;
    return (this.knownFree = f < 0 ? f + CNT : f);
  }

  /** True when `pages` slots are free (reads the consumer's pointer only when the cached bound is too small). */
  hasRoom(pages: number): boolean {
    return this.knownFree >= pages || this.free() >= pages;
  }

  /** True when written elements wait for publish(). */
  get unpublished(): boolean {
    return this.wptr !== this.published;
  }

  /** Make every element written so far visible to the consumer (one atomic store). Returns whether it did. */
  publish(): boolean {
    if (this.wptr === this.published) return false;
    this.published = this.wptr;
    Atomics.store(this.view.i32, this.wptrIdx, this.wptr);
    return true;
  }

  /** Byte offset (in the region) of the next slot to write, when `pages` slots fit there without wrapping. */
  contiguousSlot(pages: number): number | null {
    return this.wptr + pages <= CNT ? this.entries + this.wptr * GSP_PAGE_SIZE : null;
  }

  /**
   * Take an element of `pages` pages already written in place at contiguousSlot() (`used` bytes), after
   * zeroing what older elements left in its padding. Not visible to the consumer until publish().
   */
  commit(used: number, pages: number): void {
    this.knownFree -= pages;
    let slot = this.wptr;
    if (pages === 1) {
      // The common case, without the page loop.
      const old = this.dirty[slot] as number;
      if (old > used) this.view.u8.fill(0, this.entries + slot * GSP_PAGE_SIZE + used, this.entries + slot * GSP_PAGE_SIZE + old);
      this.dirty[slot] = used;
      this.wptr = slot + 1 === CNT ? 0 : slot + 1;
      return;
    }
    const u8 = this.view.u8;
    let done = 0;
    for (let k = 0; k < pages; k++) {
      const dst = this.entries + slot * GSP_PAGE_SIZE;
      const keep = Math.max(0, Math.min(GSP_PAGE_SIZE, used - done));
      const old = this.dirty[slot] as number;
      if (old > keep) u8.fill(0, dst + keep, dst + old);
      this.dirty[slot] = keep;
      done += GSP_PAGE_SIZE;
      slot++;
    }
    this.wptr = slot === CNT ? 0 : slot;
  }

  /**
   * Copy one element of `pages` pages from `src[srcOff…]` (`used` meaningful bytes; the rest of the last page
   * is zeroed so the padded element checksums as the used part does) into the ring, wrapping page-wise. Caller
   * checked `free() >= pages`. Not visible to the consumer until publish().
   */
  write(src: Uint8Array, srcOff: number, used: number, pages: number): void {
    this.knownFree -= pages;
    const u8 = this.view.u8;
    let slot = this.wptr;
    let done = 0;
    for (let k = 0; k < pages; k++) {
      const dst = this.entries + slot * GSP_PAGE_SIZE;
      const n = Math.min(GSP_PAGE_SIZE, used - done);
      if (n > 0) u8.set(src.subarray(srcOff + done, srcOff + done + n), dst);
      const keep = Math.max(n, 0);
      const old = this.dirty[slot] as number;
      if (old > keep) u8.fill(0, dst + keep, dst + old);
      this.dirty[slot] = keep;
      done += GSP_PAGE_SIZE;
      slot = slot + 1 === CNT ? 0 : slot + 1;
    }
    this.wptr = slot;
  }
}

/**
 * The consumer end of one ring. Like the producer, it moves its read pointer locally and publishes it once per
 * batch (release()).
 */
export class GspRxQueue {
  private readonly wptrIdx: number;
  /** Our read pointer of this ring lives in OUR own (the other) queue page. */
  private readonly rptrIdx: number;
  readonly entries: number;
  private rptr: number;
  private published: number;

  constructor(
    private readonly view: GspRegionView,
    peerQueue: number,
    ownQueue: number,
  ) {
    this.wptrIdx = (peerQueue + QueueHeader.WRITE_PTR) >>> 2;
    this.rptrIdx = (ownQueue + QueueHeader.RX_READ_PTR) >>> 2;
    this.entries = peerQueue + GSP_QUEUE_ENTRY_OFFSET;
    this.rptr = Atomics.load(view.i32, this.rptrIdx) >>> 0;
    this.published = this.rptr;
  }

  /** Slots written and not yet consumed. */
  used(): number {
    const u = (Atomics.load(this.view.i32, this.wptrIdx) >>> 0) - this.rptr;
    return u < 0 ? u + CNT : u;
  }

  get readPtr(): number {
    return this.rptr;
  }

  /** Byte offset (in the region) of the slot `ahead` slots past the read pointer. */
  slotOffset(ahead = 0): number {
    return this.entries + ((this.rptr + ahead) % CNT) * GSP_PAGE_SIZE;
  }

  /** Slots from the read pointer to the end of the ring before it wraps. */
  contiguous(): number {
    return CNT - this.rptr;
  }

  /** Copy `bytes` bytes of an element starting at the read pointer into `dst` (handles the wrap). */
  copyOut(dst: Uint8Array, bytes: number): void {
    const u8 = this.view.u8;
    const start = this.slotOffset();
    const firstBytes = Math.min(bytes, this.contiguous() * GSP_PAGE_SIZE);
    dst.set(u8.subarray(start, start + firstBytes), 0);
    if (firstBytes < bytes) dst.set(u8.subarray(this.entries, this.entries + (bytes - firstBytes)), firstBytes);
  }

  /** Consume `pages` slots (local until release()). */
  advance(pages: number): void {
    const r = this.rptr + pages;
    this.rptr = r >= CNT ? r - CNT : r;
  }

  /** Publish the read pointer (frees the consumed slots for the producer). Returns whether it moved. */
  release(): boolean {
    if (this.rptr === this.published) return false;
    this.published = this.rptr;
    Atomics.store(this.view.i32, this.rptrIdx, this.rptr);
    return true;
  }
}

/** The rings and doorbells of one side. */
export interface GspEndpoint {
  view: GspRegionView;
  tx: GspTxQueue;
  rx: GspRxQueue;
  /** Rung by the peer when our RX ring has new elements (or, host side, when FW_STATE changed). */
  inbound: Doorbell;
  /** Rung by us after publishing into our TX ring. */
  outbound: Doorbell;
  /** Rung by the peer after it consumed our TX ring (we sleep on it when the TX ring is full). */
  txSpace: Doorbell;
  /** Rung by us after consuming the RX ring. */
  rxSpace: Doorbell;
}

export function openEndpoint(view: GspRegionView, side: GspSide): GspEndpoint {
  const C = GspControl;
  const hostToGsp = new Doorbell(view, C.GSP_DOORBELL, C.GSP_SLEEPING);
  const gspToHost = new Doorbell(view, C.HOST_INTERRUPT, C.HOST_SLEEPING);
  const cmdqSpace = new Doorbell(view, C.CMDQ_SPACE, C.HOST_SPACE_WAITING);
  const msgqSpace = new Doorbell(view, C.MSGQ_SPACE, C.GSP_SPACE_WAITING);
  if (side === 'host') {
    return {
      view,
      tx: new GspTxQueue(view, GspRegion.CMDQ, GspRegion.MSGQ),
      rx: new GspRxQueue(view, GspRegion.MSGQ, GspRegion.CMDQ),
      inbound: gspToHost,
      outbound: hostToGsp,
      txSpace: cmdqSpace,
      rxSpace: msgqSpace,
    };
  }
  return {
    view,
    tx: new GspTxQueue(view, GspRegion.MSGQ, GspRegion.CMDQ),
    rx: new GspRxQueue(view, GspRegion.CMDQ, GspRegion.MSGQ),
    inbound: hostToGsp,
    outbound: gspToHost,
    txSpace: msgqSpace,
    rxSpace: cmdqSpace,
  };
}
