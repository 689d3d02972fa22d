/**
 * The migration data stream over the socket: MIG_DATA_READ from a source in PRE_COPY or STOP_COPY, MIG_DATA_WRITE
 * to a destination in RESUMING (QEMU docs/interop/vfio-user.rst). A read reply with `size` below what was asked
 * means "no more migration data to read" for now. Requests stay within the server's max_data_xfer_size; argsz
 * counts the 8-byte head plus the data (libvfio-user lib/migration.c handle_mig_data_read/write refuse a smaller
 * argsz).
 */
import { MigData } from '../wire/spec-structs.js';
import { Cmd } from '../wire/spec-constants.js';
import { VfioUserProtocolError } from '../wire/errors.js';
import type { VfioUserConnection } from '../wire/vfio-user-connection.js';
import { closeFds } from './device-info.js';

export async function migDataRead(conn: VfioUserConnection, size: number): Promise<Buffer> {
  const r = await conn.call(Cmd.MIG_DATA_READ, MigData.pack({ argsz: MigData.size + size, size }));
  closeFds(r.fds, 'MIG_DATA_READ');
  if (r.payload.length < MigData.size) throw new VfioUserProtocolError(`MIG_DATA_READ reply of ${r.payload.length} bytes (needs 8)`);
  const head = MigData.unpack(r.payload);
  const data = r.payload.subarray(MigData.size);
  if (head.size !== data.length) throw new VfioUserProtocolError(`MIG_DATA_READ reply says size ${head.size} with ${data.length} data bytes`);
  if (head.size > size) throw new VfioUserProtocolError(`MIG_DATA_READ reply of ${head.size} bytes for ${size} asked`);
  if (head.argsz !== MigData.size + head.size) throw new VfioUserProtocolError(`MIG_DATA_READ reply argsz ${head.argsz} (spec: the structure plus the data, ${MigData.size + head.size})`);
  return data;
}

export async function migDataWrite(conn: VfioUserConnection, lim: { maxDataXferSize: number }, data: Buffer): Promise<void> {
  for (let done = 0; done < data.length;) {
    const n = Math.min(lim.maxDataXferSize, data.length - done);
    const r = await conn.call(Cmd.MIG_DATA_WRITE, Buffer.concat([MigData.pack({ argsz: MigData.size + n, size: n }), data.subarray(done, done + n)]));
    closeFds(r.fds, 'MIG_DATA_WRITE');
    if (r.payload.length !== 0) throw new VfioUserProtocolError(`MIG_DATA_WRITE reply has ${r.payload.length} payload bytes (the spec says none)`);
    done += n;
  }
}

/** Read one pass: until a reply shorter than asked. Returns the chunks in order. */
export async function migDataReadPass(conn: VfioUserConnection, chunk: number): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for (;;) {
    const d = await migDataRead(conn, chunk);
    if (d.length > 0) out.push(d);
    if (d.length < chunk) return out;
  }
}
