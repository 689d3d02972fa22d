/**
 * FbRegion over one vGPU's guest FB, reached only through the contracts (FramebufferMemory.map → HostMapping), so
 * the migration code never learns which HAL is underneath.
 *
 * Fast path: when the mapping's windows are views of a SharedArrayBuffer (the Ada simulator in worker mode, any
 * SAB-backed arena), the region is rebuilt as an arena region over that SAB: page hashes and zero fills then run
 * in the native addon (multi-threaded, off the event loop), and the SAB can be handed to a guest-writer worker
 * (`arenaRef`). Otherwise windows come from the mapping, hashes from FramebufferMemory.hashPages when the backing
 * has it (hole-aware, off the loop) or else the pure-TS page hash, and zeroing from FramebufferMemory.fill.
 */
import type { FbRange, FramebufferMemory, HostMapping } from '../../core/contracts/memory.js';
import type { NativeOps } from '../../native/native-ops.js';
import { hashPagesInto } from '../../native/page-hash.js';
import { arenaRegion, type FbRegion } from './fb-region.js';
import type { ArenaRef } from './guest-writer-protocol.js';

export interface VgpuFbRegion extends FbRegion {
  /** Where a worker can attach the same bytes (SAB + base offset), or null when the backing is not shareable. */
  readonly arenaRef: { arena: ArenaRef; base: bigint } | null;
  /** Drop the host mapping. */
  close(): void;
}

const VIEW = 1n << 30n;

export function mappingRegion(memory: FramebufferMemory, range: FbRange, ops?: NativeOps): VgpuFbRegion {
  const mapping = memory.map(range);
  const probe = mapping.window(0, 8);
  if (ops !== undefined && probe.buffer instanceof SharedArrayBuffer) {
    const base = BigInt(probe.byteOffset);
    const arena = ops.attachSab(probe.buffer);
    const inner = arenaRegion(arena, base, range.size);
    return {
      ...inner,
      size: range.size,
      arenaRef: { arena: { sab: probe.buffer }, base },
      close: () => { mapping.unmap(); },
    };
  }
  return jsRegion(memory, range, mapping);
}

function jsRegion(memory: FramebufferMemory, range: FbRange, mapping: HostMapping): VgpuFbRegion {
  const views = new Map<bigint, Buffer>();
  const view = (k: bigint): Buffer => {
    let v = views.get(k);
    if (v === undefined) {
      const start = k * VIEW;
      v = mapping.window(Number(start), Number(range.size - start < VIEW ? range.size - start : VIEW));
      views.set(k, v);
    }
    return v;
  };
  return {
    size: range.size,
    arenaRef: null,
    window(offset: bigint, length: number): Buffer {
      const k = offset / VIEW;
      const rel = Number(offset - k * VIEW);
      if (BigInt(rel + length) <= VIEW && offset + BigInt(length) <= range.size) return view(k).subarray(rel, rel + length);
      return mapping.window(Number(offset), length); // bounds-checked by the mapping
    },
    // The backing's own hash when it has one (the Ada simulator in process mode: native, hole-aware), so a dirty
    // scan of a mostly unwritten FB neither blocks the loop nor commits the FB's memory.
    sparseHash: memory.hashPages !== undefined,
    async hashPages(offset: bigint, length: bigint, pageSize: number): Promise<BigUint64Array> {
      if (memory.hashPages !== undefined) return memory.hashPages(range, { offset, size: length, pageSize });
      const pages = Number(length / BigInt(pageSize));
      const out = new BigUint64Array(pages);
      const out32 = new Uint32Array(out.buffer);
      const per = Math.max(1, Math.floor((64 << 20) / pageSize));
      for (let p = 0; p < pages; p += per) {
        const n = Math.min(per, pages - p);
        const w = mapping.window(Number(offset) + p * pageSize, n * pageSize);
        hashPagesInto(new Int32Array(w.buffer, w.byteOffset, w.length / 4), 0, pageSize / 4, n, out32, p);
        await new Promise((r) => setImmediate(r)); // let the transport run between slices
      }
      return out;
    },
    async zero(offset: bigint, length: bigint): Promise<void> {
      await memory.fill(range, 0, { offset, size: length });
    },
    // The backing's scan (hole-aware in the Ada simulator) when it has one: the full pass asks it which spans are
    // zero before reading them, so never-written pages are sent as ZERO_PAGES without being allocated by the read.
    ...(memory.verify !== undefined ? {
      firstNonZero: (offset: bigint, length: bigint): Promise<bigint | null> => memory.verify!(range, 0, { offset, size: length }),
    } : {}),
    // The backing's record of what was written since the scrub (the simulator's sparse FB file), when it keeps one.
    ...(memory.writtenExtents !== undefined ? {
      writtenExtents: (offset: bigint, length: bigint): bigint[] => memory.writtenExtents!(range, { offset, size: length }),
    } : {}),
    ...(memory.prefault !== undefined ? {
      prefault: (offset: bigint, length: bigint, opts?: { keepFreeBytes?: bigint; map?: boolean }) => memory.prefault!(range, { offset, size: length, ...opts }),
    } : {}),
    close: () => { mapping.unmap(); },
  };
}
