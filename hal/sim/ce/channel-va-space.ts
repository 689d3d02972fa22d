/**
 * The GPU virtual address space of one simulated channel: a flat map from GPU VA to FB ranges
 * (docs/reference/core-driver-interface.md op 21, channel_map_mem). No page tables: each mapping is one contiguous
 * run, placed at the next free VA with the alignment of its page size (2 MiB for huge pages, 64 KiB otherwise),
 * starting above 4 GiB so a VA is never mistaken for an FB offset.
 */
import { ErrorCode, VgpuError } from '../../../core/contracts/exceptions.js';
import type { ChannelMapOptions } from '../../../core/contracts/channels.js';
import type { FbRange } from '../../../core/contracts/memory.js';

export interface VaMapping {
  readonly va: bigint;
  readonly range: FbRange;
  /** Offset inside the range and length of the mapped part. */
  readonly offset: bigint;
  readonly size: bigint;
  readonly hugePage: boolean;
  readonly compressibleDisable: boolean;
}

/** An access outside every mapping: on hardware an MMU fault, which kills the channel's work (RC). */
export class CeMmuFault extends Error {
  override readonly name = 'CeMmuFault';
}

const VA_BASE = 1n << 32n;
const HUGE_PAGE = 2n << 20n;
const BIG_PAGE = 64n << 10n;

export class ChannelVaSpace {
  private readonly maps = new Map<bigint, VaMapping>();
  private nextVa = VA_BASE;

  constructor(private readonly label: string) {}

  get size(): number {
    return this.maps.size;
  }

  list(): VaMapping[] {
    return [...this.maps.values()];
  }

  /** Map `[offset, offset+size)` of `range`; returns the GPU VA. The caller has checked that the range is live. */
  map(range: FbRange, opts: ChannelMapOptions = {}): bigint {
    const offset = opts.offset ?? 0n;
    const size = opts.size ?? range.size - offset;
    if (offset < 0n || size <= 0n || offset + size > range.size) {
      throw new VgpuError(ErrorCode.InvalidArgument, `${this.label}: mapping [${offset}, ${offset + size}) is outside FB range #${range.id} of ${range.size} bytes`, {
        hint: 'keep offset and size inside the range',
        details: { id: range.id, offset: String(offset), size: String(size) },
      });
    }
    const hugePage = opts.hugePage === true;
    const align = hugePage ? HUGE_PAGE : BIG_PAGE;
    const va = ((this.nextVa + align - 1n) / align) * align;
    // VAs are never reused: a stale VA from an earlier mapping then faults instead of hitting someone else's memory.
    this.nextVa = va + size;
    this.maps.set(va, { va, range, offset, size, hugePage, compressibleDisable: opts.compressibleDisable === true });
    return va;
  }

  unmap(va: bigint): void {
    if (!this.maps.delete(va)) {
      throw new VgpuError(ErrorCode.NotFound, `${this.label}: no mapping at GPU VA 0x${va.toString(16)}`, {
        hint: 'unmap the VA mapMemory returned, once',
        details: { gpuVa: `0x${va.toString(16)}` },
      });
    }
  }

  /** Drop every mapping of `range` (it is being freed). Returns how many went. */
  unmapRange(rangeId: number): number {
    let n = 0;
    for (const [va, m] of this.maps) if (m.range.id === rangeId) { this.maps.delete(va); n++; }
    return n;
  }

  clear(): void {
    this.maps.clear();
  }

  /** FB offset of `[va, va+length)`, which must lie inside one mapping; else a CeMmuFault. */
  translate(va: bigint, length: bigint): bigint {
    for (const m of this.maps.values()) {
      if (va >= m.va && va + length <= m.va + m.size) return m.range.offset + m.offset + (va - m.va);
    }
    throw new CeMmuFault(`GPU VA [0x${va.toString(16)}, +${length}) is not mapped in ${this.label} (MMU fault)`);
  }
}
