/**
 * VFIO_USER_VERSION: the first message of a connection. The client proposes a version and, in an optional
 * NUL-terminated JSON object, the limits of its side; the server answers with its version and its limits.
 *
 * Rules (vfio-user.rst "VFIO_USER_VERSION"): the reply's major equals the proposal's; its minor is at most the
 * proposed one (we speak 0.1 and every minor below it, so we answer min(proposed, 1) — QEMU 10.1 proposes 0.0 and
 * refuses a higher answer, hw/vfio-user/proxy.c vfio_user_validate_version); the reply's capabilities are a subset
 * of the proposed ones, so we only name the keys the client named, and a key neither side names takes its default
 * on both sides. QEMU's client rejects a reply whose JSON is missing or not NUL-terminated, so there always is one.
 *
 * Limits both ways: what the client names bounds what WE send it (descriptors per message, data per DMA_READ/WRITE,
 * dirty bitmap sizes); what we answer bounds what we ACCEPT (data per REGION_READ/WRITE, descriptors per message,
 * DMA maps). Anything malformed is EINVAL and the connection ends (libvfio-user does the same).
 */
import { CapDefaults, Errno, QemuLimits, VFIO_USER_MAJOR, VFIO_USER_MINOR } from './constants.js';
import { refuse } from './protocol-error.js';

/** Largest VERSION JSON we parse (QEMU's is ~200 bytes). */
export const MAX_VERSION_JSON = 4096;

/** The server's own limits (what it can receive and serve), before negotiation trims them to what the client named. */
export interface ServerCaps {
  maxMsgFds: number;
  maxDataXferSize: number;
  maxDmaMaps: number;
  pgsizes: number;
  migrationPgsize: number;
  maxBitmapSize: number;
  writeMultiple: boolean;
}

export const DEFAULT_SERVER_CAPS: ServerCaps = {
  // 16 is the most QEMU accepts; MSI-X eventfds then come in chunks of 16.
  maxMsgFds: QemuLimits.maxMsgFds,
  maxDataXferSize: CapDefaults.maxDataXferSize,
  maxDmaMaps: CapDefaults.maxDmaMaps,
  pgsizes: 4096,
  migrationPgsize: 4096,
  // A report bitmap travels in one reply: keep it well under the transfer limit.
  maxBitmapSize: 512 << 10,
  writeMultiple: true,
};

/** The limits in force for one connection. */
export interface NegotiatedCaps {
  major: number;
  minor: number;
  /** Descriptors we accept per inbound message. */
  inMaxFds: number;
  /** Descriptors we may send per message (the client's receive limit). */
  outMaxFds: number;
  /** Largest count we accept in REGION_READ/WRITE (and MIG_DATA) — what we told the client. */
  inMaxDataXfer: number;
  /** Largest count we may put in a DMA_READ/DMA_WRITE to the client. */
  outMaxDataXfer: number;
  maxDmaMaps: number;
  pgsizes: number;
  migrationPgsize: number;
  /** Largest DMA logging bitmap either side accepts, in bytes. */
  maxBitmapSize: number;
  writeMultiple: boolean;
}

export interface VersionOutcome {
  caps: NegotiatedCaps;
  /** The reply payload: u16 major, u16 minor, JSON, NUL. */
  reply: Buffer;
}

type Json = Record<string, unknown>;

function uint(v: unknown, key: string, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > max) {
    throw refuse(Errno.EINVAL, `VERSION capability ${key} must be an integer in [0, ${max}], got ${JSON.stringify(v)}`);
  }
  return v;
}

/** Parse a VERSION payload and answer it. Throws a refusal (EINVAL) for anything malformed. */
export function negotiateVersion(payload: Buffer, ours: ServerCaps = DEFAULT_SERVER_CAPS): VersionOutcome {
  if (payload.length < 4) throw refuse(Errno.EINVAL, `VERSION payload of ${payload.length} bytes is shorter than major+minor`);
  const major = payload.readUInt16LE(0);
  const minor = payload.readUInt16LE(2);
  if (major !== VFIO_USER_MAJOR) {
    throw refuse(Errno.EINVAL, `client protocol major ${major} is not supported (this server speaks ${VFIO_USER_MAJOR}.${VFIO_USER_MINOR})`, 'use a vfio-user 0.x client');
  }
  let proposed: Json = {};
  if (payload.length > 4) {
    const text = payload.subarray(4);
    if (text.length > MAX_VERSION_JSON) throw refuse(Errno.E2BIG, `VERSION JSON of ${text.length} bytes exceeds ${MAX_VERSION_JSON}`);
    if (text[text.length - 1] !== 0) throw refuse(Errno.EINVAL, 'VERSION JSON is not NUL-terminated');
    const body = text.subarray(0, text.length - 1);
    if (body.includes(0)) throw refuse(Errno.EINVAL, 'VERSION JSON contains a NUL before its end');
    let parsed: unknown;
    try {
      parsed = JSON.parse(body.toString('utf8'));
    } catch {
      throw refuse(Errno.EINVAL, 'VERSION data is not valid JSON');
    }
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw refuse(Errno.EINVAL, 'VERSION JSON is not an object');
    proposed = parsed as Json;
  }
  const capsIn = proposed.capabilities;
  if (capsIn !== undefined && (capsIn === null || typeof capsIn !== 'object' || Array.isArray(capsIn))) {
    throw refuse(Errno.EINVAL, 'VERSION "capabilities" is not an object');
  }
  const c = (capsIn ?? {}) as Json;
  const answer: Json = {};
  const caps: NegotiatedCaps = {
    major: VFIO_USER_MAJOR,
    minor: Math.min(minor, VFIO_USER_MINOR),
    inMaxFds: CapDefaults.maxMsgFds,
    outMaxFds: CapDefaults.maxMsgFds,
    inMaxDataXfer: CapDefaults.maxDataXferSize,
    outMaxDataXfer: CapDefaults.maxDataXferSize,
    maxDmaMaps: Math.min(ours.maxDmaMaps, CapDefaults.maxDmaMaps),
    pgsizes: CapDefaults.pgsizes,
    migrationPgsize: CapDefaults.migrationPgsize,
    maxBitmapSize: Math.min(ours.maxBitmapSize, CapDefaults.maxBitmapSize),
    writeMultiple: false,
  };
  if ('max_msg_fds' in c) {
    caps.outMaxFds = uint(c.max_msg_fds, 'max_msg_fds', 253);
    caps.inMaxFds = ours.maxMsgFds;
    answer.max_msg_fds = ours.maxMsgFds;
  }
  if ('max_data_xfer_size' in c) {
    caps.outMaxDataXfer = uint(c.max_data_xfer_size, 'max_data_xfer_size');
    if (caps.outMaxDataXfer === 0) throw refuse(Errno.EINVAL, 'VERSION capability max_data_xfer_size must be > 0');
    caps.inMaxDataXfer = ours.maxDataXferSize;
    answer.max_data_xfer_size = ours.maxDataXferSize;
  }
  if ('pgsizes' in c) {
    const p = uint(c.pgsizes, 'pgsizes');
    if ((p & ours.pgsizes) === 0) {
      throw refuse(Errno.EINVAL, `client page sizes 0x${p.toString(16)} share none with ours (0x${ours.pgsizes.toString(16)})`, 'support 4 KiB DMA pages');
    }
    caps.pgsizes = p & ours.pgsizes;
    answer.pgsizes = caps.pgsizes;
  }
  if ('max_dma_maps' in c) {
    const m = uint(c.max_dma_maps, 'max_dma_maps');
    caps.maxDmaMaps = Math.min(m, ours.maxDmaMaps);
    answer.max_dma_maps = caps.maxDmaMaps;
  }
  if ('migration' in c) {
    const mig = c.migration;
    if (mig === null || typeof mig !== 'object' || Array.isArray(mig)) throw refuse(Errno.EINVAL, 'VERSION capability migration is not an object');
    const m = mig as Json;
    const out: Json = {};
    if ('pgsize' in m) {
      const p = uint(m.pgsize, 'migration.pgsize');
      if (p === 0 || (p & (p - 1)) !== 0 || p < 4096) throw refuse(Errno.EINVAL, `migration.pgsize ${p} is not a power of two ≥ 4096`);
      caps.migrationPgsize = Math.max(p, ours.migrationPgsize);
      out.pgsize = caps.migrationPgsize;
    }
    if ('max_bitmap_size' in m) {
      caps.maxBitmapSize = Math.min(uint(m.max_bitmap_size, 'migration.max_bitmap_size'), ours.maxBitmapSize);
      out.max_bitmap_size = caps.maxBitmapSize;
    }
    answer.migration = out;
  }
  if ('write_multiple' in c) {
    if (typeof c.write_multiple !== 'boolean') throw refuse(Errno.EINVAL, 'VERSION capability write_multiple is not a boolean');
    caps.writeMultiple = c.write_multiple && ours.writeMultiple;
    answer.write_multiple = caps.writeMultiple;
  }
  // twin_socket and unknown keys: not supported, so not named in the reply (the client then runs without them).
  const json = Buffer.from(JSON.stringify({ capabilities: answer }), 'utf8');
  const reply = Buffer.alloc(4 + json.length + 1);
  reply.writeUInt16LE(caps.major, 0);
  reply.writeUInt16LE(caps.minor, 2);
  json.copy(reply, 4);
  return { caps, reply };
}

/** Largest inbound message a connection with these limits accepts (REGION_WRITE / MIG_DATA_WRITE are the largest). */
export function maxInboundMessage(caps: Pick<NegotiatedCaps, 'inMaxDataXfer'>): number {
  return 16 + 16 + caps.inMaxDataXfer;
}
