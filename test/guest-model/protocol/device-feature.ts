/**
 * DEVICE_FEATURE (QEMU docs/interop/vfio-user.rst "VFIO_USER_DEVICE_FEATURE"; flags and feature data as Linux
 * include/uapi/linux/vfio.h defines them): migration capability and state, and device DMA logging.
 *
 * Reply rules the client checks: for SET and PROBE the reply payload is the request payload (DMA_LOGGING_START may
 * change page_size: "unless the page size was changed"); for GET the data follows the 8-byte head.
 * DMA_LOGGING_REPORT's bitmap is read as the kernel lays it out — bit n of the little-endian u64 array stands for
 * the page at iova + n·page_size (Linux drivers/vfio/iova_bitmap.c iova_bitmap_set; the formula printed in vfio.h
 * and the vfio-user spec, `bitmap[(addr - iova)/page_size] & (1ULL << (addr % 64))`, indexes words by page and is
 * read here as that flat bit array [inference]); reading it clears the log for the range (vfio.h: "During querying
 * the log is cleared for the IOVA range").
 */
import {
  DmaLoggingControl, DmaLoggingRange, DmaLoggingReport, FeatureHead, MigDeviceState, MigrationFlags,
} from '../wire/spec-structs.js';
import { Cmd, Feature, FEATURE_GET, FEATURE_PROBE, FEATURE_SET } from '../wire/spec-constants.js';
import { VfioUserProtocolError } from '../wire/errors.js';
import { isErrno } from '../wire/errors.js';
import type { VfioUserConnection } from '../wire/vfio-user-connection.js';
import { closeFds } from './device-info.js';

/** One DEVICE_FEATURE exchange; returns the reply's data (after the 8-byte head). */
export async function deviceFeature(conn: VfioUserConnection, flags: number, data: Buffer = Buffer.alloc(0), replyRoom = 0): Promise<Buffer> {
  const argsz = FeatureHead.size + Math.max(data.length, replyRoom);
  const req = Buffer.concat([FeatureHead.pack({ argsz, flags }), data]);
  const r = await conn.call(Cmd.DEVICE_FEATURE, req);
  closeFds(r.fds, 'DEVICE_FEATURE');
  if (r.payload.length < FeatureHead.size) throw new VfioUserProtocolError(`DEVICE_FEATURE reply of ${r.payload.length} bytes (needs 8)`);
  const head = FeatureHead.unpack(r.payload);
  if (head.flags !== flags) throw new VfioUserProtocolError(`DEVICE_FEATURE reply flags 0x${head.flags.toString(16)} for request 0x${flags.toString(16)}`);
  return r.payload.subarray(FeatureHead.size);
}

/** PROBE: true when the server supports the feature with the given GET/SET methods. */
export async function probeFeature(conn: VfioUserConnection, feature: number, methods = 0): Promise<boolean> {
  try {
    await deviceFeature(conn, feature | FEATURE_PROBE | methods);
    return true;
  } catch (e) {
    if (isErrno(e)) return false;
    throw e;
  }
}

/** GET feature MIGRATION: the VFIO_MIGRATION_* flags. */
export async function migrationFlags(conn: VfioUserConnection): Promise<bigint> {
  const d = await deviceFeature(conn, Feature.MIGRATION | FEATURE_GET, Buffer.alloc(0), MigrationFlags.size);
  if (d.length < MigrationFlags.size) throw new VfioUserProtocolError(`MIGRATION GET data of ${d.length} bytes (needs 8)`);
  return MigrationFlags.unpack(d).flags;
}

export async function getMigState(conn: VfioUserConnection): Promise<number> {
  const d = await deviceFeature(conn, Feature.MIG_DEVICE_STATE | FEATURE_GET, Buffer.alloc(0), MigDeviceState.size);
  if (d.length < MigDeviceState.size) throw new VfioUserProtocolError(`MIG_DEVICE_STATE GET data of ${d.length} bytes (needs 8)`);
  return MigDeviceState.unpack(d).deviceState;
}

/** SET MIG_DEVICE_STATE; "the state transition must fully complete before the reply is sent" (QEMU spec). */
export async function setMigState(conn: VfioUserConnection, state: number): Promise<void> {
  const d = await deviceFeature(conn, Feature.MIG_DEVICE_STATE | FEATURE_SET, MigDeviceState.pack({ deviceState: state }));
  if (d.length < MigDeviceState.size || MigDeviceState.unpack(d).deviceState !== state) {
    throw new VfioUserProtocolError(`MIG_DEVICE_STATE SET reply does not repeat device_state ${state}`);
  }
}

/** DMA_LOGGING_START; returns the page size the server chose. */
export async function dmaLoggingStart(conn: VfioUserConnection, pageSize: bigint, ranges: { iova: bigint; length: bigint }[]): Promise<bigint> {
  const data = Buffer.alloc(DmaLoggingControl.size + ranges.length * DmaLoggingRange.size);
  DmaLoggingControl.packInto(data, 0, { pageSize, numRanges: ranges.length });
  ranges.forEach((r, i) => DmaLoggingRange.packInto(data, DmaLoggingControl.size + i * DmaLoggingRange.size, r));
  const d = await deviceFeature(conn, Feature.DMA_LOGGING_START | FEATURE_SET, data);
  if (d.length !== data.length) throw new VfioUserProtocolError(`DMA_LOGGING_START reply data of ${d.length} bytes for a ${data.length}-byte request`);
  if (!d.subarray(8).equals(data.subarray(8))) throw new VfioUserProtocolError('DMA_LOGGING_START reply changes more than page_size');
  return DmaLoggingControl.unpack(d).pageSize;
}

export async function dmaLoggingStop(conn: VfioUserConnection): Promise<void> {
  await deviceFeature(conn, Feature.DMA_LOGGING_STOP | FEATURE_SET);
}

/** DMA_LOGGING_REPORT for [iova, iova+length): the indexes of the dirty pages (page n = iova + n·pageSize). */
export async function dmaLoggingReport(conn: VfioUserConnection, iova: bigint, length: bigint, pageSize: bigint): Promise<number[]> {
  const pages = Number((length + pageSize - 1n) / pageSize);
  const bitmapBytes = Math.ceil(pages / 64) * 8;
  const req = DmaLoggingReport.pack({ iova, length, pageSize });
  const d = await deviceFeature(conn, Feature.DMA_LOGGING_REPORT | FEATURE_GET, req, DmaLoggingReport.size + bitmapBytes);
  if (d.length < DmaLoggingReport.size + bitmapBytes) {
    throw new VfioUserProtocolError(`DMA_LOGGING_REPORT reply data of ${d.length} bytes (needs ${DmaLoggingReport.size} + ${bitmapBytes} for ${pages} pages)`);
  }
  const echo = DmaLoggingReport.unpack(d);
  if (echo.iova !== iova || echo.length !== length || echo.pageSize !== pageSize) {
    throw new VfioUserProtocolError('DMA_LOGGING_REPORT reply does not repeat iova/length/page_size');
  }
  const bitmap = d.subarray(DmaLoggingReport.size, DmaLoggingReport.size + bitmapBytes);
  const dirty: number[] = [];
  for (let n = 0; n < bitmapBytes * 8; n++) {
    const word = bitmap.readBigUInt64LE(Math.floor(n / 64) * 8);
    if ((word >> BigInt(n % 64)) & 1n) {
      if (n >= pages) throw new VfioUserProtocolError(`DMA_LOGGING_REPORT sets bit ${n}, outside the ${pages} pages asked for ("bits outside of the requested range must be zero")`);
      dirty.push(n);
    }
  }
  return dirty;
}
