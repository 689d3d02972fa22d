/**
 * Trapped region accesses: REGION_READ / REGION_WRITE (QEMU docs/interop/vfio-user.rst). A transfer larger than
 * the server's max_data_xfer_size is split, because "the count field must not exceed the value of
 * max_data_xfer_size of the peer" (spec, "Read and Write Operations"). Each reply must repeat offset, region and
 * count; a read reply then carries exactly count bytes.
 */
import { RegionAccess, WriteMultiHead, WriteMultiOne } from '../wire/spec-structs.js';
import { Cmd } from '../wire/spec-constants.js';
import { VfioUserProtocolError } from '../wire/errors.js';
import type { VfioUserConnection } from '../wire/vfio-user-connection.js';
import { closeFds } from './device-info.js';

export interface XferLimit {
  /** The server's max_data_xfer_size. */
  maxDataXferSize: number;
}

export async function regionRead(conn: VfioUserConnection, lim: XferLimit, region: number, offset: bigint, count: number): Promise<Buffer> {
  const out = Buffer.alloc(count);
  for (let done = 0; done < count;) {
    const n = Math.min(count - done, lim.maxDataXferSize);
    const at = offset + BigInt(done);
    const r = await conn.call(Cmd.REGION_READ, RegionAccess.pack({ offset: at, region, count: n }));
    closeFds(r.fds, 'REGION_READ');
    if (r.payload.length !== RegionAccess.size + n) {
      throw new VfioUserProtocolError(`REGION_READ(region ${region}, 0x${at.toString(16)}, ${n}) reply of ${r.payload.length} bytes (expected ${RegionAccess.size + n})`);
    }
    checkEcho('REGION_READ', RegionAccess.unpack(r.payload), at, region, n);
    r.payload.copy(out, done, RegionAccess.size);
    done += n;
  }
  return out;
}

export async function regionWrite(conn: VfioUserConnection, lim: XferLimit, region: number, offset: bigint, data: Buffer): Promise<void> {
  let done = 0;
  do {
    const n = Math.min(data.length - done, lim.maxDataXferSize);
    const at = offset + BigInt(done);
    const head = RegionAccess.pack({ offset: at, region, count: n });
    const r = await conn.call(Cmd.REGION_WRITE, Buffer.concat([head, data.subarray(done, done + n)]));
    closeFds(r.fds, 'REGION_WRITE');
    if (r.payload.length !== RegionAccess.size) {
      throw new VfioUserProtocolError(`REGION_WRITE(region ${region}, 0x${at.toString(16)}, ${n}) reply of ${r.payload.length} bytes (expected 16)`);
    }
    checkEcho('REGION_WRITE', RegionAccess.unpack(r.payload), at, region, n);
    done += n;
  } while (done < data.length);
}

/**
 * REGION_WRITE_MULTI: several writes of at most 8 bytes in one message; the reply's wr_cnt counts those done
 * (QEMU spec). Only when both sides agreed on write_multiple.
 */
export async function regionWriteMulti(conn: VfioUserConnection, writes: { region: number; offset: bigint; data: Buffer }[]): Promise<bigint> {
  const b = Buffer.alloc(WriteMultiHead.size + writes.length * WriteMultiOne.size);
  WriteMultiHead.packInto(b, 0, { wrCnt: BigInt(writes.length) });
  writes.forEach((w, i) => {
    if (w.data.length > 8) throw new RangeError('REGION_WRITE_MULTI carries at most 8 bytes per write');
    const at = WriteMultiHead.size + i * WriteMultiOne.size;
    WriteMultiOne.packInto(b, at, { offset: w.offset, region: w.region, count: w.data.length });
    w.data.copy(b, at + 16);
  });
  const r = await conn.call(Cmd.REGION_WRITE_MULTI, b);
  closeFds(r.fds, 'REGION_WRITE_MULTI');
  if (r.payload.length < WriteMultiHead.size) throw new VfioUserProtocolError(`REGION_WRITE_MULTI reply of ${r.payload.length} bytes (needs 8)`);
  return WriteMultiHead.unpack(r.payload).wrCnt;
}

function checkEcho(what: string, got: { offset: bigint; region: number; count: number }, offset: bigint, region: number, count: number): void {
  if (got.offset !== offset || got.region !== region || got.count !== count) {
    throw new VfioUserProtocolError(`${what} reply repeats (0x${got.offset.toString(16)}, ${got.region}, ${got.count}) for (0x${offset.toString(16)}, ${region}, ${count})`);
  }
}
