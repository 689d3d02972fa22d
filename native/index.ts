/**
 * Loads NativeOps: the addon (native/build/Release/vgpud_native.node, found through node-gyp-build; the env var
 * VGPUD_NATIVE_PATH names another directory to load from), or the pure-TS fallback when the addon is missing
 * (warned once) or when VGPUD_NO_NATIVE=1 forces it.
 *
 * The addon speaks plain numbers (offsets < 2^53 travel exactly as doubles) and throws Errors with a `code`;
 * NativeArena turns that into the bigint SharedArena interface and VgpuErrors with hints.
 */
import { createRequire } from 'node:module';
import { assetPath } from '../core/runtime/package-root.js';
import { ErrorCode, VgpuError } from '../core/contracts/exceptions.js';
import type { ArenaBacking, CreateArenaOptions, KernelReport, NativeOps, ReserveResult, SharedArena, WaitResult } from './native-ops.js';
import {
  checkAlign, checkArenaSize, checkPageSize, checkPattern, checkRange, checkWindowLength,
} from './arena-checks.js';
import { fallbackOps } from './fallback.js';
import { bufferHash } from './buffer-hash.js';

/** The raw addon's shape (native/src/*.cc). */
interface RawArena {
  readonly size: number;
  window(offset: number, length: number): Buffer;
  fill(offset: number, length: number, pattern: number, release: boolean): Promise<void>;
  verify(offset: number, length: number, pattern: number): Promise<number>;
  hashPages(offset: number, length: number, pageSize: number): Promise<BigUint64Array>;
  committedBytes(): number;
  /** Absent from an addon built before it existed. */
  dataExtents?(offset: number, length: number): Float64Array;
  /** Absent from an addon built before it existed. */
  reserve?(offset: number, length: number, keepFreeBytes: number): Promise<ReserveResult>;
  /** Absent from an addon built before it existed. */
  populate?(offset: number, length: number): Promise<'populated' | 'unsupported'>;
  load32(offset: number): number;
  store32(offset: number, value: number): void;
  wait32(offset: number, expected: number, timeoutMs: number, wokenOnly?: boolean): Promise<WaitResult>;
  wake32(offset: number, count?: number): number;
  close(): void;
}
interface RawAddon {
  Arena: new (kind: 'memfd' | 'file' | 'open', size: number, path?: string) => RawArena;
  memsetFloor(buf: Buffer, byte: number): void;
  /** Absent from an addon built before run-time kernel selection (then the report says so). */
  fillFloor?(buf: Buffer, pattern: number): void;
  /** fillFloor on one helper thread at the job threads' priority (bench:scrub's floor). */
  libcFillJob?(buf: Buffer, pattern: number): Promise<void>;
  kernels?(): KernelReport;
  /** Pin kernels for benchmarks and tests ('auto' or null resets a key); throws VGPU_EINVAL for a kernel the CPU lacks. */
  setKernels?(choice: Partial<Record<'fill' | 'pageHash' | 'bufferHash', string | null> & { streamThreshold: number | 'auto' | null }>): KernelReport;
  /** Absent from an addon built before it was added (then the TS function stands in). */
  hashBuffers?(parts: readonly Uint8Array[]): bigint;
  sdNotify(state: string): boolean;
  /** Absent from an addon built before it was added (then nothing is released). */
  releaseFreeMemory?(): boolean;
  pageHashName: string;
}

const HINTS: Record<string, string> = {
  VGPU_ERANGE: 'keep offsets and lengths inside the arena (check the vGPU FB slice bounds)',
  VGPU_EALIGN: 'align offsets/lengths to 4 bytes (fill/verify/atomics) or to the page size (hashPages)',
  VGPU_EINVAL: 'check the argument types and values against native/native-ops.ts',
  VGPU_ESTATE: 'the arena was closed; open it again',
  VGPU_ENOENT: 'the arena file does not exist: create it with createArena({path, size}) first',
  VGPU_ENOSPC: 'the backing filesystem (/dev/shm) is full: free memory or destroy idle vGPUs',
  VGPU_ENOMEM: 'the machine is out of memory: use a smaller arena or free memory',
  VGPU_EINTERNAL: 'an unexpected system error: see the message and the daemon log',
};
const KNOWN = new Set<string>(Object.values(ErrorCode));

/** Turn an addon Error (with `code`) into a VgpuError; anything else passes through. */
export function toVgpuError(err: unknown): unknown {
  if (err instanceof VgpuError || !(err instanceof Error)) return err;
  const code = (err as Error & { code?: unknown }).code;
  if (typeof code !== 'string' || !code.startsWith('VGPU_')) return err;
  const c = (KNOWN.has(code) ? code : ErrorCode.Internal) as ErrorCode;
  return new VgpuError(c, err.message, { hint: HINTS[code] ?? HINTS.VGPU_EINTERNAL!, cause: err });
}

function wrap<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw toVgpuError(err);
  }
}

async function wrapAsync<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw toVgpuError(err);
  }
}

/** bigint → number for the addon, after the range checks (so below 2^53: exact as a double). */
function n(v: bigint): number {
  return Number(v);
}

export class NativeArena implements SharedArena {
  readonly size: bigint;
  readonly sab = null;

  constructor(private readonly raw: RawArena, readonly backing: ArenaBacking, readonly path: string | null) {
    this.size = BigInt(raw.size);
  }

  window(offset: bigint, length: number): Buffer {
    // Checked here too so the error carries `details`; the addon re-checks.
    checkWindowLength(this.size, offset, length);
    return wrap(() => this.raw.window(n(offset), length));
  }

  /** Same checks, same codes as the fallback (the addon re-checks: it never trusts its caller). */
  private span(what: string, offset: bigint, length: bigint, pattern: number): void {
    checkRange(what, this.size, offset, length);
    checkAlign(what, offset, 4n, 'offset');
    checkAlign(what, length, 4n, 'length');
    checkPattern(what, pattern);
  }

  private word(what: string, offset: bigint): void {
    checkRange(what, this.size, offset, 4n);
    checkAlign(what, offset, 4n, 'offset');
  }

  async fill(offset: bigint, length: bigint, pattern: number, opts?: { release?: boolean }): Promise<void> {
    this.span('fill', offset, length, pattern);
    return wrapAsync(() => this.raw.fill(n(offset), n(length), pattern, opts?.release ?? true));
  }

  async verify(offset: bigint, length: bigint, pattern: number): Promise<bigint | null> {
    this.span('verify', offset, length, pattern);
    const r = await wrapAsync(() => this.raw.verify(n(offset), n(length), pattern));
    return r < 0 ? null : BigInt(r);
  }

  async hashPages(offset: bigint, length: bigint, pageSize = 4096): Promise<BigUint64Array> {
    checkPageSize('hashPages', pageSize);
    checkRange('hashPages', this.size, offset, length);
    checkAlign('hashPages', offset, BigInt(pageSize), 'offset');
    checkAlign('hashPages', length, BigInt(pageSize), 'length');
    return wrapAsync(() => this.raw.hashPages(n(offset), n(length), pageSize));
  }

  committedBytes(): bigint {
    return BigInt(wrap(() => this.raw.committedBytes()));
  }

  dataExtents(offset: bigint, length: bigint): bigint[] {
    checkRange('dataExtents', this.size, offset, length);
    const raw = this.raw;
    // An addon built before this entry point: the whole range counts as data (correct, only not faster).
    if (raw.dataExtents === undefined) return length === 0n ? [] : [offset, offset + length];
    const f = wrap(() => raw.dataExtents!(n(offset), n(length)));
    const out = new Array<bigint>(f.length);
    for (let i = 0; i < f.length; i++) out[i] = BigInt(f[i]!);
    return out;
  }

  async reserve(offset: bigint, length: bigint, keepFreeBytes = 0n): Promise<ReserveResult> {
    checkRange('reserve', this.size, offset, length);
    checkAlign('reserve', offset, 4096n, 'offset');
    checkAlign('reserve', length, 4096n, 'length');
    const raw = this.raw;
    if (raw.reserve === undefined) return 'unsupported'; // an addon built before this entry point
    return wrapAsync(() => raw.reserve!(n(offset), n(length), n(keepFreeBytes)));
  }

  async populate(offset: bigint, length: bigint): Promise<'populated' | 'unsupported'> {
    checkRange('populate', this.size, offset, length);
    checkAlign('populate', offset, 4096n, 'offset');
    checkAlign('populate', length, 4096n, 'length');
    const raw = this.raw;
    if (raw.populate === undefined) return 'unsupported'; // an addon built before this entry point
    return wrapAsync(() => raw.populate!(n(offset), n(length)));
  }

  load32(offset: bigint): number {
    this.word('load32', offset);
    return wrap(() => this.raw.load32(n(offset)));
  }

  store32(offset: bigint, value: number): void {
    this.word('store32', offset);
    wrap(() => this.raw.store32(n(offset), value));
  }

  async wait32(offset: bigint, expected: number, timeoutMs: number, opts?: { wokenOnly?: boolean }): Promise<WaitResult> {
    this.word('wait32', offset);
    return wrapAsync(() => this.raw.wait32(n(offset), expected, timeoutMs, opts?.wokenOnly === true));
  }

  wake32(offset: bigint, count?: number): void {
    this.word('wake32', offset);
    wrap(() => this.raw.wake32(n(offset), count));
  }

  close(): void {
    this.raw.close();
  }
}

function staleAddon(what: string): VgpuError {
  return new VgpuError(ErrorCode.IllegalState, `${what}: the native addon was built before this entry point existed`, {
    hint: 'rebuild it: npm run build:native',
  });
}

class AddonOps implements NativeOps {
  readonly kind = 'native' as const;
  constructor(private readonly addon: RawAddon) {}

  createArena(opts: CreateArenaOptions): SharedArena {
    // SharedArrayBuffers cannot be made over native memory (Node-API), so 'sab' arenas are the fallback's.
    if (opts.backing === 'sab') return fallbackOps.createArena(opts);
    checkArenaSize(opts.size);
    if (opts.path !== undefined) {
      if (opts.backing === 'memfd') {
        throw new VgpuError(ErrorCode.InvalidArgument, 'a memfd arena has no path', {
          hint: "omit `path`, or use backing 'file'",
        });
      }
      const path = opts.path;
      return wrap(() => new NativeArena(new this.addon.Arena('file', Number(opts.size), path), 'file', path));
    }
    if (opts.backing === 'file') {
      throw new VgpuError(ErrorCode.InvalidArgument, "a 'file' arena needs a path", {
        hint: 'pass path (e.g. /dev/shm/vgpud-<gpu>-fb)',
      });
    }
    return wrap(() => new NativeArena(new this.addon.Arena('memfd', Number(opts.size)), 'memfd', null));
  }

  openArena(path: string): SharedArena {
    return wrap(() => new NativeArena(new this.addon.Arena('open', 0, path), 'file', path));
  }

  attachSab(sab: SharedArrayBuffer): SharedArena {
    return fallbackOps.attachSab(sab);
  }

  memsetFloor(buf: Buffer, byte: number): void {
    wrap(() => this.addon.memsetFloor(buf, byte));
  }

  fillFloor(buf: Buffer, pattern: number): void {
    const f = this.addon.fillFloor;
    if (f === undefined) throw staleAddon('fillFloor');
    wrap(() => f(buf, pattern));
  }

  kernels(): KernelReport {
    const f = this.addon.kernels;
    if (f === undefined) throw staleAddon('kernels');
    return wrap(() => f());
  }

  hashBuffers(parts: readonly Uint8Array[]): bigint {
    const f = this.addon.hashBuffers;
    // A stale build without the entry: same values from the TS function (npm run build:native makes it fast).
    return f === undefined ? bufferHash(parts) : wrap(() => f(parts as Uint8Array[]));
  }

  sdNotify(state: string): boolean {
    return wrap(() => this.addon.sdNotify(state));
  }

  releaseFreeMemory(): boolean {
    const f = this.addon.releaseFreeMemory;
    // A stale build without the entry releases nothing, like the fallback (npm run build:native adds it).
    return f === undefined ? false : wrap(() => f());
  }
}

/** The folder holding binding.gyp (native/ at the package root), from the sources under tsx or from dist/ alike. */
function nativeDir(): string {
  return process.env.VGPUD_NATIVE_PATH || assetPath('native');
}

interface WarnLogger {
  warn(message: string, meta?: Record<string, unknown>): void;
}

let cached: NativeOps | undefined;
let warned = false;

/** Load the addon, or the fallback. The result is cached per process (per thread) unless `fresh`. */
export function loadNativeOps(logger?: WarnLogger, opts: { fresh?: boolean } = {}): NativeOps {
  if (cached && !opts.fresh) return cached;
  cached = pick(logger);
  return cached;
}

function pick(logger?: WarnLogger): NativeOps {
  if (process.env.VGPUD_NO_NATIVE === '1') return fallbackOps;
  const addon = loadAddon();
  if (addon instanceof Error) {
    if (!warned) {
      warned = true;
      const meta = { error: addon.message.split('\n')[0], dir: nativeDir() };
      const msg = 'native addon unavailable, using the pure-TypeScript fallback (no file arenas, no page release); ' +
        'run `npm run build:native`';
      if (logger) logger.warn(msg, meta);
      else process.emitWarning(`${msg} (${meta.error})`, { code: 'VGPUD_NO_ADDON' });
    }
    return fallbackOps;
  }
  return new AddonOps(addon);
}

/** The raw addon or the Error that stopped it loading (exported for tests that must skip without it). */
export function loadAddon(): RawAddon | Error {
  try {
    const require = createRequire(import.meta.url);
    const load = require('node-gyp-build') as (dir: string) => unknown;
    return load(nativeDir()) as RawAddon;
  } catch (err) {
    return err instanceof Error ? err : new Error(String(err));
  }
}

export { fallbackOps };
