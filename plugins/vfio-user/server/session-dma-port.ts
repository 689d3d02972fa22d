/**
 * The device's way into guest memory: IOVA accesses resolved through the client's DMA map. A range the client
 * mapped with a descriptor is copied straight through our mapping of it; a range mapped without one goes out as
 * DMA_READ / DMA_WRITE messages to the client, split at the client's max_data_xfer_size. Every byte the device
 * writes is marked in the dirty log (DMA_LOGGING_REPORT tells the VMM which pages to resend in a migration).
 *
 * DMA_READ/DMA_WRITE payload layout is the spec's (vfio-user.rst): u64 address, u64 count, data. QEMU's client
 * declares it as u64 offset, u32 count, data (hw/vfio-user/protocol.h VFIOUserDMARW), which places the data 4
 * bytes earlier; we follow the spec and libvfio-user (include/vfio-user.h vfio_user_dma_region_access), and
 * docs/reference/vfio-user.md records the difference.
 */
import { Command, Errno } from '../protocol/constants.js';
import type { InboundMessage } from '../protocol/message-reader.js';
import { refuse } from '../protocol/protocol-error.js';
import type { DmaDirtyLog } from '../dma/dma-dirty-log.js';
import type { DmaMapTable, DmaSegment } from '../dma/dma-map-table.js';
import type { DmaPort } from './vfio-user-device.js';

const WINDOW = 1 << 30;

export class SessionDmaPort implements DmaPort {
  constructor(
    private readonly table: DmaMapTable,
    private readonly dirty: DmaDirtyLog,
    private readonly counters: { dmaBytesRead: number; dmaBytesWritten: number },
    private readonly maxXfer: () => number,
    private readonly request: (command: number, payload: Buffer) => Promise<InboundMessage>,
  ) {}

  async read(iova: bigint, length: number): Promise<Buffer> {
    const out = Buffer.alloc(length);
    let at = 0;
    for (const seg of this.table.translate(iova, length, false)) {
      if (seg.region.map !== undefined) copyOut(seg, out, at);
      else await this.viaMessages(Command.DMA_READ, seg.region.iova + seg.offset, out.subarray(at, at + seg.length));
      at += seg.length;
    }
    this.counters.dmaBytesRead += length;
    return out;
  }

  async write(iova: bigint, data: Uint8Array): Promise<void> {
    let at = 0;
    for (const seg of this.table.translate(iova, data.length, true)) {
      if (seg.region.map !== undefined) copyIn(seg, data, at);
      else await this.viaMessages(Command.DMA_WRITE, seg.region.iova + seg.offset, Buffer.from(data.buffer, data.byteOffset + at, seg.length));
      at += seg.length;
    }
    this.dirty.mark(iova, data.length);
    this.counters.dmaBytesWritten += data.length;
  }

  /** DMA_READ fills `buf`; DMA_WRITE sends it; in chunks of the client's max_data_xfer_size. */
  private async viaMessages(command: number, iova: bigint, buf: Buffer): Promise<void> {
    const chunk = Math.max(1, this.maxXfer());
    for (let off = 0; off < buf.length; off += chunk) {
      const n = Math.min(chunk, buf.length - off);
      const addr = iova + BigInt(off);
      const head = Buffer.alloc(16);
      head.writeBigUInt64LE(addr, 0);
      head.writeBigUInt64LE(BigInt(n), 8);
      if (command === Command.DMA_READ) {
        const r = await this.request(command, head);
        if (r.payload.length < 16 + n || r.payload.readBigUInt64LE(8) !== BigInt(n)) {
          throw refuse(Errno.EIO, `the client's DMA_READ reply has ${r.payload.length - 16} data bytes, not the ${n} asked for`);
        }
        r.payload.copy(buf, off, 16, 16 + n);
      } else {
        await this.request(command, Buffer.concat([head, buf.subarray(off, off + n)]));
      }
    }
  }
}

function copyOut(seg: DmaSegment, out: Buffer, at: number): void {
  for (let done = 0; done < seg.length;) {
    const n = Math.min(WINDOW, seg.length - done);
    seg.region.map!.window(Number(seg.offset) + done, n).copy(out, at + done);
    done += n;
  }
}

function copyIn(seg: DmaSegment, data: Uint8Array, at: number): void {
  for (let done = 0; done < seg.length;) {
    const n = Math.min(WINDOW, seg.length - done);
    seg.region.map!.window(Number(seg.offset) + done, n).set(data.subarray(at + done, at + done + n));
    done += n;
  }
}
