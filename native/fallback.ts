/**
 * Pure-TypeScript NativeOps: arenas are SharedArrayBuffers, shared between the threads of ONE process (post
 * `arena.sab` to a worker, wrap it there with `attachSab`). Used when the addon did not build, or forced with
 * VGPUD_NO_NATIVE=1. It carries the same bytes and gives the same verify/hashPages answers as the addon.
 *
 * What it cannot do, and why:
 * - No file or memfd arenas, no `openArena`: JS cannot mmap, so nothing is shared with another process and nothing
 *   survives a restart. Those calls throw VGPU_ENODEV with a hint to build the addon.
 * - No page release: a zero fill with `release` writes zeros (JS cannot madvise/punch holes), so a scrubbed range
 *   stays committed. `committedBytes()` reports the whole size, because the resident part is unknowable from JS
 *   and the conservative answer keeps memory checks honest.
 * - Size: Node 20's SharedArrayBuffer is calloc'd lazily (untouched pages cost nothing), but the allocation is
 *   refused by the kernel's overcommit heuristic near the machine's RAM: on a 24 GiB host 16 GiB succeeds and
 *   32 GiB fails with "Array buffer allocation failed". The fallback therefore caps arenas at FALLBACK_MAX_ARENA
 *   (16 GiB) and turns any allocation failure into VGPU_ENOMEM; a 48 GB framebuffer needs the addon.
 *
 * Long operations: fills and verifies of 8 MiB or more run on a helper worker thread at low priority
 * (`fallback-worker.ts`: the loop's thread never touches the memory, so first-touch page faults and the scheduler's
 * view of a busy thread stop stalling it). hashPages, smaller jobs, and everything when no worker can start, run in
 * time slices on the event loop and yield between slices with setImmediate; the slice size adapts to the measured
 * throughput (first-touch pages fill at ~2 GB/s, touched pages at ~40 GB/s).
 */
import { cpus } from 'node:os';
import { ErrorCode, VgpuError } from '../core/contracts/exceptions.js';
import type { CreateArenaOptions, KernelReport, NativeOps, SharedArena, WaitResult } from './native-ops.js';
import {
  MAX_WINDOW, checkAlign, checkArenaSize, checkClosed, checkPageSize, checkPattern, checkRange, checkWindowLength,
} from './arena-checks.js';
import { hashPagesInto } from './page-hash.js';
import { bufferHash } from './buffer-hash.js';
import { OFF_THREAD_MIN_BYTES, offThread, type OffThreadJob } from './fallback-worker.js';

export const FALLBACK_MAX_ARENA = 16n << 30n;

/** Aim for slices of about this long; the loop-delay budget is 20 ms, leave room for other work. */
const SLICE_TARGET_MS = 4;
const MIN_SLICE = 1 << 20;
/** Cap: at first-touch speed (measured ~1.7 GB/s on a fresh SAB) 16 MiB takes ~10 ms, so a slice sized on warm pages that runs into cold
 *  ones still stays inside the 20 ms budget; at warm speed the yield costs < 3 % of a slice. */
const MAX_SLICE = 16 << 20;

type WaitAsyncResult = { async: false; value: 'not-equal' | 'timed-out' } | { async: true; value: Promise<'ok' | 'timed-out'> };
// lib ES2022 has no typing for Atomics.waitAsync (ES2024) although Node 20 implements it.
const waitAsync = (Atomics as unknown as {
  waitAsync(ta: Int32Array, index: number, value: number, timeout?: number): WaitAsyncResult;
}).waitAsync;

const yieldToLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Adapts the bytes done per slice so each slice takes about SLICE_TARGET_MS. */
class Slicer {
  private bytes: number;
  constructor(initial: number, private readonly align: number) {
    this.bytes = Math.max(initial, align);
  }
  next(remaining: number): number {
    const n = Math.min(this.bytes, remaining, MAX_SLICE);
    return n >= this.align ? n - (n % this.align) : n;
  }
  record(bytes: number, ms: number): void {
    const rate = bytes / Math.max(ms, 0.05);
    const want = Math.min(MAX_SLICE, Math.max(MIN_SLICE, rate * SLICE_TARGET_MS));
    // Grow at most 2× per step: one fast slice on warm pages must not lead straight into a huge cold one.
    this.bytes = Math.floor(Math.min(want, this.bytes * 2));
  }
}

function patternBytes(pattern: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(pattern >>> 0);
  return b;
}

/** Arenas at least this big start the helper thread at creation, so a first scrub does not wait for it. */
const WARM_HELPER_BYTES = 64n << 20n;

/** Run a fill/verify on the helper thread; undefined when it is unavailable (the caller slices on the loop). */
async function runOffThread(job: OffThreadJob): Promise<number | null | undefined> {
  const p = offThread.run(job);
  if (!p) return undefined;
  try {
    return await p;
  } catch (err) {
    throw new VgpuError(ErrorCode.Internal, `${job.op}: the fallback helper thread failed: ${(err as Error).message}`, {
      hint: 'see the daemon log; retry the operation (a new helper thread is started)',
      cause: err,
    });
  }
}

function jsError(code: ErrorCode, message: string, hint: string, details: Record<string, unknown> = {}): VgpuError {
  return new VgpuError(code, message, { hint, details });
}

export class SabArena implements SharedArena {
  readonly size: bigint;
  readonly backing = 'sab' as const;
  readonly path = null;
  readonly sab: SharedArrayBuffer;
  private closed = false;
  /** One Int32Array per 1 GiB region, made on first use (a whole-arena typed array may exceed V8's limits). */
  private readonly words = new Map<number, Int32Array>();

  constructor(sab: SharedArrayBuffer) {
    this.sab = sab;
    this.size = BigInt(sab.byteLength);
  }

  window(offset: bigint, length: number): Buffer {
    checkClosed(this.closed, 'window');
    checkWindowLength(this.size, offset, length);
    return Buffer.from(this.sab, Number(offset), length);
  }

  private checkFillArgs(what: string, offset: bigint, length: bigint, pattern: number): void {
    checkClosed(this.closed, what);
    checkRange(what, this.size, offset, length);
    checkAlign(what, offset, 4n, 'offset');
    checkAlign(what, length, 4n, 'length');
    checkPattern(what, pattern);
  }

  async fill(offset: bigint, length: bigint, pattern: number, _opts?: { release?: boolean }): Promise<void> {
    this.checkFillArgs('fill', offset, length, pattern);
    // `release` is accepted and ignored: JS cannot give pages back (see the file comment).
    if (length >= BigInt(OFF_THREAD_MIN_BYTES)) {
      const r = await runOffThread({ op: 'fill', sab: this.sab, offset: Number(offset), length: Number(length), pattern });
      if (r !== undefined) return;
    }
    const pat = patternBytes(pattern);
    const sameBytes = pat[0] === pat[1] && pat[1] === pat[2] && pat[2] === pat[3];
    let pos = Number(offset);
    const end = pos + Number(length);
    const slicer = new Slicer(8 << 20, 4);
    while (pos < end) {
      const n = slicer.next(end - pos);
      const t0 = performance.now();
      const view = Buffer.from(this.sab, pos, n);
      // Slices start 4-aligned, so a 4-byte pattern restarted per slice stays in phase with the arena's words.
      if (sameBytes) view.fill(pat[0]!);
      else view.fill(pat);
      slicer.record(n, performance.now() - t0);
      pos += n;
      if (pos < end) {
        await yieldToLoop();
        checkClosed(this.closed, 'fill');
      }
    }
  }

  async verify(offset: bigint, length: bigint, pattern: number): Promise<bigint | null> {
    this.checkFillArgs('verify', offset, length, pattern);
    if (length >= BigInt(OFF_THREAD_MIN_BYTES)) {
      const r = await runOffThread({ op: 'verify', sab: this.sab, offset: Number(offset), length: Number(length), pattern });
      if (r !== undefined) return r === null || r < 0 ? null : BigInt(r);
    }
    const BLOCK = 1 << 20;
    const ref = Buffer.alloc(BLOCK, patternBytes(pattern));
    let pos = Number(offset);
    const end = pos + Number(length);
    const slicer = new Slicer(16 << 20, BLOCK);
    while (pos < end) {
      const n = slicer.next(end - pos);
      const t0 = performance.now();
      const view = Buffer.from(this.sab, pos, n);
      for (let b = 0; b < n; b += BLOCK) {
        const len = Math.min(BLOCK, n - b);
        if (ref.compare(view, b, b + len, 0, len) !== 0) {
          for (let i = b; i < b + len; i += 4) {
            if (view.readUInt32LE(i) !== ref.readUInt32LE(0)) return BigInt(pos + i);
          }
        }
      }
      slicer.record(n, performance.now() - t0);
      pos += n;
      if (pos < end) {
        await yieldToLoop();
        checkClosed(this.closed, 'verify');
      }
    }
    return null;
  }

  async hashPages(offset: bigint, length: bigint, pageSize = 4096): Promise<BigUint64Array> {
    checkClosed(this.closed, 'hashPages');
    checkPageSize('hashPages', pageSize);
    checkRange('hashPages', this.size, offset, length);
    checkAlign('hashPages', offset, BigInt(pageSize), 'offset');
    checkAlign('hashPages', length, BigInt(pageSize), 'length');
    const pages = Number(length / BigInt(pageSize));
    const out = new BigUint64Array(pages);
    // Little-endian host assumed (x86-64, arm64 Linux): the low half of each u64 is the even u32.
    const out32 = new Uint32Array(out.buffer);
    const slicer = new Slicer(4 << 20, pageSize);
    let pos = Number(offset);
    let done = 0;
    while (done < pages) {
      const n = slicer.next((pages - done) * pageSize);
      const t0 = performance.now();
      const words = new Int32Array(this.sab, pos, n / 4);
      hashPagesInto(words, 0, pageSize / 4, n / pageSize, out32, done);
      slicer.record(n, performance.now() - t0);
      pos += n;
      done += n / pageSize;
      if (done < pages) {
        await yieldToLoop();
        checkClosed(this.closed, 'hashPages');
      }
    }
    return out;
  }

  committedBytes(): bigint {
    return this.size;
  }

  /** The Int32Array and index for the word at `offset` (validated). */
  private word(what: string, offset: bigint): [Int32Array, number] {
    checkClosed(this.closed, what);
    checkRange(what, this.size, offset, 4n);
    checkAlign(what, offset, 4n, 'offset');
    const off = Number(offset);
    const region = Math.floor(off / MAX_WINDOW);
    let ta = this.words.get(region);
    if (!ta) {
      const base = region * MAX_WINDOW;
      ta = new Int32Array(this.sab, base, Math.floor(Math.min(MAX_WINDOW, this.sab.byteLength - base) / 4));
      this.words.set(region, ta);
    }
    return [ta, (off - region * MAX_WINDOW) / 4];
  }

  load32(offset: bigint): number {
    const [ta, i] = this.word('load32', offset);
    return Atomics.load(ta, i) >>> 0;
  }

  store32(offset: bigint, value: number): void {
    const [ta, i] = this.word('store32', offset);
    checkPattern('store32', value);
    Atomics.store(ta, i, value | 0);
  }

  async wait32(offset: bigint, expected: number, timeoutMs: number): Promise<WaitResult> {
    const [ta, i] = this.word('wait32', offset);
    checkPattern('wait32', expected);
    if (!(timeoutMs >= 0)) {
      throw jsError(ErrorCode.InvalidArgument, `wait32: timeout ${timeoutMs} is not a non-negative number`,
        'pass milliseconds ≥ 0 (Infinity waits forever)', { timeoutMs });
    }
    const r = waitAsync(ta, i, expected | 0, timeoutMs);
    if (!r.async) return r.value;
    // A pending Atomics.waitAsync does not keep Node's event loop alive: without a ref'd handle the process can
    // exit (or a test end) before the notify or the timeout is delivered. Hold an interval until it settles.
    const keepAlive = setInterval(() => {}, 1 << 30);
    try {
      return await r.value;
    } finally {
      clearInterval(keepAlive);
    }
  }

  wake32(offset: bigint, count?: number): void {
    const [ta, i] = this.word('wake32', offset);
    Atomics.notify(ta, i, count ?? Infinity);
  }

  close(): void {
    this.closed = true;
    this.words.clear();
  }
}

function noProcessSharing(what: string): VgpuError {
  return jsError(ErrorCode.UnsupportedDevice, `${what} needs the native addon (file/memfd arenas are shared between processes)`,
    'build it with `npm run build:native` (and unset VGPUD_NO_NATIVE), or create a \'sab\' arena without a path');
}

export const fallbackOps: NativeOps = {
  kind: 'js',

  createArena(opts: CreateArenaOptions): SharedArena {
    if (opts.path !== undefined || (opts.backing !== undefined && opts.backing !== 'sab')) {
      throw noProcessSharing(`a '${opts.backing ?? 'file'}' arena${opts.path ? ` at ${opts.path}` : ''}`);
    }
    checkArenaSize(opts.size);
    if (opts.size > FALLBACK_MAX_ARENA) {
      throw jsError(ErrorCode.OutOfMemory,
        `the JS fallback cannot hold an arena of ${opts.size} bytes (limit ${FALLBACK_MAX_ARENA})`,
        'build the native addon (`npm run build:native`): its sparse memfd/file arenas have no such limit',
        { size: String(opts.size), max: String(FALLBACK_MAX_ARENA) });
    }
    let sab: SharedArrayBuffer;
    try {
      sab = new SharedArrayBuffer(Number(opts.size));
    } catch (err) {
      throw new VgpuError(ErrorCode.OutOfMemory, `could not allocate a SharedArrayBuffer of ${opts.size} bytes`, {
        hint: 'free memory, use a smaller arena, or build the native addon for sparse arenas',
        details: { size: String(opts.size) },
        cause: err,
      });
    }
    if (opts.size >= WARM_HELPER_BYTES) offThread.warm();
    return new SabArena(sab);
  },

  openArena(path: string): SharedArena {
    throw noProcessSharing(`openArena(${path})`);
  },

  attachSab(sab: SharedArrayBuffer): SharedArena {
    if (!(sab instanceof SharedArrayBuffer)) {
      throw jsError(ErrorCode.InvalidArgument, 'attachSab: argument is not a SharedArrayBuffer',
        'pass `arena.sab` as received from the other thread');
    }
    return new SabArena(sab);
  },

  memsetFloor(buf: Buffer, byte: number): void {
    // Buffer.fill with one byte is a single memset in Node's C++: the same floor the addon measures.
    buf.fill(byte & 0xff);
  },

  fillFloor(buf: Buffer, pattern: number): void {
    if (buf.byteOffset % 4 !== 0 || buf.length % 4 !== 0) {
      throw jsError(ErrorCode.NativeAlign, 'fillFloor: the buffer must start and end on a 4-byte boundary', 'pass a 4-aligned window');
    }
    // TypedArray.fill over 32-bit units: V8's own fill loop, the floor a JS fill can reach.
    new Uint32Array(buf.buffer, buf.byteOffset, buf.length / 4).fill(pattern >>> 0);
  },

  kernels(): KernelReport {
    const cpu = cpus()[0];
    return {
      cpu: { arch: process.arch, vendor: '', brand: cpu?.model ?? '', family: 0, model: 0, stepping: 0, features: [], llcBytes: 0, llcLevel: 0 },
      fill: { small: 'typed-array', large: 'typed-array', streamThreshold: 0 },
      pageHash: 'typescript',
      bufferHash: 'typescript',
      available: { fill: ['typed-array'], pageHash: ['typescript'], bufferHash: ['typescript'] },
      overridden: false,
    };
  },

  hashBuffers(parts: readonly Uint8Array[]): bigint {
    // Same refusal as the addon's: anything but an array of Uint8Arrays (Buffers) is VGPU_EINVAL.
    if (!Array.isArray(parts)) throw jsError(ErrorCode.InvalidArgument, 'hashBuffers: argument must be an array of Uint8Arrays', 'pass [buf, ...]');
    parts.forEach((p, i) => {
      if (!(p instanceof Uint8Array)) throw jsError(ErrorCode.InvalidArgument, `hashBuffers: part ${i} is not a Uint8Array (or Buffer)`, 'pass Buffers or Uint8Arrays');
    });
    return bufferHash(parts);
  },

  sdNotify(_state: string): boolean {
    // Node has no AF_UNIX datagram sockets; without the addon there is no way to reach $NOTIFY_SOCKET.
    return false;
  },

  releaseFreeMemory(): boolean {
    // JavaScript cannot reach the C library's allocator.
    return false;
  },
};
