/**
 * FbRegion: the bytes of one vGPU's framebuffer as the migration code sees them. The stream, the dirty trackers and
 * the engine only need windows, page hashes and a zero fill, so the same code runs over an arena range (tests,
 * benchmark, the simulator's device file) and later over a HostMapping of a vGPU's guest FB.
 *
 * A Buffer stops at 4 GiB and an arena window at 1 GiB, so windows are cut from cached 1 GiB views: the hot path
 * (one window per 1 MiB page run) then costs a subarray instead of an addon call.
 */
import { ErrorCode, VgpuError } from '../../core/contracts/exceptions.js';
import type { SharedArena } from '../../native/native-ops.js';
import type { PrefaultResult } from '../../core/contracts/memory.js';

export interface FbRegion {
  /** Size in bytes (a multiple of the page size). */
  readonly size: bigint;
  /** A view over `[offset, offset+length)` of the region; writes go to the FB. `length` ≤ 1 GiB. */
  window(offset: bigint, length: number): Buffer;
  /** One 64-bit hash per page (native `hashPages` semantics). */
  hashPages(offset: bigint, length: bigint, pageSize: number): Promise<BigUint64Array>;
  /** Zero `[offset, offset+length)` (giving pages back where the backing can). Used to scrub a failed restore. */
  zero(offset: bigint, length: bigint): Promise<void>;
  /**
   * Offset (region-relative) of the first 32-bit word in `[offset, offset+length)` that is not zero, or null when
   * the range is all zero. Optional: a backing that can scan off the event loop (the native arena) provides it; the
   * hash tracker falls back to comparing windows.
   */
  firstNonZero?(offset: bigint, length: bigint): Promise<bigint | null>;
  /**
   * True when `hashPages` leaves never-written pages untouched and runs off the event loop (a native file/memfd
   * arena, or a FramebufferMemory whose backing hashes itself): the hash tracker then hashes directly, with no scan of
   * its own through windows — which would allocate every hole of a shared-memory FB it reads.
   */
  readonly sparseHash?: boolean;
  /**
   * Optional: ascending region-relative `[begin, end)` byte pairs inside `[offset, offset+length)` that may hold
   * data written since the FB was scrubbed; the rest of the range reads zero (a superset is fine, never the
   * reverse). From the backing's own record (FramebufferMemory.writtenExtents: the sparse FB file's holes), so
   * asking reads no page. The full pre-copy pass of a mostly unwritten FB sends only these parts.
   */
  writtenExtents?(offset: bigint, length: bigint): bigint[];
  /**
   * Optional: back `[offset, offset+length)` (page-aligned) with memory without writing it, off the event loop, so
   * stores into it cost no page allocation; reads and `writtenExtents` do not change. With `map`, also enter the
   * pages in this process's mapping, so stores take no fault at all (they then count as written and as RSS).
   * FramebufferMemory.prefault. A migration destination asks for its whole FB. 'no-room' / 'unsupported': nothing done.
   */
  prefault?(offset: bigint, length: bigint, opts?: { keepFreeBytes?: bigint; map?: boolean }): Promise<PrefaultResult>;
}

const VIEW = 1n << 30n;

/** FB span whose written extents are listed at once (≤ 32 Ki extents of 4 KiB pages: a bounded list). */
export const EXTENT_SPAN = 256n << 20n;

/**
 * f(begin, end) for each written extent of `[offset, offset+length)` of a region that keeps the record, span by
 * span (so the list in memory stays bounded whatever the FB size, and the event loop turns between spans),
 * ascending, region-relative. `f` returning false ends the walk.
 */
export async function forEachWrittenExtent(region: FbRegion, offset: bigint, length: bigint, f: (begin: bigint, end: bigint) => Promise<void> | void | false): Promise<void> {
  const end = offset + length;
  for (let pos = offset; pos < end; pos += EXTENT_SPAN) {
    const ext = region.writtenExtents!(pos, end - pos < EXTENT_SPAN ? end - pos : EXTENT_SPAN);
    for (let i = 0; i + 1 < ext.length; i += 2) if ((await f(ext[i]!, ext[i + 1]!)) === false) return;
    // The listing is synchronous (two lseek calls per extent, up to 32 Ki extents a span): let the loop run between.
    await new Promise<void>((r) => setImmediate(r));
  }
}

/** A region `[base, base+size)` of a SharedArena. */
export function arenaRegion(arena: SharedArena, base = 0n, size: bigint = arena.size - base): FbRegion {
  if (base < 0n || size <= 0n || base + size > arena.size) {
    throw new VgpuError(ErrorCode.InvalidArgument, `FB region 0x${base.toString(16)}+0x${size.toString(16)} is outside the arena (0x${arena.size.toString(16)} bytes)`, {
      hint: 'pass a base and size inside the arena (the vGPU guest FB slice)',
      details: { base: base.toString(), size: size.toString(), arena: arena.size.toString() },
    });
  }
  const views = new Map<bigint, Buffer>();
  const view = (k: bigint): Buffer => {
    let v = views.get(k);
    if (v === undefined) {
      const start = k * VIEW;
      const len = Number(size - start < VIEW ? size - start : VIEW);
      v = arena.window(base + start, len);
      views.set(k, v);
    }
    return v;
  };
  const check = (what: string, offset: bigint, length: bigint): void => {
    if (offset < 0n || length < 0n || offset + length > size) {
      throw new VgpuError(ErrorCode.NativeRange, `${what} 0x${offset.toString(16)}+0x${length.toString(16)} is outside the FB region (0x${size.toString(16)} bytes)`, {
        hint: 'a migration stream or dirty log named a page past the vGPU FB: the stream is for another FB size',
        details: { offset: offset.toString(), length: length.toString(), size: size.toString() },
      });
    }
  };
  return {
    size,
    sparseHash: arena.sab === null, // file and memfd arenas: the addon's hash seeks past holes
    window(offset: bigint, length: number): Buffer {
      check('window', offset, BigInt(length));
      const k = offset / VIEW;
      const rel = Number(offset - k * VIEW);
      if (BigInt(rel + length) <= VIEW) return view(k).subarray(rel, rel + length);
      return arena.window(base + offset, length); // crosses a 1 GiB boundary: rare, ask the arena directly
    },
    hashPages(offset: bigint, length: bigint, pageSize: number): Promise<BigUint64Array> {
      check('hashPages', offset, length);
      return arena.hashPages(base + offset, length, pageSize);
    },
    async zero(offset: bigint, length: bigint): Promise<void> {
      check('zero', offset, length);
      await arena.fill(base + offset, length, 0, { release: true });
    },
    async firstNonZero(offset: bigint, length: bigint): Promise<bigint | null> {
      check('firstNonZero', offset, length);
      const at = await arena.verify(base + offset, length, 0);
      return at === null ? null : at - base;
    },
    ...(arena.dataExtents !== undefined ? {
      writtenExtents(offset: bigint, length: bigint): bigint[] {
        check('writtenExtents', offset, length);
        return arena.dataExtents!(base + offset, length).map((x) => x - base);
      },
    } : {}),
    ...(arena.reserve !== undefined ? {
      async prefault(offset: bigint, length: bigint, opts?: { keepFreeBytes?: bigint; map?: boolean }): Promise<PrefaultResult> {
        check('prefault', offset, length);
        const r = await arena.reserve!(base + offset, length, opts?.keepFreeBytes);
        if (r !== 'reserved' || opts?.map !== true || arena.populate === undefined) return r;
        return (await arena.populate(base + offset, length)) === 'populated' ? 'mapped' : 'reserved';
      },
    } : {}),
  };
}
