/**
 * Guest RAM as a VMM backs it for vfio-user: a shared file the VMM maps itself and hands to the server on DMA_MAP
 * (QEMU with `-object memory-backend-file,share=on` does the same; the spec: "Actual direct memory access of
 * client memory from the server is possible if the client provides file descriptors the server can mmap()").
 * The file is sparse, so a guest of a few MiB costs only the pages touched.
 */
import { closeSync, openSync, ftruncateSync, rmSync } from 'node:fs';
import { loadFdOps, type FdMap } from '../wire/fd-ops.js';

export class GuestMemory {
  private constructor(
    readonly path: string,
    /** Descriptor sent on DMA_MAP (kept open while the guest lives). */
    readonly fd: number,
    private readonly map: FdMap,
    /** IOVA of byte 0 (what the guest driver writes into device registers). */
    readonly iova: bigint,
    readonly size: number,
  ) {}

  static create(path: string, size: number, iova: bigint): GuestMemory {
    const h = openSync(path, 'w+', 0o600);
    try {
      ftruncateSync(h, size);
    } finally {
      closeSync(h);
    }
    const ops = loadFdOps();
    const fd = ops.openFile(path, true);
    try {
      return new GuestMemory(path, fd, ops.mapFd(fd, 0, size, true), iova, size);
    } catch (e) {
      ops.closeFd(fd);
      throw e;
    }
  }

  /** Bytes [offset, offset+length) of guest RAM (offset from the RAM's start, not an IOVA). */
  view(offset: number, length: number): Buffer {
    if (offset < 0 || offset + length > this.size) throw new RangeError(`guest RAM [${offset}, +${length}) outside ${this.size} bytes`);
    return this.map.window(offset, length);
  }

  iovaOf(offset: number): bigint {
    return this.iova + BigInt(offset);
  }

  close(removeFile = true): void {
    this.map.close();
    loadFdOps().closeFd(this.fd);
    if (removeFile) rmSync(this.path, { force: true });
  }
}
