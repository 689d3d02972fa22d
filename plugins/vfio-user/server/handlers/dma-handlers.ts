/**
 * DMA_MAP and DMA_UNMAP (vfio-user.rst). DMA_MAP: argsz ≥ 32, flags READ|WRITE, offset, address, size, and zero or
 * one descriptor (none = reach it through DMA_READ/DMA_WRITE). DMA_UNMAP: argsz ≥ 24, flags 0 (exact range) or ALL
 * (address and size 0: everything); the reply repeats the request's entry. GET_DIRTY_BITMAP belonged to the
 * removed v1 dirty-page interface (device dirty tracking is DMA_LOGGING_* now) and is refused with ENOTSUP, as the
 * DIRTY_PAGES command is.
 */
import { DMA_MAP_SIZE, DMA_UNMAP_SIZE, DmaUnmapFlags, Errno } from '../../protocol/constants.js';
import type { InboundMessage } from '../../protocol/message-reader.js';
import { refuse } from '../../protocol/protocol-error.js';
import type { Reply, SessionContext } from '../vfio-user-session.js';

export function handleDmaMap(ctx: SessionContext, m: InboundMessage): Reply {
  const p = m.payload;
  if (p.length < DMA_MAP_SIZE) throw refuse(Errno.EINVAL, `DMA_MAP payload of ${p.length} bytes (${DMA_MAP_SIZE} needed)`);
  const argsz = p.readUInt32LE(0);
  if (argsz < DMA_MAP_SIZE) throw refuse(Errno.EINVAL, `DMA_MAP argsz ${argsz} < ${DMA_MAP_SIZE}`);
  if (m.fds.length > 1) throw refuse(Errno.EINVAL, `DMA_MAP came with ${m.fds.length} descriptors (at most one)`);
  const fd = m.fds.length === 1 ? m.fds.splice(0, 1)[0] : undefined;
  ctx.dma.add(p.readBigUInt64LE(16), p.readBigUInt64LE(24), p.readUInt32LE(4), p.readBigUInt64LE(8), fd);
  return {};
}

export function handleDmaUnmap(ctx: SessionContext, m: InboundMessage): Reply {
  const p = m.payload;
  if (p.length < DMA_UNMAP_SIZE) throw refuse(Errno.EINVAL, `DMA_UNMAP payload of ${p.length} bytes (${DMA_UNMAP_SIZE} needed)`);
  const argsz = p.readUInt32LE(0);
  const flags = p.readUInt32LE(4);
  const addr = p.readBigUInt64LE(8);
  const size = p.readBigUInt64LE(16);
  if (argsz < DMA_UNMAP_SIZE) throw refuse(Errno.EINVAL, `DMA_UNMAP argsz ${argsz} < ${DMA_UNMAP_SIZE}`);
  if ((flags & DmaUnmapFlags.GET_DIRTY_BITMAP) !== 0) {
    throw refuse(Errno.ENOTSUP, 'DMA_UNMAP GET_DIRTY_BITMAP belongs to the removed dirty-page interface', 'use DEVICE_FEATURE DMA_LOGGING_REPORT');
  }
  if ((flags & ~DmaUnmapFlags.ALL) !== 0) throw refuse(Errno.EINVAL, `DMA_UNMAP flags 0x${flags.toString(16)} unknown`);
  if (flags === DmaUnmapFlags.ALL) {
    if (addr !== 0n || size !== 0n) throw refuse(Errno.EINVAL, 'DMA_UNMAP ALL needs address and size 0');
    ctx.dma.removeAll();
  } else {
    ctx.dma.remove(addr, size);
  }
  return { payload: Buffer.from(p.subarray(0, DMA_UNMAP_SIZE)) };
}
