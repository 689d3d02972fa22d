/**
 * Device dirty tracking for migration (VFIO_DEVICE_FEATURE_DMA_LOGGING_START/STOP/REPORT, vfio.h and vfio-user.rst):
 * while logging runs, every page the DEVICE writes through DMA is remembered; REPORT returns the pages of a range as
 * a bitmap and clears them (read-and-clear, as the kernel's log_read_and_clear does).
 *
 * Checks as Linux drivers/vfio/vfio_main.c and the spec: page_size a power of two ≥ 4 KiB (EINVAL); ranges aligned
 * to it and not overlapping (EINVAL); iova + length not wrapping (EOVERFLOW); at most 256 ranges (E2BIG, the
 * kernel's LOG_MAX_RANGES); num_ranges 0 logs every write (vfio-user.rst — the kernel refuses 0, the protocol does
 * not); REPORT without START is EINVAL; a second START while logging runs is EBUSY [simulator choice: the uAPI
 * leaves it to the driver]. Bitmap bits: bit n of the u64 array = page (iova + n·page_size).
 */
import { Errno } from '../protocol/constants.js';
import { refuse } from '../protocol/protocol-error.js';

export const LOG_MAX_RANGES = 256;
const U64_MAX = (1n << 64n) - 1n;

export interface LogRange {
  iova: bigint;
  length: bigint;
}

function isPow2(n: bigint): boolean {
  return n > 0n && (n & (n - 1n)) === 0n;
}

export class DmaDirtyLog {
  private active: { pageSize: bigint; ranges: LogRange[] } | null = null;
  /** Dirty page numbers (IOVA / pageSize). */
  private readonly dirty = new Set<bigint>();

  get running(): boolean {
    return this.active !== null;
  }

  get pageSize(): bigint | null {
    return this.active?.pageSize ?? null;
  }

  /** START. Returns the page size the log uses (the hint, which we always honour). */
  start(pageSize: bigint, ranges: LogRange[]): bigint {
    if (this.active !== null) throw refuse(Errno.EBUSY, 'DMA logging is already running', 'stop it first (DMA_LOGGING_STOP)');
    if (pageSize < 4096n || !isPow2(pageSize)) throw refuse(Errno.EINVAL, `DMA logging page size ${pageSize} is not a power of two ≥ 4096`);
    if (ranges.length > LOG_MAX_RANGES) throw refuse(Errno.E2BIG, `DMA logging asks for ${ranges.length} ranges (at most ${LOG_MAX_RANGES})`);
    const sorted = [...ranges].sort((a, b) => (a.iova < b.iova ? -1 : a.iova > b.iova ? 1 : 0));
    for (const r of sorted) {
      if (r.iova % pageSize !== 0n || r.length % pageSize !== 0n) {
        throw refuse(Errno.EINVAL, `DMA logging range [0x${r.iova.toString(16)}, +0x${r.length.toString(16)}) is not aligned to ${pageSize}`);
      }
      if (r.length > U64_MAX - r.iova) throw refuse(Errno.EOVERFLOW, `DMA logging range at 0x${r.iova.toString(16)} wraps the address space`);
    }
    for (let i = 1; i < sorted.length; i++) {
      if (sorted[i]!.iova < sorted[i - 1]!.iova + sorted[i - 1]!.length) throw refuse(Errno.EINVAL, 'DMA logging ranges overlap');
    }
    this.dirty.clear();
    this.active = { pageSize, ranges: sorted };
    return pageSize;
  }

  stop(): void {
    this.active = null;
    this.dirty.clear();
  }

  /** The device wrote [iova, iova+length). */
  mark(iova: bigint, length: number): void {
    const a = this.active;
    if (a === null || length <= 0) return;
    const end = iova + BigInt(length);
    if (a.ranges.length > 0 && !a.ranges.some((r) => iova < r.iova + r.length && r.iova < end)) return;
    for (let p = iova / a.pageSize; p * a.pageSize < end; p++) this.dirty.add(p);
  }

  /** REPORT: the bitmap (u64 words, little-endian) of [iova, iova+length) at `pageSize`, and clear those pages. */
  report(iova: bigint, length: bigint, pageSize: bigint, maxBitmapBytes: number): Buffer {
    const a = this.active;
    if (a === null) throw refuse(Errno.EINVAL, 'DMA logging report without DMA_LOGGING_START');
    if (pageSize < 4096n || !isPow2(pageSize)) throw refuse(Errno.EINVAL, `report page size ${pageSize} is not a power of two ≥ 4096`);
    if (length > U64_MAX - iova) throw refuse(Errno.EOVERFLOW, `report range at 0x${iova.toString(16)} wraps the address space`);
    const bits = (length + pageSize - 1n) / pageSize;
    const bytes = ((bits + 63n) / 64n) * 8n;
    if (bytes > BigInt(maxBitmapBytes)) {
      throw refuse(Errno.E2BIG, `a report of ${length} bytes at ${pageSize}-byte pages needs a ${bytes}-byte bitmap (limit ${maxBitmapBytes})`,
        'ask for a shorter range per report');
    }
    const out = Buffer.alloc(Number(bytes));
    const end = iova + length;
    for (const p of [...this.dirty]) {
      const lo = p * a.pageSize;
      const hi = lo + a.pageSize;
      if (hi <= iova || lo >= end) continue;
      this.dirty.delete(p);
      // A log page maps onto every report page it overlaps (report pages may be smaller or larger than the log's).
      const first = (lo > iova ? lo - iova : 0n) / pageSize;
      const last = ((hi < end ? hi : end) - iova - 1n) / pageSize;
      for (let b = first; b <= last; b++) {
        const byte = Number(b / 8n);
        out[byte] = out[byte]! | (1 << Number(b % 8n));
      }
    }
    return out;
  }
}
