/**
 * The interface of the native hot paths. Two implementations stand behind it: the node-addon-api addon
 * (`native/src/`, file/memfd mappings shared between processes, futex doorbells, multi-threaded fills) and the
 * pure-TypeScript fallback (`native/fallback.ts`, SharedArrayBuffer arenas shared between threads of one process).
 * Both carry the same bytes; callers never ask which one they have except to report it.
 *
 * Offsets and lengths inside an arena are bigint because a framebuffer is larger than 2^32 (and than a Buffer).
 */

export type ArenaBacking = 'file' | 'memfd' | 'sab';

export interface CreateArenaOptions {
  size: bigint;
  /**
   * Backing file (e.g. under /dev/shm) so another process can attach with `openArena(path)`. Created sparse;
   * an existing file of the same size is re-used as it is (its contents survive: that is how a restarted daemon
   * finds its vGPUs' FB). Without a path: 'memfd' (native) or 'sab' (fallback).
   */
  path?: string;
  backing?: ArenaBacking;
}

export type WaitResult = 'ok' | 'not-equal' | 'timed-out';

/** What SharedArena.reserve did. */
export type ReserveResult = 'reserved' | 'no-room' | 'unsupported';

export interface SharedArena {
  readonly size: bigint;
  readonly backing: ArenaBacking;
  /** Path of the backing file, or null. */
  readonly path: string | null;
  /** The SharedArrayBuffer behind a 'sab' arena (to post to a worker), else null. */
  readonly sab: SharedArrayBuffer | null;

  /**
   * A Buffer view over `[offset, offset+length)`; `length` ≤ 1 GiB. Writes through it are writes to the arena.
   * Throws VGPU_ERANGE when the range is outside the arena.
   */
  window(offset: bigint, length: number): Buffer;

  /** Fill with a repeated 32-bit little-endian pattern, split across the machine's cores, off the event loop.
   *  `offset` and `length` must be 4-byte aligned (VGPU_EALIGN). With pattern 0 and `release` (default true)
   *  whole 4 KiB pages are handed back to the kernel instead of written, keeping the arena sparse. */
  fill(offset: bigint, length: bigint, pattern: number, opts?: { release?: boolean }): Promise<void>;
  /** Offset of the first 32-bit word that differs from `pattern`, or null when the whole range matches. */
  verify(offset: bigint, length: bigint, pattern: number): Promise<bigint | null>;
  /** One 64-bit hash per page of `pageSize` (default 4096) bytes; offset and length page-aligned. Same values on
   *  the addon and the fallback. */
  hashPages(offset: bigint, length: bigint, pageSize?: number): Promise<BigUint64Array>;
  /** Bytes of the arena actually backed by memory (resident/allocated pages), for sparseness checks. */
  committedBytes(): bigint;
  /**
   * Optional (file and memfd arenas of the addon): the data extents of `[offset, offset+length)` as ascending
   * absolute `[begin, end)` pairs, from the backing file's own map (lseek SEEK_DATA/SEEK_HOLE; no page is read).
   * Outside them the arena reads zero: a hole is a page never written since the file was made or the page was
   * released by `fill(…, 0, {release})`. A superset of the written pages (reading a hole through a mapping makes
   * shmem allocate it; a filesystem that cannot tell reports one extent). Synchronous: two syscalls per extent.
   */
  dataExtents?(offset: bigint, length: bigint): bigint[];
  /**
   * Optional (file and memfd arenas of the addon): back the pages of `[offset, offset+length)` (page-aligned) with
   * memory WITHOUT writing them (fallocate, KEEP_SIZE), off the event loop on the low-priority job threads. Reads
   * stay zero and `dataExtents` does not change (on tmpfs such a page stays a hole until something stores to it),
   * but a later store no longer allocates its page in the fault. Resolves 'reserved'; 'no-room' when the backing
   * filesystem has less than `length + keepFreeBytes` free (nothing done); 'unsupported' when it cannot reserve
   * (nothing done). Rejects (VGPU_ENOSPC, …) when it failed part way: what was reserved stays, and a release-fill
   * gives it back. docs/reference/precopy-convergence.md.
   */
  reserve?(offset: bigint, length: bigint, keepFreeBytes?: bigint): Promise<ReserveResult>;
  /**
   * Optional (file and memfd arenas of the addon): map the pages of `[offset, offset+length)` (page-aligned) for
   * writing now (madvise MADV_POPULATE_WRITE), off the event loop on the low-priority job threads: each page is
   * allocated if needed, zeroed if never written and entered in this process's page tables, so a later store through
   * the arena's windows takes no page fault. The pages then count as written (`dataExtents`) and as this process's
   * RSS. Resolves 'populated', or 'unsupported' (a kernel before 5.14: nothing done).
   */
  populate?(offset: bigint, length: bigint): Promise<'populated' | 'unsupported'>;

  /** 32-bit atomic load/store at a 4-byte aligned offset (queue pointers, doorbell words). */
  load32(offset: bigint): number;
  store32(offset: bigint, value: number): void;
  /**
   * Block (asynchronously) while the 32-bit word at `offset` equals `expected`, up to `timeoutMs`. A change is seen
   * when the writer calls wake32 or, for a writer that only stores, at the waiter's next look (the addon looks every
   * 200 ms). `wokenOnly`: every writer of this word wakes it, so the waiter need not look — an endless wait then
   * costs no wake-ups while nothing happens (the fallback's waits never look: the option changes nothing there).
   */
  wait32(offset: bigint, expected: number, timeoutMs: number, opts?: { wokenOnly?: boolean }): Promise<WaitResult>;
  /** Wake up to `count` waiters on the word (default all). Works across processes for file/memfd arenas. */
  wake32(offset: bigint, count?: number): void;

  /** Unmap. The backing file stays (the device owns it). */
  close(): void;
}

/**
 * Which store/hash loops this implementation runs and why — the CPU as cpuid reports it, and the kernels chosen from
 * it at run time (native/src/kernels.h; docs/reference/cpu-kernels.md). For logs and benchmarks; callers never
 * branch on it.
 */
export interface KernelReport {
  cpu: {
    arch: string;
    /** cpuid vendor ("AuthenticAMD", "GenuineIntel"), "" when not x86 or not known. */
    vendor: string;
    /** Brand string ("AMD EPYC 7B13 64-Core Processor"), or the OS's model name on the fallback. */
    brand: string;
    family: number;
    model: number;
    stepping: number;
    /** Usable instruction-set features the kernels care about (sse2, sse4.1, avx2, avx512f, avx512bw, erms, fsrm, hypervisor). */
    features: string[];
    /** Last-level cache one core sees, bytes (0 = unknown), and its level. */
    llcBytes: number;
    llcLevel: number;
  };
  /** Fills below `streamThreshold` bytes run `small`; fills at or above it run `large`. */
  fill: { small: string; large: string; streamThreshold: number };
  pageHash: string;
  bufferHash: string;
  /** Every kernel this CPU can run, per job kind (what setKernels accepts). */
  available: { fill: string[]; pageHash: string[]; bufferHash: string[] };
  /** True when VGPUD_KERNELS or setKernels pinned any choice. */
  overridden: boolean;
}

export interface NativeOps {
  readonly kind: 'native' | 'js';
  createArena(opts: CreateArenaOptions): SharedArena;
  /** Attach to an arena another process created (native only; the fallback throws VGPU_ENODEV). */
  openArena(path: string): SharedArena;
  /** Wrap a SharedArrayBuffer received from another thread. */
  attachSab(sab: SharedArrayBuffer): SharedArena;
  /** A plain single-threaded memset of the whole buffer: the physical floor the scrub benchmark compares with. */
  memsetFloor(buf: Buffer, byte: number): void;
  /**
   * The C library's fill of a 32-bit pattern over the whole buffer in one call on this thread (memset when the four
   * bytes are equal, wmemset otherwise): the floor for any pattern. Buffer start and length 4-byte aligned.
   */
  fillFloor(buf: Buffer, pattern: number): void;
  /** The CPU and the kernels chosen for it (see KernelReport). */
  kernels(): KernelReport;
  /**
   * "vgpu-buffer-hash-v1" (native/buffer-hash.ts) of the concatenation of `parts`: a 64-bit change detector that
   * catches any single damaged word for sure. Synchronous (memory speed on the addon; meant for ≤ 64 MiB at a time).
   * Same value on the addon and the fallback.
   */
  hashBuffers(parts: readonly Uint8Array[]): bigint;
  /** Send a systemd notification (READY=1 …); false when not under systemd or unsupported. */
  sdNotify(state: string): boolean;
  /**
   * Collect V8's garbage now (a full GC: the isolate's critical memory-pressure notification), then give the C
   * library's free heap pages back to the kernel (glibc malloc_trim): what a burst of work freed stays resident
   * otherwise. True when C-heap memory was released; false when there was none, or no way to (the fallback, which
   * does nothing; another C library). Synchronous and blocking (tens of ms on a daemon's heap): call it when the
   * process turns idle, never on a hot path.
   */
  releaseFreeMemory(): boolean;
}
