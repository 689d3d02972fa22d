/**
 * VERSION: the first message of a connection (QEMU docs/interop/vfio-user.rst "VFIO_USER_VERSION").
 *
 * The client proposes a version and capabilities; the reply must keep the major, may lower the minor, and may only
 * carry a subset of the proposed capabilities. Limits are per direction: a peer's max_msg_fds / max_data_xfer_size /
 * max_dma_maps / pgsizes say what *that peer* can take, so the client keeps to the server's values when it sends and
 * the server must keep to the client's (QEMU spec: "The count field must not exceed the value of
 * max_data_xfer_size of the peer"). A capability the reply leaves out takes the spec's default (max_msg_fds 1!).
 */
import { Version } from '../wire/spec-structs.js';
import { CAP_DEFAULTS, Cmd, HDR_ERROR, PROTOCOL_MAJOR, PROTOCOL_MINOR } from '../wire/spec-constants.js';
import { VfioUserErrnoError, VfioUserProtocolError } from '../wire/errors.js';
import type { VfioUserConnection } from '../wire/vfio-user-connection.js';
import { loadFdOps } from '../wire/fd-ops.js';

export interface MigrationCaps {
  pgsize: number;
  max_bitmap_size: number;
}

/** Capabilities as they go in the JSON (names from the QEMU spec's table; migration as QEMU's client sends it). */
export interface Capabilities {
  max_msg_fds?: number;
  max_data_xfer_size?: number;
  max_dma_maps?: number;
  pgsizes?: number;
  migration?: MigrationCaps;
  write_multiple?: boolean;
  twin_socket?: { supported?: boolean; fd_index?: number };
  [other: string]: unknown;
}

export interface VersionProposal {
  major?: number;
  minor?: number;
  /** undefined = no JSON at all (the version data is optional); otherwise sent as {"capabilities": …}. */
  capabilities?: Capabilities;
}

/** What both sides settled on. `toServer` = limits the client keeps to; `toClient` = limits the server must keep to. */
export interface Negotiated {
  major: number;
  minor: number;
  /** The reply's capabilities object as sent (undefined when the reply carried no JSON). */
  serverCapabilities: Capabilities | undefined;
  toServer: { maxMsgFds: number; maxDataXferSize: number; maxDmaMaps: number; pgsizes: number };
  toClient: { maxMsgFds: number; maxDataXferSize: number };
  /** REGION_WRITE_MULTI may be used: proposed and accepted. */
  writeMultiple: boolean;
  migration: MigrationCaps | undefined;
}

export const DEFAULT_PROPOSAL: Required<Pick<VersionProposal, 'major' | 'minor'>> & { capabilities: Capabilities } = {
  major: PROTOCOL_MAJOR,
  minor: PROTOCOL_MINOR,
  capabilities: {
    max_msg_fds: 16,
    max_data_xfer_size: CAP_DEFAULTS.max_data_xfer_size,
    pgsizes: 4096,
    max_dma_maps: CAP_DEFAULTS.max_dma_maps,
    migration: { pgsize: 4096, max_bitmap_size: 256 * 1024 * 1024 },
    write_multiple: true,
  },
};

/** The VERSION payload: u16 major, u16 minor, then the JSON with its terminating NUL (when there are caps). */
export function encodeVersion(p: VersionProposal): Buffer {
  const head = Version.pack({ major: p.major ?? PROTOCOL_MAJOR, minor: p.minor ?? PROTOCOL_MINOR });
  if (p.capabilities === undefined) return head;
  return Buffer.concat([head, Buffer.from(JSON.stringify({ capabilities: p.capabilities }), 'utf8'), Buffer.from([0])]);
}

/** Check a VERSION reply against the proposal and the spec's rules; throws VfioUserProtocolError on a breach. */
export function decodeVersionReply(payload: Buffer, p: VersionProposal): Negotiated {
  const major = p.major ?? PROTOCOL_MAJOR;
  const minor = p.minor ?? PROTOCOL_MINOR;
  if (payload.length < Version.size) throw new VfioUserProtocolError(`VERSION reply of ${payload.length} bytes (needs at least 4)`);
  const v = Version.unpack(payload);
  if (v.major !== major) throw new VfioUserProtocolError(`VERSION reply major ${v.major}, proposed ${major} (must be the same)`);
  if (v.minor > minor) throw new VfioUserProtocolError(`VERSION reply minor ${v.minor} above the proposed ${minor}`);
  let caps: Capabilities | undefined;
  if (payload.length > Version.size) {
    const json = payload.subarray(Version.size);
    if (json[json.length - 1] !== 0) throw new VfioUserProtocolError('VERSION reply JSON is not NUL-terminated');
    let obj: unknown;
    try {
      obj = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(json.subarray(0, json.length - 1)));
    } catch (e) {
      throw new VfioUserProtocolError(`VERSION reply JSON does not parse: ${(e as Error).message}`);
    }
    if (!isObject(obj)) throw new VfioUserProtocolError('VERSION reply JSON is not an object');
    if (obj.capabilities !== undefined) {
      if (!isObject(obj.capabilities)) throw new VfioUserProtocolError('VERSION reply "capabilities" is not an object');
      caps = obj.capabilities as Capabilities;
    }
  }
  const proposed = p.capabilities ?? {};
  for (const k of Object.keys(caps ?? {})) {
    if (!(k in proposed)) throw new VfioUserProtocolError(`VERSION reply capability "${k}" was not proposed (the reply's capabilities must be a subset)`);
  }
  const num = (k: 'max_msg_fds' | 'max_data_xfer_size' | 'max_dma_maps' | 'pgsizes', dflt: number): number => {
    const x = caps?.[k];
    if (x === undefined) return dflt;
    if (typeof x !== 'number' || !Number.isSafeInteger(x) || x < 0) throw new VfioUserProtocolError(`VERSION reply ${k} = ${JSON.stringify(x)} is not a count`);
    return x;
  };
  if (caps?.write_multiple !== undefined && typeof caps.write_multiple !== 'boolean') {
    throw new VfioUserProtocolError(`VERSION reply write_multiple = ${JSON.stringify(caps.write_multiple)} is not a boolean`);
  }
  let migration: MigrationCaps | undefined;
  if (caps?.migration !== undefined) {
    const m = caps.migration as unknown;
    if (!isObject(m) || typeof m.pgsize !== 'number' || typeof m.max_bitmap_size !== 'number') {
      throw new VfioUserProtocolError(`VERSION reply migration = ${JSON.stringify(m)} lacks numeric pgsize / max_bitmap_size`);
    }
    migration = { pgsize: m.pgsize, max_bitmap_size: m.max_bitmap_size };
  }
  const mine = (k: 'max_msg_fds' | 'max_data_xfer_size'): number => (proposed[k] as number | undefined) ?? CAP_DEFAULTS[k];
  return {
    major: v.major,
    minor: v.minor,
    serverCapabilities: caps,
    toServer: {
      maxMsgFds: num('max_msg_fds', CAP_DEFAULTS.max_msg_fds),
      maxDataXferSize: num('max_data_xfer_size', CAP_DEFAULTS.max_data_xfer_size),
      maxDmaMaps: num('max_dma_maps', CAP_DEFAULTS.max_dma_maps),
      pgsizes: num('pgsizes', CAP_DEFAULTS.pgsizes),
    },
    toClient: { maxMsgFds: mine('max_msg_fds'), maxDataXferSize: mine('max_data_xfer_size') },
    writeMultiple: proposed.write_multiple === true && caps?.write_multiple === true,
    migration,
  };
}

/** Send VERSION and check the reply. An error reply rejects with VfioUserErrnoError. */
export async function negotiate(conn: VfioUserConnection, p: VersionProposal = DEFAULT_PROPOSAL): Promise<Negotiated> {
  const r = await conn.request(Cmd.VERSION, encodeVersion(p));
  if ((r.flags & HDR_ERROR) !== 0) throw new VfioUserErrnoError(Cmd.VERSION, r.error);
  if (r.fds.length > 0) {
    for (const fd of r.fds) loadFdOps().closeFd(fd);
    throw new VfioUserProtocolError(`VERSION reply carried ${r.fds.length} descriptors (twin_socket was not asked for)`);
  }
  return decodeVersionReply(r.payload, p);
}

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}
