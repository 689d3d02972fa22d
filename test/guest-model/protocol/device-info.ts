/**
 * What the device is: DEVICE_GET_INFO, DEVICE_GET_REGION_INFO (with its capability chain and the descriptor of a
 * mappable region) and DEVICE_GET_IRQ_INFO (QEMU docs/interop/vfio-user.rst; structures from Linux
 * include/uapi/linux/vfio.h).
 *
 * Region info follows the "Message sizes" rule of the spec: the request's argsz is the largest reply the client
 * takes; a reply whose argsz is larger says "ask again with this much" and carries only the fixed part. The
 * client asks with the bare 32 bytes first and again with the size the server named, as QEMU's VFIO code does
 * (hw/vfio/device.c vfio_device_get_region_info).
 */
import { CapHeader, DeviceInfo, IrqInfo, RegionCapType, RegionInfo, SparseMmapArea, SparseMmapHead } from '../wire/spec-structs.js';
import { Cmd, REGION_CAP_SPARSE_MMAP, REGION_CAP_TYPE, REGION_FLAG_CAPS, REGION_FLAG_MMAP } from '../wire/spec-constants.js';
import { VfioUserProtocolError } from '../wire/errors.js';
import { loadFdOps } from '../wire/fd-ops.js';
import type { VfioUserConnection } from '../wire/vfio-user-connection.js';

export interface DeviceInfoReply {
  argsz: number;
  flags: number;
  numRegions: number;
  numIrqs: number;
}

export interface SparseArea {
  /** Offset inside the region; the mmap offset in the descriptor is the region's `offset` plus this. */
  offset: bigint;
  size: bigint;
}

export interface RegionCap {
  id: number;
  version: number;
  /** Offset of the capability's header from the start of the region info. */
  at: number;
}

export interface RegionInfoReply {
  index: number;
  flags: number;
  size: bigint;
  /** mmap offset of the region in `fd` (QEMU spec: the base of the sparse areas too). */
  offset: bigint;
  caps: RegionCap[];
  /** Areas of a SPARSE_MMAP capability (undefined when there is none). */
  sparse: SparseArea[] | undefined;
  /** VFIO_REGION_INFO_CAP_TYPE, when present. */
  type: { type: number; subtype: number } | undefined;
  /** The descriptor that came with the full reply (the caller closes it), or undefined. */
  fd: number | undefined;
  /** argsz of the first, bare request's reply: the size the server said the full answer needs. */
  fullArgsz: number;
}

export interface IrqInfoReply {
  argsz: number;
  flags: number;
  index: number;
  count: number;
}

export async function getDeviceInfo(conn: VfioUserConnection): Promise<DeviceInfoReply> {
  const r = await conn.call(Cmd.DEVICE_GET_INFO, DeviceInfo.pack({ argsz: DeviceInfo.size }));
  closeFds(r.fds, 'DEVICE_GET_INFO');
  if (r.payload.length < DeviceInfo.size) throw new VfioUserProtocolError(`DEVICE_GET_INFO reply of ${r.payload.length} bytes (needs 16)`);
  return DeviceInfo.unpack(r.payload);
}

/** Ask with `argsz` bytes of room; returns the raw reply (payload + descriptors). */
export async function requestRegionInfo(conn: VfioUserConnection, index: number, argsz: number): Promise<{ payload: Buffer; fds: number[] }> {
  const r = await conn.call(Cmd.DEVICE_GET_REGION_INFO, RegionInfo.pack({ argsz, index }));
  if (r.payload.length < RegionInfo.size) {
    closeFds(r.fds);
    throw new VfioUserProtocolError(`DEVICE_GET_REGION_INFO(${index}) reply of ${r.payload.length} bytes (needs 32)`);
  }
  if (r.payload.length > argsz) {
    // QEMU spec "Message sizes": when the full reply does not fit the request's argsz, "the full payload is not
    // included in the reply".
    closeFds(r.fds);
    throw new VfioUserProtocolError(`DEVICE_GET_REGION_INFO(${index}) reply of ${r.payload.length} bytes for a request with argsz ${argsz}`);
  }
  return { payload: r.payload, fds: r.fds };
}

export async function getRegionInfo(conn: VfioUserConnection, index: number): Promise<RegionInfoReply> {
  let { payload, fds } = await requestRegionInfo(conn, index, RegionInfo.size);
  const first = RegionInfo.unpack(payload);
  if (first.argsz > RegionInfo.size) {
    // Too small for the capabilities: ask again with what the server named (any descriptor of the short answer
    // is dropped; the full answer brings its own).
    closeFds(fds);
    ({ payload, fds } = await requestRegionInfo(conn, index, first.argsz));
  }
  const info = RegionInfo.unpack(payload);
  if (info.index !== index) {
    closeFds(fds);
    throw new VfioUserProtocolError(`DEVICE_GET_REGION_INFO(${index}) reply names region ${info.index}`);
  }
  if (payload.length < info.argsz) {
    closeFds(fds);
    throw new VfioUserProtocolError(`DEVICE_GET_REGION_INFO(${index}) reply argsz ${info.argsz} but ${payload.length} payload bytes with room for ${first.argsz}`);
  }
  if (fds.length > 1) {
    closeFds(fds);
    throw new VfioUserProtocolError(`DEVICE_GET_REGION_INFO(${index}) reply carried ${fds.length} descriptors (one region, one descriptor)`);
  }
  const caps: RegionCap[] = [];
  let sparse: SparseArea[] | undefined;
  let type: { type: number; subtype: number } | undefined;
  if ((info.flags & REGION_FLAG_CAPS) !== 0 && info.capOffset !== 0) {
    const seen = new Set<number>();
    for (let at = info.capOffset; at !== 0;) {
      if (seen.has(at) || at < RegionInfo.size || at + CapHeader.size > payload.length) {
        closeFds(fds);
        throw new VfioUserProtocolError(`DEVICE_GET_REGION_INFO(${index}) capability chain points at ${at} (loop or outside ${payload.length} bytes)`);
      }
      seen.add(at);
      const h = CapHeader.unpack(payload, at);
      caps.push({ id: h.id, version: h.version, at });
      const body = at + CapHeader.size;
      if (h.id === REGION_CAP_SPARSE_MMAP) {
        const head = SparseMmapHead.unpack(payload, body);
        const end = body + SparseMmapHead.size + head.nrAreas * SparseMmapArea.size;
        if (end > payload.length) {
          closeFds(fds);
          throw new VfioUserProtocolError(`sparse-mmap capability of region ${index} lists ${head.nrAreas} areas past the reply's end`);
        }
        sparse = [];
        for (let i = 0; i < head.nrAreas; i++) sparse.push(SparseMmapArea.unpack(payload, body + SparseMmapHead.size + i * SparseMmapArea.size));
      } else if (h.id === REGION_CAP_TYPE) {
        type = RegionCapType.unpack(payload, body);
      }
      at = h.next;
    }
  }
  if ((info.flags & REGION_FLAG_MMAP) === 0 && fds.length > 0) {
    closeFds(fds);
    throw new VfioUserProtocolError(`region ${index} is not MMAP but its info came with a descriptor`);
  }
  return { index: info.index, flags: info.flags, size: info.size, offset: info.offset, caps, sparse, type, fd: fds[0], fullArgsz: first.argsz };
}

export async function getIrqInfo(conn: VfioUserConnection, index: number): Promise<IrqInfoReply> {
  const r = await conn.call(Cmd.DEVICE_GET_IRQ_INFO, IrqInfo.pack({ argsz: IrqInfo.size, index }));
  closeFds(r.fds, 'DEVICE_GET_IRQ_INFO');
  if (r.payload.length < IrqInfo.size) throw new VfioUserProtocolError(`DEVICE_GET_IRQ_INFO(${index}) reply of ${r.payload.length} bytes (needs 16)`);
  const info = IrqInfo.unpack(r.payload);
  if (info.index !== index) throw new VfioUserProtocolError(`DEVICE_GET_IRQ_INFO(${index}) reply names index ${info.index}`);
  return info;
}

/** Close descriptors; with `unexpectedOn`, a descriptor on that reply is a protocol breach. */
export function closeFds(fds: number[], unexpectedOn?: string): void {
  const ops = loadFdOps();
  for (const fd of fds) ops.closeFd(fd);
  if (unexpectedOn !== undefined && fds.length > 0) throw new VfioUserProtocolError(`${unexpectedOn} reply carried ${fds.length} descriptors`);
}
