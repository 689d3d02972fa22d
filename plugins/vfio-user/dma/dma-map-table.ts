/**
 * The client's DMA map (vfio-user.rst "VFIO_USER_DMA_MAP"/"UNMAP"): which IOVA ranges the device may reach, and
 * how — through a mapping of the descriptor the client sent (direct), or, for a region sent without one, through
 * DMA_READ/DMA_WRITE messages to the client. This is the server side of an IOMMU: the device only ever addresses
 * IOVAs, and an IOVA outside every mapped range, or a write to a read-only range, is a fault (EFAULT).
 *
 * Errors follow the spec and libvfio-user lib/dma.c: a map over an existing range is EEXIST; flags other than
 * READ/WRITE, a zero size, a range that wraps or is not page aligned are EINVAL; more than the negotiated
 * max_dma_maps is ENOSPC; an unmap must name a mapped range exactly, else ENOENT. On any failure the descriptor
 * that came with the request is closed and the table is unchanged.
 */
import type { FdMap, FdOps } from '../../../native/fd-ops.js';
import { DmaMapFlags, Errno } from '../protocol/constants.js';
import { refuse } from '../protocol/protocol-error.js';

export interface DmaRegion {
  iova: bigint;
  size: bigint;
  /** DmaMapFlags bits. */
  prot: number;
  /** The mapping of the client's descriptor; absent for a region reached through DMA_READ/DMA_WRITE messages. */
  map?: FdMap;
  /** Offset of the region in the client's descriptor (reported, not used once mapped). */
  fdOffset: bigint;
}

export interface DmaSegment {
  region: DmaRegion;
  /** Offset of the access in the region. */
  offset: bigint;
  length: number;
}

const U64_MAX = (1n << 64n) - 1n;

export class DmaMapTable {
  /** Sorted by iova, non-overlapping. */
  private regions: DmaRegion[] = [];

  constructor(private readonly ops: FdOps, private readonly limits: { maxMaps: () => number; pageSize: () => number }) {}

  get count(): number {
    return this.regions.length;
  }

  list(): readonly DmaRegion[] {
    return this.regions;
  }

  /** Add a region. `fd` (if any) is consumed: mapped then closed, or closed on refusal. */
  add(iova: bigint, size: bigint, flags: number, fdOffset: bigint, fd: number | undefined): DmaRegion {
    try {
      if ((flags & ~(DmaMapFlags.READ | DmaMapFlags.WRITE)) !== 0) {
        throw refuse(Errno.EINVAL, `DMA_MAP flags 0x${flags.toString(16)} has bits other than READ|WRITE`);
      }
      if (size === 0n) throw refuse(Errno.EINVAL, 'DMA_MAP of size 0');
      if (iova > U64_MAX - size + 1n) throw refuse(Errno.EINVAL, `DMA_MAP [0x${iova.toString(16)}, +0x${size.toString(16)}) wraps the address space`);
      const page = BigInt(this.limits.pageSize());
      if (iova % page !== 0n || size % page !== 0n) {
        throw refuse(Errno.EINVAL, `DMA_MAP [0x${iova.toString(16)}, +0x${size.toString(16)}) is not aligned to the ${page}-byte page`);
      }
      const end = iova + size;
      const clash = this.regions.find((r) => iova < r.iova + r.size && r.iova < end);
      if (clash !== undefined) {
        throw refuse(Errno.EEXIST, `DMA_MAP [0x${iova.toString(16)}, 0x${end.toString(16)}) overlaps the mapped [0x${clash.iova.toString(16)}, 0x${(clash.iova + clash.size).toString(16)})`,
          'unmap the old range first');
      }
      if (this.regions.length >= this.limits.maxMaps()) {
        throw refuse(Errno.ENOSPC, `DMA_MAP would exceed the negotiated max_dma_maps (${this.limits.maxMaps()})`, 'unmap ranges no longer used');
      }
      const region: DmaRegion = { iova, size, prot: flags, fdOffset };
      if (fd !== undefined) {
        if (size > BigInt(Number.MAX_SAFE_INTEGER) || fdOffset > BigInt(Number.MAX_SAFE_INTEGER)) {
          throw refuse(Errno.EINVAL, 'DMA_MAP region or offset beyond 2^53 bytes');
        }
        try {
          region.map = this.ops.mapFd(fd, Number(fdOffset), Number(size), (flags & DmaMapFlags.WRITE) !== 0);
        } catch (e) {
          throw refuse(Errno.EINVAL, `DMA_MAP: the descriptor cannot be mapped at offset 0x${fdOffset.toString(16)}: ${(e as Error).message}`,
            'send a mappable descriptor (a memfd or file backing guest RAM), or none to use DMA_READ/DMA_WRITE');
        }
      }
      this.regions.push(region);
      this.regions.sort((a, b) => (a.iova < b.iova ? -1 : a.iova > b.iova ? 1 : 0));
      return region;
    } finally {
      if (fd !== undefined) this.closeQuietly(fd);
    }
  }

  /** Remove the region that is exactly [iova, iova+size). */
  remove(iova: bigint, size: bigint): DmaRegion {
    const i = this.regions.findIndex((r) => r.iova === iova && r.size === size);
    if (i < 0) {
      throw refuse(Errno.ENOENT, `DMA_UNMAP [0x${iova.toString(16)}, +0x${size.toString(16)}) matches no mapped range`,
        'unmap exactly a range that was mapped');
    }
    const [r] = this.regions.splice(i, 1);
    r!.map?.close();
    return r!;
  }

  removeAll(): number {
    const n = this.regions.length;
    for (const r of this.regions.splice(0)) r.map?.close();
    return n;
  }

  /**
   * The segments that make up [iova, iova+length), which may cross adjacent regions; EFAULT when a byte of it is
   * unmapped or the access is not allowed (write to a read-only region, read from a write-only one).
   */
  translate(iova: bigint, length: number, write: boolean): DmaSegment[] {
    const out: DmaSegment[] = [];
    let at = iova;
    let left = BigInt(length);
    const need = write ? DmaMapFlags.WRITE : DmaMapFlags.READ;
    while (left > 0n) {
      const r = this.regions.find((x) => at >= x.iova && at < x.iova + x.size);
      if (r === undefined) throw refuse(Errno.EFAULT, `DMA ${write ? 'write' : 'read'} at IOVA 0x${at.toString(16)} is outside every mapped range`);
      if ((r.prot & need) === 0) throw refuse(Errno.EFAULT, `DMA ${write ? 'write' : 'read'} at IOVA 0x${at.toString(16)}: the range is not ${write ? 'writable' : 'readable'}`);
      const n = (r.iova + r.size - at) < left ? r.iova + r.size - at : left;
      out.push({ region: r, offset: at - r.iova, length: Number(n) });
      at += n;
      left -= n;
    }
    return out;
  }

  private closeQuietly(fd: number): void {
    try {
      this.ops.closeFd(fd);
    } catch {
      // already closed
    }
  }
}
