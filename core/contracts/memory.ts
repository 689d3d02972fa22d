/**
 * Memory contract: the framebuffer of one physical GPU as an address space (docs/reference/core-driver-interface.md
 * duty 2 and ops 14–18). The vGPU manager reserves the guest FB slice and the management heap here, and maps ranges
 * for host access (the upstream driver maps them into PF BAR1 and gets a CPU pointer).
 *
 * A framebuffer may exceed what a Node Buffer can hold (4 GiB): host access is always through windows.
 */

export interface FbReserveRequest {
  size: bigint;
  /** Power-of-two alignment in bytes (the VMMU segment for a guest FB); 0 or undefined = the page (4 KiB). */
  align?: bigint;
  /** Who holds it: a vGPU id, 'manager', 'scrub', … Used for accounting and leak checks. */
  owner: string;
  /** What it is, for logs and the books: 'guest-fb', 'mgmt-heap', 'semaphore'. */
  label: string;
  /** Place the whole range below this offset (a manager keeps its heaps out of the region it places guest FB in). */
  below?: bigint;
  /** Place at this exact offset (re-attach after a restart, migration); fails if not free. */
  at?: bigint;
}

export interface FbRange {
  readonly id: number;
  readonly offset: bigint;
  readonly size: bigint;
  readonly owner: string;
  readonly label: string;
}

/** A host mapping of (part of) a range, like a BAR1 mapping: windows are Buffers of at most `maxWindow` bytes. */
export interface HostMapping {
  readonly range: FbRange;
  /** Offset inside the range where the mapping starts, and its length. */
  readonly offset: bigint;
  readonly size: bigint;
  /** A Buffer view of [offset, offset+length) relative to the mapping start. Throws if out of bounds. */
  window(offset: number, length: number): Buffer;
  read(offset: number, length: number): Buffer;
  write(offset: number, data: Uint8Array): void;
  /**
   * Optional: sleep while the 32-bit word at `offset` (4-byte aligned) still holds `expected`, at most `timeoutMs`;
   * resolves early when the device wrote the word and said so. Present only where the device can notify a host
   * waiting on its memory — a simulated GPU wakes the word after its plugin task writes a mailbox answer. Real BAR1
   * memory cannot: there the caller polls, as upstream's busy-wait does (docs/reference/vgpu-mailbox.md). A wake-up
   * says "look again", never what the word holds: the caller re-reads it.
   */
  waitWord32?(offset: number, expected: number, timeoutMs: number): Promise<void>;
  unmap(): void;
}

/**
 * Longest single HostMapping.waitWord32 sleep a caller should take: how late it may notice a deadline, an abort or a
 * closed channel (the device's wake-up ends a sleep at once; this bounds the sleeps nothing wakes).
 */
export const WAKE_SLICE_MS = 20;

export interface FbStats {
  total: bigint;
  used: bigint;
  free: bigint;
  /** Largest free contiguous block. */
  largestFree: bigint;
  /** 1 − largestFree/free (0 when free is 0): how split the free space is. */
  fragmentation: number;
  ranges: number;
}

/** What FramebufferMemory.prefault did. */
export type PrefaultResult = 'reserved' | 'mapped' | 'no-room' | 'unsupported';

export interface FramebufferMemory {
  readonly totalBytes: bigint;
  reserve(req: FbReserveRequest): FbRange;
  /** Free a range; any live mapping of it is unmapped first. Throws a typed error on an unknown range. */
  free(range: FbRange): void;
  /** Map `[offset, offset+size)` of the range for host access (op 17, bar1_map_mem). */
  map(range: FbRange, opts?: { offset?: bigint; size?: bigint }): HostMapping;
  stats(): FbStats;
  /** Every live range, for the books and the reconcile after a restart. */
  list(): FbRange[];
  /** Fill a range with a 32-bit pattern (host-side fill; the CE scrub uses the copy engine instead). */
  fill(range: FbRange, pattern: number, opts?: { offset?: bigint; size?: bigint }): Promise<void>;
  /**
   * Optional: check that every 32-bit word of the range equals `pattern` (the scrub's verify pass). Resolves with
   * the offset INSIDE the range of the first word that differs, or null when all match. Implementations use the
   * backing store's own scan when it has one (the native arena: multi-threaded, off the event loop, hole-aware).
   * `opts` narrows the check to `[offset, offset+size)` of the range (the returned offset stays range-relative).
   */
  verify?(range: FbRange, pattern: number, opts?: { offset?: bigint; size?: bigint }): Promise<bigint | null>;
  /**
   * Optional: one 64-bit hash per page of `[offset, offset+size)` of the range (defaults: the whole range, 4 KiB
   * pages), computed by the backing store itself — off the event loop, and WITHOUT touching pages that were never
   * written (a sparse FB must stay sparse: reading a hole of a shared-memory FB through a mapping allocates it).
   * Present only when the backing can do that; the migration plugin's hash dirty tracking uses it, and otherwise
   * hashes through a mapping. Same values as the native page hash (`vgpu-page-hash-v1`).
   */
  readonly hashPages?: (range: FbRange, opts?: { offset?: bigint; size?: bigint; pageSize?: number }) => Promise<BigUint64Array>;
  /**
   * Optional: the parts of `[offset, offset+size)` of the range that may have been written since the range was last
   * scrubbed, as ascending range-relative `[begin, end)` byte pairs; everything outside them reads zero. A superset
   * is allowed (never the reverse). Present only when the backing keeps that record itself: the simulator's sparse
   * FB file does (a scrub releases pages; only a page something stored to — or read through a mapping — is backed
   * again). Synchronous and cheap (no page is read). Migration sends only these parts of a fresh FB.
   */
  readonly writtenExtents?: (range: FbRange, opts?: { offset?: bigint; size?: bigint }) => bigint[];
  /**
   * Optional: back `[offset, offset+size)` of the range (page-aligned; default the whole range) with memory now,
   * without writing it, so that the first store to each page costs no page allocation — as with real VRAM, which is
   * always there. Reads stay zero and `writtenExtents` does not change. With `map`, the pages are also entered in
   * this process's mappings of the FB, so stores take no page fault at all; they then count as written
   * (`writtenExtents`) and in this process's RSS. Present only when the backing can (the simulator's sparse FB file:
   * fallocate, madvise); runs off the event loop. Resolves 'reserved', 'mapped', 'no-room' (the backing has less
   * than the size plus `keepFreeBytes` free: nothing done) or 'unsupported' (nothing done); rejects when it failed
   * part way (what was backed stays with the range, and its scrub gives it back).
   */
  readonly prefault?: (range: FbRange, opts?: { offset?: bigint; size?: bigint; keepFreeBytes?: bigint; map?: boolean }) => Promise<PrefaultResult>;
}
