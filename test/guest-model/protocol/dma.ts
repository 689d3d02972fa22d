/**
 * Guest memory as the server reaches it (QEMU docs/interop/vfio-user.rst "VFIO_USER_DMA_MAP/UNMAP",
 * "VFIO_USER_DMA_READ/WRITE").
 *
 * A region mapped with a descriptor is mapped by the server itself; one mapped without a descriptor is reached by
 * the server sending DMA_READ / DMA_WRITE commands, which this module answers from the client's own memory. The
 * client checks what the spec asks of the server there: the address inside a region the client mapped, the count
 * within the client's max_data_xfer_size, a DMA_WRITE's data exactly count bytes.
 */
import { DmaAccess, DmaMap, DmaUnmap } from '../wire/spec-structs.js';
import { Cmd, DMA_MAP_READ, DMA_MAP_WRITE, Errno } from '../wire/spec-constants.js';
import { VfioUserProtocolError } from '../wire/errors.js';
import type { CommandAnswer, VfioUserConnection, VfioUserMessage } from '../wire/vfio-user-connection.js';
import { closeFds } from './device-info.js';

export interface DmaMapRequest {
  iova: bigint;
  size: bigint;
  /** DMA_MAP_READ | DMA_MAP_WRITE (default both). */
  flags?: number;
  /** With a descriptor: the server maps [fileOffset, fileOffset + size) of it. */
  fd?: number;
  fileOffset?: bigint;
}

export async function dmaMap(conn: VfioUserConnection, m: DmaMapRequest): Promise<void> {
  const payload = DmaMap.pack({
    argsz: DmaMap.size, flags: m.flags ?? (DMA_MAP_READ | DMA_MAP_WRITE), offset: m.fd === undefined ? 0n : (m.fileOffset ?? 0n), addr: m.iova, size: m.size,
  });
  const r = await conn.call(Cmd.DMA_MAP, payload, m.fd === undefined ? [] : [m.fd]);
  closeFds(r.fds, 'DMA_MAP');
  if (r.payload.length !== 0) throw new VfioUserProtocolError(`DMA_MAP reply has ${r.payload.length} payload bytes (the spec says none)`);
}

/** DMA_UNMAP; the reply must repeat the entry (QEMU spec: "The server responds with the original DMA entry"). */
export async function dmaUnmap(conn: VfioUserConnection, iova: bigint, size: bigint, flags = 0): Promise<void> {
  const req = { argsz: DmaUnmap.size, flags, addr: iova, size };
  const r = await conn.call(Cmd.DMA_UNMAP, DmaUnmap.pack(req));
  closeFds(r.fds, 'DMA_UNMAP');
  if (r.payload.length < DmaUnmap.size) throw new VfioUserProtocolError(`DMA_UNMAP reply of ${r.payload.length} bytes (the spec repeats the 24-byte entry)`);
  const got = DmaUnmap.unpack(r.payload);
  if (got.addr !== iova || got.size !== size) {
    throw new VfioUserProtocolError(`DMA_UNMAP reply entry (0x${got.addr.toString(16)}, ${got.size}) is not the request's (0x${iova.toString(16)}, ${size})`);
  }
}

/** Client memory behind descriptor-less maps, served to the server's DMA_READ / DMA_WRITE. */
export class SocketDmaSpace {
  private readonly regions: { iova: bigint; mem: Buffer; writable: boolean }[] = [];
  /** Largest count the server asked for in one DMA_READ/WRITE, and the rules it broke. */
  maxCountSeen = 0;
  readonly violations: string[] = [];
  /** Bytes the server wrote, per region start, for tests that count them. */
  bytesWritten = 0;

  constructor(private readonly clientMaxDataXfer: number) {}

  add(iova: bigint, mem: Buffer, writable = true): void {
    this.regions.push({ iova, mem, writable });
  }

  remove(iova: bigint): void {
    const i = this.regions.findIndex((r) => r.iova === iova);
    if (i >= 0) this.regions.splice(i, 1);
  }

  /** Install as the connection's server-command handler. */
  attach(conn: VfioUserConnection): void {
    conn.onServerCommand((m) => this.serve(m));
  }

  serve(m: VfioUserMessage): CommandAnswer {
    if (m.command !== Cmd.DMA_READ && m.command !== Cmd.DMA_WRITE) return { errno: Errno.ENOTSUP };
    const what = m.command === Cmd.DMA_READ ? 'DMA_READ' : 'DMA_WRITE';
    if (m.fds.length > 0) this.violations.push(`${what} carried ${m.fds.length} descriptors`);
    if (m.payload.length < DmaAccess.size) {
      this.violations.push(`${what} of ${m.payload.length} bytes (needs 16)`);
      return { errno: Errno.EINVAL };
    }
    const { addr, count } = DmaAccess.unpack(m.payload);
    const n = Number(count);
    this.maxCountSeen = Math.max(this.maxCountSeen, n);
    if (n > this.clientMaxDataXfer) {
      this.violations.push(`${what} count ${n} above the client's max_data_xfer_size ${this.clientMaxDataXfer}`);
      return { errno: Errno.E2BIG };
    }
    if (m.command === Cmd.DMA_WRITE && m.payload.length !== DmaAccess.size + n) {
      this.violations.push(`DMA_WRITE count ${n} with ${m.payload.length - DmaAccess.size} data bytes`);
      return { errno: Errno.EINVAL };
    }
    const r = this.regions.find((x) => addr >= x.iova && addr + count <= x.iova + BigInt(x.mem.length));
    if (r === undefined) {
      this.violations.push(`${what} of [0x${addr.toString(16)}, +${n}) outside every descriptor-less map`);
      return { errno: Errno.EFAULT };
    }
    const off = Number(addr - r.iova);
    if (m.command === Cmd.DMA_READ) {
      const out = Buffer.alloc(DmaAccess.size + n);
      DmaAccess.packInto(out, 0, { addr, count });
      r.mem.copy(out, DmaAccess.size, off, off + n);
      return { payload: out };
    }
    if (!r.writable) return { errno: Errno.EPERM };
    m.payload.copy(r.mem, off, DmaAccess.size, DmaAccess.size + n);
    this.bytesWritten += n;
    return { payload: DmaAccess.pack({ addr, count }) };
  }
}
