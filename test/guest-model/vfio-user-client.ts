/**
 * The VMM's half of a vfio-user connection, as one object: connect and negotiate, then the device, region, IRQ,
 * DMA, reset and migration commands with the limits the server announced. It is the guest model's stand-in for
 * QEMU's hw/vfio-user/ client, written from QEMU docs/interop/vfio-user.rst and Linux include/uapi/linux/vfio.h
 * only; the protocol pieces live in protocol/ and wire/, one concern per file.
 */
import { VfioUserConnection, type ConnectionOptions } from './wire/vfio-user-connection.js';
import { Cmd, DMA_MAP_READ, DMA_MAP_WRITE, Region } from './wire/spec-constants.js';
import { DEFAULT_PROPOSAL, negotiate, type Negotiated, type VersionProposal } from './protocol/version.js';
import { closeFds, getDeviceInfo, getIrqInfo, getRegionInfo, type DeviceInfoReply, type IrqInfoReply, type RegionInfoReply } from './protocol/device-info.js';
import { regionRead, regionWrite, regionWriteMulti } from './protocol/region-io.js';
import { setIrqs, type IrqAction, type IrqData } from './protocol/irqs.js';
import { dmaMap, dmaUnmap, SocketDmaSpace, type DmaMapRequest } from './protocol/dma.js';
import {
  dmaLoggingReport, dmaLoggingStart, dmaLoggingStop, getMigState, migrationFlags, probeFeature, setMigState,
} from './protocol/device-feature.js';
import { migDataRead, migDataReadPass, migDataWrite } from './protocol/migration-data.js';

export interface ClientOptions extends ConnectionOptions {
  /** What to propose in VERSION (default: 0.1 with the capabilities QEMU proposes, write_multiple on). */
  proposal?: VersionProposal;
}

export class VfioUserClient {
  /** Memory the server reaches with DMA_READ/DMA_WRITE (descriptor-less maps). */
  readonly socketDma: SocketDmaSpace;

  private constructor(readonly conn: VfioUserConnection, readonly negotiated: Negotiated) {
    this.socketDma = new SocketDmaSpace(negotiated.toClient.maxDataXferSize);
    this.socketDma.attach(conn);
  }

  /** Connect and negotiate. The proposal's max_msg_fds is also how many descriptors we take per message. */
  static async connect(path: string, opts: ClientOptions = {}): Promise<VfioUserClient> {
    const proposal = opts.proposal ?? DEFAULT_PROPOSAL;
    const conn = VfioUserConnection.connect(path, { maxRecvFds: proposal.capabilities?.max_msg_fds ?? 1, ...opts });
    try {
      return new VfioUserClient(conn, await negotiate(conn, proposal));
    } catch (e) {
      conn.close();
      throw e;
    }
  }

  /** Every rule the server broke so far, on the wire and in the DMA commands it sent. */
  get violations(): string[] {
    return [...this.conn.violations, ...this.socketDma.violations];
  }

  deviceInfo(): Promise<DeviceInfoReply> {
    return getDeviceInfo(this.conn);
  }

  regionInfo(index: number): Promise<RegionInfoReply> {
    return getRegionInfo(this.conn, index);
  }

  irqInfo(index: number): Promise<IrqInfoReply> {
    return getIrqInfo(this.conn, index);
  }

  read(region: number, offset: bigint | number, count: number): Promise<Buffer> {
    return regionRead(this.conn, this.negotiated.toServer, region, BigInt(offset), count);
  }

  write(region: number, offset: bigint | number, data: Buffer): Promise<void> {
    return regionWrite(this.conn, this.negotiated.toServer, region, BigInt(offset), data);
  }

  writeMulti(writes: { region: number; offset: bigint; data: Buffer }[]): Promise<bigint> {
    return regionWriteMulti(this.conn, writes);
  }

  async read32(region: number, offset: number): Promise<number> {
    return (await this.read(region, offset, 4)).readUInt32LE(0);
  }

  write32(region: number, offset: number, value: number): Promise<void> {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(value >>> 0);
    return this.write(region, offset, b);
  }

  async config(offset: number, width: 1 | 2 | 4): Promise<number> {
    const b = await this.read(Region.CONFIG, offset, width);
    return width === 1 ? b.readUInt8(0) : width === 2 ? b.readUInt16LE(0) : b.readUInt32LE(0);
  }

  setConfig(offset: number, width: 1 | 2 | 4, value: number): Promise<void> {
    const b = Buffer.alloc(width);
    if (width === 1) b.writeUInt8(value & 0xff);
    else if (width === 2) b.writeUInt16LE(value & 0xffff);
    else b.writeUInt32LE(value >>> 0);
    return this.write(Region.CONFIG, offset, b);
  }

  setIrqs(index: number, start: number, count: number, action: IrqAction, data: IrqData): Promise<void> {
    return setIrqs(this.conn, this.negotiated.toServer, index, start, count, action, data);
  }

  dmaMap(m: DmaMapRequest): Promise<void> {
    return dmaMap(this.conn, m);
  }

  /** Map client memory without a descriptor: the server reaches it through DMA_READ / DMA_WRITE. */
  async dmaMapSocket(iova: bigint, mem: Buffer, writable = true): Promise<void> {
    this.socketDma.add(iova, mem, writable);
    try {
      await dmaMap(this.conn, { iova, size: BigInt(mem.length), flags: DMA_MAP_READ | (writable ? DMA_MAP_WRITE : 0) });
    } catch (e) {
      this.socketDma.remove(iova);
      throw e;
    }
  }

  async dmaUnmap(iova: bigint, size: bigint, flags = 0): Promise<void> {
    await dmaUnmap(this.conn, iova, size, flags);
    this.socketDma.remove(iova);
  }

  async reset(): Promise<void> {
    const r = await this.conn.call(Cmd.DEVICE_RESET);
    closeFds(r.fds, 'DEVICE_RESET');
  }

  // --- migration and DMA logging (DEVICE_FEATURE, MIG_DATA_*) ------------------------------------------------------

  migrationFlags(): Promise<bigint> {
    return migrationFlags(this.conn);
  }

  migState(): Promise<number> {
    return getMigState(this.conn);
  }

  setMigState(state: number): Promise<void> {
    return setMigState(this.conn, state);
  }

  probeFeature(feature: number, methods = 0): Promise<boolean> {
    return probeFeature(this.conn, feature, methods);
  }

  /** One MIG_DATA_READ of up to `size` bytes (never above the server's max_data_xfer_size). */
  migRead(size = this.negotiated.toServer.maxDataXferSize): Promise<Buffer> {
    return migDataRead(this.conn, Math.min(size, this.negotiated.toServer.maxDataXferSize));
  }

  /** MIG_DATA_READ until the server answers short: one pass of the stream. */
  migReadPass(chunk = this.negotiated.toServer.maxDataXferSize): Promise<Buffer[]> {
    return migDataReadPass(this.conn, Math.min(chunk, this.negotiated.toServer.maxDataXferSize));
  }

  migWrite(data: Buffer): Promise<void> {
    return migDataWrite(this.conn, this.negotiated.toServer, data);
  }

  dmaLoggingStart(pageSize: bigint, ranges: { iova: bigint; length: bigint }[]): Promise<bigint> {
    return dmaLoggingStart(this.conn, pageSize, ranges);
  }

  dmaLoggingStop(): Promise<void> {
    return dmaLoggingStop(this.conn);
  }

  dmaLoggingReport(iova: bigint, length: bigint, pageSize: bigint): Promise<number[]> {
    return dmaLoggingReport(this.conn, iova, length, pageSize);
  }

  close(): void {
    this.conn.close();
  }
}
