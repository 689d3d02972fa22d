/**
 * Argument checks shared by both NativeOps implementations, so the addon and the fallback reject exactly the same
 * calls with exactly the same codes. The addon checks again in C++ (it must never trust its caller), but checking
 * here first gives the JS caller a VgpuError with offsets in `details` and a hint, whichever implementation runs.
 */
import { ErrorCode, VgpuError } from '../core/contracts/exceptions.js';

/** Largest window a caller may ask for: below Buffer's 4 GiB limit, and what the interface promises. */
export const MAX_WINDOW = 1 << 30;
/** Largest offset or length the arenas accept: offsets travel to C++ as doubles, exact below 2^53. */
export const MAX_ARENA_SIZE = BigInt(Number.MAX_SAFE_INTEGER);

export function checkArenaSize(size: bigint, max: bigint = MAX_ARENA_SIZE): void {
  if (typeof size !== 'bigint' || size <= 0n || size > max) {
    throw new VgpuError(ErrorCode.InvalidArgument, `arena size ${String(size)} is not in (0, ${max}]`, {
      hint: 'pass the size as a positive bigint number of bytes',
      details: { size: String(size), max: String(max) },
    });
  }
}

/** `[offset, offset+length)` must lie inside `[0, size)`. */
export function checkRange(what: string, size: bigint, offset: bigint, length: bigint): void {
  if (typeof offset !== 'bigint' || typeof length !== 'bigint') {
    throw new VgpuError(ErrorCode.InvalidArgument, `${what}: offset and length must be bigint`, {
      hint: 'convert with BigInt(n)',
      details: { offset: typeof offset, length: typeof length },
    });
  }
  if (offset < 0n || length < 0n || offset + length > size) {
    throw new VgpuError(ErrorCode.NativeRange, `${what}: range [${offset}, ${offset + length}) is outside the arena of ${size} bytes`, {
      hint: 'check the vGPU FB slice bounds against the arena size',
      details: { offset: String(offset), length: String(length), size: String(size) },
    });
  }
}

export function checkAlign(what: string, value: bigint, align: bigint, name: string): void {
  if (value % align !== 0n) {
    throw new VgpuError(ErrorCode.NativeAlign, `${what}: ${name} ${value} is not ${align}-byte aligned`, {
      hint: `round ${name} to a multiple of ${align}`,
      details: { [name]: String(value), align: Number(align) },
    });
  }
}

export function checkPattern(what: string, pattern: number): void {
  if (!Number.isInteger(pattern) || pattern < -0x80000000 || pattern > 0xffffffff) {
    throw new VgpuError(ErrorCode.InvalidArgument, `${what}: pattern ${pattern} is not a 32-bit integer`, {
      hint: 'pass a value in [0, 0xFFFFFFFF]',
      details: { pattern },
    });
  }
}

export function checkPageSize(what: string, pageSize: number): void {
  if (!Number.isInteger(pageSize) || pageSize < 8 || pageSize > MAX_WINDOW || (pageSize & (pageSize - 1)) !== 0) {
    throw new VgpuError(ErrorCode.InvalidArgument, `${what}: page size ${pageSize} is not a power of two in [8, 1 GiB]`, {
      hint: 'use 4096 (the default) or another power of two',
      details: { pageSize },
    });
  }
}

export function checkWindowLength(size: bigint, offset: bigint, length: number): void {
  if (!Number.isInteger(length) || length < 0 || length > MAX_WINDOW) {
    throw new VgpuError(ErrorCode.NativeRange, `window: length ${length} is not in [0, 1 GiB]`, {
      hint: 'map large ranges as several windows of at most 1 GiB',
      details: { length },
    });
  }
  checkRange('window', size, offset, BigInt(length));
}

export function checkClosed(closed: boolean, what: string): void {
  if (closed) {
    throw new VgpuError(ErrorCode.IllegalState, `${what}: the arena is closed`, {
      hint: 'open the arena again (openArena/createArena) before using it',
    });
  }
}
