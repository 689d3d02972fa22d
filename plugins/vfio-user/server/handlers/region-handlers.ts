/**
 * Regions: DEVICE_GET_REGION_INFO (struct vfio_region_info + capability chain), REGION_READ / REGION_WRITE
 * (trapped accesses), REGION_WRITE_MULTI (QEMU's coalesced posted writes) and DEVICE_GET_REGION_IO_FDS.
 *
 * GET_REGION_INFO follows the kernel (drivers/vfio/vfio_main.c vfio_get_region_info): the reply's argsz is the size
 * the whole answer needs; when the client's argsz is too small for the capability chain, the reply carries the
 * bare 32-byte struct with CAPS set and cap_offset 0, and no descriptor (libvfio-user also sends the descriptor only
 * with a full answer) — QEMU then asks again with the larger argsz. A mmap-able region's descriptor travels on the
 * full reply; `offset` is what to give mmap(), and the SPARSE_MMAP capability (id 1, version 1) lists the areas.
 *
 * REGION_READ/WRITE checks as libvfio-user lib/libvfio-user.c is_valid_region_access: payload ≥ 16, count ≤ our
 * max_data_xfer_size, a WRITE's data exactly `count` bytes, a valid region index, offset + count within the
 * region; every failure is EINVAL.
 */
import { CAP_SPARSE_MMAP, Errno, REGION_INFO_SIZE, RegionFlags } from '../../protocol/constants.js';
import type { InboundMessage } from '../../protocol/message-reader.js';
import { refuse } from '../../protocol/protocol-error.js';
import type { RegionInfo } from '../vfio-user-device.js';
import type { Reply, SessionContext } from '../vfio-user-session.js';

const ACCESS_HEADER = 16;

function regionOf(ctx: SessionContext, index: number): RegionInfo {
  if (!Number.isInteger(index) || index < 0 || index >= ctx.device.numRegions) {
    throw refuse(Errno.EINVAL, `region index ${index} is out of range (the device has ${ctx.device.numRegions})`);
  }
  return ctx.device.regionInfo(index, { canSendFd: ctx.caps.outMaxFds >= 1 });
}

export function handleRegionInfo(ctx: SessionContext, m: InboundMessage): Reply {
  const p = m.payload;
  if (p.length < REGION_INFO_SIZE) throw refuse(Errno.EINVAL, `DEVICE_GET_REGION_INFO payload of ${p.length} bytes (${REGION_INFO_SIZE} needed)`);
  const argsz = p.readUInt32LE(0);
  const index = p.readUInt32LE(8);
  if (argsz < REGION_INFO_SIZE) throw refuse(Errno.EINVAL, `DEVICE_GET_REGION_INFO argsz ${argsz} < ${REGION_INFO_SIZE}`);
  const r = regionOf(ctx, index);
  let flags = (r.readable ? RegionFlags.READ : 0) | (r.writable ? RegionFlags.WRITE : 0);
  let caps: Buffer | null = null;
  if (r.mmap !== undefined) {
    flags |= RegionFlags.MMAP | RegionFlags.CAPS;
    // struct vfio_region_info_cap_sparse_mmap: header {u16 id, u16 version, u32 next}, u32 nr_areas, u32 reserved,
    // then {u64 offset, u64 size} per area.
    caps = Buffer.alloc(16 + 16 * r.mmap.areas.length);
    caps.writeUInt16LE(CAP_SPARSE_MMAP, 0);
    caps.writeUInt16LE(1, 2);
    caps.writeUInt32LE(0, 4);
    caps.writeUInt32LE(r.mmap.areas.length, 8);
    r.mmap.areas.forEach((a, i) => {
      caps!.writeBigUInt64LE(a.offset, 16 + 16 * i);
      caps!.writeBigUInt64LE(a.size, 24 + 16 * i);
    });
  }
  const full = REGION_INFO_SIZE + (caps?.length ?? 0);
  const fits = argsz >= full;
  const out = Buffer.alloc(fits ? full : REGION_INFO_SIZE);
  out.writeUInt32LE(full, 0);
  out.writeUInt32LE(flags, 4);
  out.writeUInt32LE(index, 8);
  out.writeUInt32LE(caps !== null && fits ? REGION_INFO_SIZE : 0, 12);
  out.writeBigUInt64LE(r.size, 16);
  out.writeBigUInt64LE(r.mmap?.offset ?? 0n, 24);
  if (caps !== null && fits) caps.copy(out, REGION_INFO_SIZE);
  return { payload: out, ...(r.mmap !== undefined && fits ? { fds: [r.mmap.fd] } : {}) };
}

function access(ctx: SessionContext, p: Buffer, write: boolean): { offset: bigint; index: number; count: number; r: RegionInfo } {
  if (p.length < ACCESS_HEADER) throw refuse(Errno.EINVAL, `region access payload of ${p.length} bytes (16 needed)`);
  const offset = p.readBigUInt64LE(0);
  const index = p.readUInt32LE(8);
  const count = p.readUInt32LE(12);
  if (count > ctx.caps.inMaxDataXfer) throw refuse(Errno.EINVAL, `region access count ${count} exceeds max_data_xfer_size ${ctx.caps.inMaxDataXfer}`);
  if (write && p.length - ACCESS_HEADER !== count) {
    throw refuse(Errno.EINVAL, `REGION_WRITE count ${count} but ${p.length - ACCESS_HEADER} data bytes`);
  }
  const r = regionOf(ctx, index);
  if (offset > r.size || BigInt(count) > r.size - offset) {
    throw refuse(Errno.EINVAL, `region ${index} access [0x${offset.toString(16)}, +${count}) is past its end (size 0x${r.size.toString(16)})`);
  }
  if (write ? !r.writable : !r.readable) throw refuse(Errno.EINVAL, `region ${index} is not ${write ? 'writable' : 'readable'}`);
  return { offset, index, count, r };
}

export function handleRegionRead(ctx: SessionContext, m: InboundMessage): Reply {
  const a = access(ctx, m.payload, false);
  const out = Buffer.alloc(ACCESS_HEADER + a.count);
  m.payload.copy(out, 0, 0, ACCESS_HEADER);
  if (a.count > 0) {
    out.set(ctx.device.regionRead(a.index, a.offset, a.count), ACCESS_HEADER);
    ctx.counters.regionReads[a.index] = (ctx.counters.regionReads[a.index] ?? 0) + 1;
  }
  return { payload: out };
}

export function handleRegionWrite(ctx: SessionContext, m: InboundMessage): Reply | Promise<Reply> {
  const a = access(ctx, m.payload, true);
  const reply: Reply = { payload: Buffer.from(m.payload.subarray(0, ACCESS_HEADER)) };
  if (a.count === 0) return reply;
  ctx.counters.regionWrites[a.index] = (ctx.counters.regionWrites[a.index] ?? 0) + 1;
  const done = ctx.device.regionWrite(a.index, a.offset, m.payload.subarray(ACCESS_HEADER));
  // Only a write with a lasting effect (FLR) is asynchronous; the others stay on the synchronous fast path.
  return done instanceof Promise ? done.then(() => reply) : reply;
}

/** u64 wr_cnt, then wr_cnt × {u64 offset, u32 region, u32 count, u8 data[8]}; reply u64 wr_cnt. */
export function handleWriteMulti(ctx: SessionContext, m: InboundMessage): Reply | Promise<Reply> {
  if (!ctx.caps.writeMultiple) throw refuse(Errno.ENOTSUP, 'REGION_WRITE_MULTI was not negotiated (write_multiple)');
  const p = m.payload;
  if (p.length < 8) throw refuse(Errno.EINVAL, 'REGION_WRITE_MULTI payload shorter than wr_cnt');
  const n = p.readBigUInt64LE(0);
  if (n === 0n || BigInt(p.length - 8) !== n * 24n) {
    throw refuse(Errno.EINVAL, `REGION_WRITE_MULTI wr_cnt ${n} does not match its ${p.length - 8} bytes of writes (24 each)`);
  }
  const out = Buffer.alloc(8);
  out.writeBigUInt64LE(n, 0);
  const reply: Reply = { payload: out };
  // The writes run in order; one that takes time (an FLR) holds the rest back until it is done.
  const run = (from: number): Reply | Promise<Reply> => {
    for (let i = from; i < Number(n); i++) {
      const at = 8 + 24 * i;
      const count = p.readUInt32LE(at + 12);
      if (count > 8) throw refuse(Errno.EINVAL, `REGION_WRITE_MULTI write ${i} has count ${count} (at most 8)`);
      const one = Buffer.alloc(ACCESS_HEADER + count);
      p.copy(one, 0, at, at + ACCESS_HEADER);
      p.copy(one, ACCESS_HEADER, at + 16, at + 16 + count);
      const a = access(ctx, one, true);
      if (count === 0) continue;
      ctx.counters.regionWrites[a.index] = (ctx.counters.regionWrites[a.index] ?? 0) + 1;
      const done = ctx.device.regionWrite(a.index, a.offset, one.subarray(ACCESS_HEADER));
      if (done instanceof Promise) return done.then(() => run(i + 1));
    }
    return reply;
  };
  return run(0);
}

/**
 * {u32 argsz, u32 flags, u32 index, u32 count}: flags and count must be 0, index valid, argsz at least the 16-byte
 * reply header (libvfio-user's checks). The device offers no ioeventfd sub-regions, so the answer is count 0 and
 * no descriptor — which the spec allows (the feature is optional).
 */
export function handleRegionIoFds(ctx: SessionContext, m: InboundMessage): Reply {
  const p = m.payload;
  if (p.length < 16) throw refuse(Errno.EINVAL, `DEVICE_GET_REGION_IO_FDS payload of ${p.length} bytes (16 needed)`);
  const argsz = p.readUInt32LE(0);
  const flags = p.readUInt32LE(4);
  const index = p.readUInt32LE(8);
  const count = p.readUInt32LE(12);
  if (flags !== 0 || count !== 0) throw refuse(Errno.EINVAL, 'DEVICE_GET_REGION_IO_FDS flags and count must be 0');
  if (argsz < 16) throw refuse(Errno.EINVAL, `DEVICE_GET_REGION_IO_FDS argsz ${argsz} < 16`);
  regionOf(ctx, index);
  const out = Buffer.alloc(16);
  out.writeUInt32LE(16, 0);
  out.writeUInt32LE(0, 4);
  out.writeUInt32LE(index, 8);
  out.writeUInt32LE(0, 12);
  return { payload: out };
}
