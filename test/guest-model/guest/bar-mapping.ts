/**
 * A BAR as a guest reaches it through its VMM: the parts the server offers for mmap (the SPARSE_MMAP areas, or the
 * whole region when the region is MMAP without that capability) are mapped from the descriptor of the region-info
 * reply at `offset + area.offset` (QEMU docs/interop/vfio-user.rst "Sparse Regions", "VFIO region info cap sparse
 * mmap"); every other byte goes through REGION_READ / REGION_WRITE, as QEMU's vfio code traps what it cannot map.
 * An access that straddles the two is split.
 */
import { loadFdOps, type FdMap } from '../wire/fd-ops.js';
import { REGION_FLAG_MMAP } from '../wire/spec-constants.js';
import type { RegionInfoReply } from '../protocol/device-info.js';
import type { VfioUserClient } from '../vfio-user-client.js';

/** FdMap windows are at most 1 GiB (native/fd-ops.ts); larger areas are reached through several windows. */
const WINDOW_MAX = 1 << 30;

interface MappedArea {
  start: bigint;
  size: bigint;
  map: FdMap;
}

export class BarMapping {
  private constructor(
    private readonly client: VfioUserClient,
    readonly info: RegionInfoReply,
    readonly areas: readonly MappedArea[],
  ) {}

  /** Map what the region offers. The region info's descriptor is closed here (the mappings keep the file). */
  static open(client: VfioUserClient, info: RegionInfoReply): BarMapping {
    const ops = loadFdOps();
    const areas: MappedArea[] = [];
    try {
      if ((info.flags & REGION_FLAG_MMAP) !== 0 && info.fd !== undefined) {
        const spans = info.sparse ?? [{ offset: 0n, size: info.size }];
        for (const s of spans) {
          if (s.size === 0n) continue;
          if (s.offset + s.size > info.size) throw new Error(`region ${info.index}: sparse area [0x${s.offset.toString(16)}, +0x${s.size.toString(16)}) runs past the region's 0x${info.size.toString(16)} bytes`);
          areas.push({ start: s.offset, size: s.size, map: ops.mapFd(info.fd, Number(info.offset + s.offset), Number(s.size), true) });
        }
      }
    } catch (e) {
      for (const a of areas) a.map.close();
      throw e;
    } finally {
      if (info.fd !== undefined) ops.closeFd(info.fd);
    }
    return new BarMapping(client, info, areas);
  }

  get size(): bigint {
    return this.info.size;
  }

  /** Bytes of the region reachable through the mappings. */
  get mappedBytes(): bigint {
    return this.areas.reduce((n, a) => n + a.size, 0n);
  }

  /** True when [offset, offset+length) is entirely inside one mapped area. */
  isMapped(offset: bigint, length: number): boolean {
    return this.areaOf(offset, length) !== undefined;
  }

  async write(offset: bigint, data: Buffer): Promise<void> {
    for (const [at, part, area] of this.pieces(offset, data.length)) {
      const chunk = data.subarray(Number(at - offset), Number(at - offset) + part);
      if (area !== undefined) this.copyInto(area, at, chunk);
      else await this.client.write(this.info.index, at, chunk);
    }
  }

  async read(offset: bigint, length: number): Promise<Buffer> {
    const out = Buffer.alloc(length);
    for (const [at, part, area] of this.pieces(offset, length)) {
      const dst = out.subarray(Number(at - offset), Number(at - offset) + part);
      if (area !== undefined) this.copyOut(area, at, dst);
      else (await this.client.read(this.info.index, at, part)).copy(dst);
    }
    return out;
  }

  /** Write through the mapping only (throws when the range is not mapped): what a guest store to mapped FB does. */
  writeMapped(offset: bigint, data: Buffer): void {
    const a = this.areaOf(offset, data.length);
    if (a === undefined) throw new RangeError(`BAR${this.info.index} [0x${offset.toString(16)}, +${data.length}) is not mmap-able`);
    this.copyInto(a, offset, data);
  }

  readMapped(offset: bigint, length: number): Buffer {
    const a = this.areaOf(offset, length);
    if (a === undefined) throw new RangeError(`BAR${this.info.index} [0x${offset.toString(16)}, +${length}) is not mmap-able`);
    const out = Buffer.alloc(length);
    this.copyOut(a, offset, out);
    return out;
  }

  close(): void {
    for (const a of this.areas) a.map.close();
  }

  private areaOf(offset: bigint, length: number): MappedArea | undefined {
    return this.areas.find((a) => offset >= a.start && offset + BigInt(length) <= a.start + a.size);
  }

  /** Split [offset, offset+length) into runs that are wholly mapped (with their area) or wholly trapped. */
  private *pieces(offset: bigint, length: number): Generator<[bigint, number, MappedArea | undefined]> {
    if (offset < 0n || offset + BigInt(length) > this.info.size) {
      throw new RangeError(`BAR${this.info.index} [0x${offset.toString(16)}, +${length}) outside its 0x${this.info.size.toString(16)} bytes`);
    }
    let at = offset;
    const end = offset + BigInt(length);
    while (at < end) {
      const inside = this.areas.find((a) => at >= a.start && at < a.start + a.size);
      if (inside !== undefined) {
        const stop = end < inside.start + inside.size ? end : inside.start + inside.size;
        yield [at, Number(stop - at), inside];
        at = stop;
      } else {
        const next = this.areas.filter((a) => a.start > at).reduce<bigint>((m, a) => (a.start < m ? a.start : m), end);
        yield [at, Number(next - at), undefined];
        at = next;
      }
    }
  }

  private copyInto(a: MappedArea, offset: bigint, data: Buffer): void {
    for (let done = 0; done < data.length;) {
      const rel = Number(offset - a.start) + done;
      const n = Math.min(data.length - done, WINDOW_MAX - (rel % WINDOW_MAX));
      data.copy(a.map.window(rel, n), 0, done, done + n);
      done += n;
    }
  }

  private copyOut(a: MappedArea, offset: bigint, out: Buffer): void {
    for (let done = 0; done < out.length;) {
      const rel = Number(offset - a.start) + done;
      const n = Math.min(out.length - done, WINDOW_MAX - (rel % WINDOW_MAX));
      a.map.window(rel, n).copy(out, done);
      done += n;
    }
  }
}
