/**
 * DEVICE_FEATURE, MIG_DATA_READ and MIG_DATA_WRITE.
 *
 * DEVICE_FEATURE checks as Linux vfio_ioctl_device_feature / vfio_check_feature (drivers/vfio/vfio_main.c):
 * argsz ≥ 8; unknown flag bits → EINVAL; GET and SET together without PROBE → EINVAL; then per feature: a method
 * the feature lacks → EINVAL; PROBE → success with nothing done; neither GET nor SET → EINVAL; argsz shorter than
 * the feature's minimum → EINVAL. Unknown features → ENOTTY (what vfio-pci answers). The reply to SET and PROBE
 * repeats the request; the reply to GET is argsz (8 + data), flags, data.
 *
 * DMA logging (features 6/7/8) is the server's: it watches the device's DMA writes (dma/dma-dirty-log.ts). The
 * migration features (1, 2) and the data stream are the device's.
 */
import { Errno, FeatureFlags, Feature, HEADER_SIZE } from '../../protocol/constants.js';
import type { InboundMessage } from '../../protocol/message-reader.js';
import { refuse } from '../../protocol/protocol-error.js';
import type { LogRange } from '../../dma/dma-dirty-log.js';
import type { Reply, SessionContext } from '../vfio-user-session.js';

/** vfio_check_feature: 'probe' (answer success), 'run', or a refusal. */
export function checkFeature(flags: number, argsz: number, supported: number, minsz: number): 'probe' | 'run' {
  if ((flags & (FeatureFlags.GET | FeatureFlags.SET) & ~supported) !== 0) throw refuse(Errno.EINVAL, 'feature does not support that method');
  if ((flags & FeatureFlags.PROBE) !== 0) return 'probe';
  if ((flags & (FeatureFlags.GET | FeatureFlags.SET)) === 0) throw refuse(Errno.EINVAL, 'DEVICE_FEATURE without GET, SET or PROBE');
  if (argsz - 8 < minsz) throw refuse(Errno.EINVAL, `DEVICE_FEATURE argsz ${argsz} leaves fewer than the ${minsz} data bytes the feature needs`);
  return 'run';
}

function getReply(flags: number, data: Buffer): Reply {
  const out = Buffer.alloc(8 + data.length);
  out.writeUInt32LE(8 + data.length, 0);
  out.writeUInt32LE(flags, 4);
  data.copy(out, 8);
  return { payload: out };
}

export async function handleFeature(ctx: SessionContext, m: InboundMessage): Promise<Reply> {
  const p = m.payload;
  if (p.length < 8) throw refuse(Errno.EINVAL, `DEVICE_FEATURE payload of ${p.length} bytes (8 needed)`);
  const argsz = p.readUInt32LE(0);
  const flags = p.readUInt32LE(4);
  if (argsz < 8) throw refuse(Errno.EINVAL, `DEVICE_FEATURE argsz ${argsz} < 8`);
  if ((flags & ~(FeatureFlags.MASK | FeatureFlags.GET | FeatureFlags.SET | FeatureFlags.PROBE)) >>> 0 !== 0) {
    throw refuse(Errno.EINVAL, `DEVICE_FEATURE flags 0x${(flags >>> 0).toString(16)} has unknown bits`);
  }
  if ((flags & FeatureFlags.PROBE) === 0 && (flags & FeatureFlags.GET) !== 0 && (flags & FeatureFlags.SET) !== 0) {
    throw refuse(Errno.EINVAL, 'DEVICE_FEATURE GET and SET together need PROBE');
  }
  const feature = flags & FeatureFlags.MASK;
  const data = p.subarray(8);
  const echo: Reply = { payload: Buffer.from(p) };
  switch (feature) {
    case Feature.DMA_LOGGING_START: {
      if (checkFeature(flags, argsz, FeatureFlags.SET, 16) === 'probe') return echo;
      if (data.length < 16) throw refuse(Errno.EINVAL, 'DMA_LOGGING_START data shorter than 16 bytes');
      const n = data.readUInt32LE(8);
      if (n > 256) throw refuse(Errno.E2BIG, `DMA_LOGGING_START with ${n} ranges (at most 256)`);
      if (data.length < 16 + 16 * n) throw refuse(Errno.EINVAL, `DMA_LOGGING_START names ${n} ranges but carries ${Math.floor((data.length - 16) / 16)}`);
      const ranges: LogRange[] = [];
      for (let i = 0; i < n; i++) ranges.push({ iova: data.readBigUInt64LE(16 + 16 * i), length: data.readBigUInt64LE(24 + 16 * i) });
      const page = ctx.dirty.start(data.readBigUInt64LE(0), ranges);
      const out = Buffer.from(p);
      out.writeBigUInt64LE(page, 8);
      return { payload: out };
    }
    case Feature.DMA_LOGGING_STOP:
      if (checkFeature(flags, argsz, FeatureFlags.SET, 0) === 'probe') return echo;
      ctx.dirty.stop();
      return echo;
    case Feature.DMA_LOGGING_REPORT: {
      if (checkFeature(flags, argsz, FeatureFlags.GET, 24) === 'probe') return echo;
      if (data.length < 24) throw refuse(Errno.EINVAL, 'DMA_LOGGING_REPORT data shorter than 24 bytes');
      const iova = data.readBigUInt64LE(0);
      const length = data.readBigUInt64LE(8);
      const page = data.readBigUInt64LE(16);
      const bitmap = ctx.dirty.report(iova, length, page, ctx.caps.maxBitmapSize);
      if (argsz < 8 + 24 + bitmap.length) {
        throw refuse(Errno.EINVAL, `DMA_LOGGING_REPORT argsz ${argsz} has no room for the ${bitmap.length}-byte bitmap`);
      }
      return getReply(flags, Buffer.concat([data.subarray(0, 24), bitmap]));
    }
    default: {
      const got = await ctx.device.feature(feature, flags, Buffer.from(data), argsz);
      if (got === null) return echo;
      if (argsz < 8 + got.length) throw refuse(Errno.EINVAL, `DEVICE_FEATURE argsz ${argsz} has no room for ${got.length} bytes of data`);
      return getReply(flags, got);
    }
  }
}

/** {u32 argsz, u32 size} → {u32 argsz, u32 size, data}; a short answer means no more data for now. */
export async function handleMigRead(ctx: SessionContext, m: InboundMessage): Promise<Reply> {
  const p = m.payload;
  if (p.length < 8) throw refuse(Errno.EINVAL, `MIG_DATA_READ payload of ${p.length} bytes (8 needed)`);
  const argsz = p.readUInt32LE(0);
  const size = p.readUInt32LE(4);
  if (argsz < 8) throw refuse(Errno.EINVAL, `MIG_DATA_READ argsz ${argsz} < 8`);
  if (size > ctx.caps.inMaxDataXfer) throw refuse(Errno.EINVAL, `MIG_DATA_READ size ${size} exceeds max_data_xfer_size ${ctx.caps.inMaxDataXfer}`);
  // The whole reply message at once (the session writes the header in place), not zeroed: every byte is written.
  // A device that can copies the data straight into it (`alloc`); one that did not gets its answer copied in.
  const at = HEADER_SIZE + 8;
  let msg: Buffer | null = null;
  const data = await ctx.device.migrationRead(Math.min(size, argsz - 8), (length) => {
    msg = Buffer.allocUnsafe(at + length);
    return msg.subarray(at);
  });
  let out: Buffer = msg ?? Buffer.alloc(0);
  if (!(out.length === at + data.length && data.buffer === out.buffer && data.byteOffset === out.byteOffset + at)) {
    out = Buffer.allocUnsafe(at + data.length);
    data.copy(out, at);
  }
  out.writeUInt32LE(8 + data.length, HEADER_SIZE);
  out.writeUInt32LE(data.length, HEADER_SIZE + 4);
  return { message: out };
}

/** {u32 argsz, u32 size, data}: `size` bytes exactly. */
export async function handleMigWrite(ctx: SessionContext, m: InboundMessage): Promise<Reply> {
  const p = m.payload;
  if (p.length < 8) throw refuse(Errno.EINVAL, `MIG_DATA_WRITE payload of ${p.length} bytes (8 needed)`);
  const size = p.readUInt32LE(4);
  if (size > ctx.caps.inMaxDataXfer) throw refuse(Errno.EINVAL, `MIG_DATA_WRITE size ${size} exceeds max_data_xfer_size ${ctx.caps.inMaxDataXfer}`);
  if (p.length - 8 !== size) throw refuse(Errno.EINVAL, `MIG_DATA_WRITE size ${size} but ${p.length - 8} data bytes`);
  // The payload is this message's own buffer (message-reader.ts): the device may keep the view, no copy needed.
  await ctx.device.migrationWrite(p.subarray(8));
  return {};
}
