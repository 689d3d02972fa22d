/**
 * A device-kept dirty log: one bit per FB page in a shared 32-bit-word bitmap. The writer (our simulated guest,
 * later the simulated GPU's MMU) marks a page AFTER its write lands; the migration side reads-and-clears words
 * (Atomics.exchange), like VFIO DMA_LOGGING_REPORT. Ordering argument: a write that completes before its bit is set
 * is either seen by the read of the pass that clears the bit, or its bit survives to the next pass; so no write is
 * lost, at worst a page is sent twice.
 *
 * The bitmap lives in a SharedArena (a SAB a worker can attach, or a file arena another process can open).
 * Atomics work on the non-shared ArrayBuffer behind a native window too (all but wait/notify).
 */
import type { SharedArena } from '../../native/native-ops.js';
import type { DirtySource } from './dirty-tracker.js';

/** Bytes of bitmap needed for `pages` pages, rounded up to whole 4 KiB pages (arena granularity). */
export function dirtyLogBytes(pages: number): bigint {
  const bytes = Math.ceil(pages / 32) * 4;
  return BigInt(Math.max(4096, Math.ceil(bytes / 4096) * 4096));
}

/** The writer's view: mark pages. Used inside the guest-writer worker. */
export class DirtyLogWriter {
  private readonly words: Int32Array;
  constructor(arena: SharedArena, offset: bigint, readonly pages: number) {
    const w = arena.window(offset, Math.ceil(pages / 32) * 4);
    this.words = new Int32Array(w.buffer, w.byteOffset, w.length / 4);
  }
  mark(page: number): void {
    Atomics.or(this.words, page >>> 5, 1 << (page & 31));
  }
}

export class DirtyLogSource implements DirtySource {
  readonly kind = 'log' as const;
  private readonly words: Int32Array;

  constructor(arena: SharedArena, offset: bigint, readonly pageCount: number, readonly pageSize = 4096) {
    const w = arena.window(offset, Math.ceil(pageCount / 32) * 4);
    this.words = new Int32Array(w.buffer, w.byteOffset, w.length / 4);
  }

  async start(): Promise<void> {
    for (let i = 0; i < this.words.length; i++) Atomics.store(this.words, i, 0);
  }

  async collect(): Promise<Uint32Array> {
    let out = new Uint32Array(1024);
    let k = 0;
    for (let i = 0; i < this.words.length; i++) {
      if (Atomics.load(this.words, i) === 0) continue;
      let v = Atomics.exchange(this.words, i, 0);
      while (v !== 0) {
        const bit = 31 - Math.clz32(v & -v);
        v &= v - 1;
        const page = i * 32 + bit;
        if (page >= this.pageCount) continue;
        if (k === out.length) { const g = new Uint32Array(out.length * 2); g.set(out); out = g; }
        out[k++] = page;
      }
    }
    return out.slice(0, k);
  }

  isDirty(page: number): boolean {
    return ((Atomics.load(this.words, page >>> 5) >>> (page & 31)) & 1) !== 0;
  }

  peekCount(): number {
    let n = 0;
    for (let i = 0; i < this.words.length; i++) {
      let v = Atomics.load(this.words, i);
      while (v !== 0) { v &= v - 1; n++; }
    }
    return n;
  }

  stop(): void {}
}
