/**
 * Host events of the simulated PF (docs/reference/core-driver-interface.md: SRIOV_CONFIGURE, DRIVER_UNBIND; plus
 * suspend/resume, which v2 lists as a duty but never delivers): the device posts them into a small ring in the device
 * header, the Ada HAL watches it and calls its `onHostEvent` listeners. Both sides map the region, so this works in
 * worker and in process mode alike.
 *
 *   Header + 0x200  SEQ     u32  events ever posted (the device bumps it last, after the record is written)
 *   Header + 0x204  reserved
 *   Header + 0x208  8 records × 16 B: {kind u32, numVfs u32, seq u32, reserved u32}; record n at slot n mod 8
 *
 * Simulator layout (not a real register): a host that falls more than 8 events behind skips to the oldest kept.
 */
import type { HostEventKind } from '../../../core/contracts/events.js';
import type { SharedArena } from '../../../native/native-ops.js';
import { Region } from './device-layout.js';

export const HOST_EVENT_SEQ = Region.HEADER + 0x200;
const RECORDS = Region.HEADER + 0x208;
export const HOST_EVENT_SLOTS = 8;
const RECORD_BYTES = 16;

const KINDS: readonly HostEventKind[] = ['unbind', 'sriov-configure', 'suspend', 'resume'];

export interface HostEventRecord {
  kind: HostEventKind;
  numVfs?: number;
}

/** Device side: write the record, then publish it by bumping SEQ, and wake a sleeping host. */
export function postHostEvent(arena: SharedArena, e: HostEventRecord): number {
  const code = KINDS.indexOf(e.kind);
  if (code < 0) throw new RangeError(`unknown host event kind "${e.kind}"`);
  const seq = (arena.load32(BigInt(HOST_EVENT_SEQ)) + 1) >>> 0;
  const at = BigInt(RECORDS + (seq % HOST_EVENT_SLOTS) * RECORD_BYTES);
  arena.store32(at, code + 1);
  arena.store32(at + 4n, (e.numVfs ?? 0) >>> 0);
  arena.store32(at + 8n, seq);
  arena.store32(BigInt(HOST_EVENT_SEQ), seq);
  arena.wake32(BigInt(HOST_EVENT_SEQ));
  return seq;
}

export function hostEventSeq(arena: SharedArena): number {
  return arena.load32(BigInt(HOST_EVENT_SEQ));
}

/** Host side: the events after `since` up to the current SEQ (at most the 8 kept), and the new cursor. */
export function readHostEvents(arena: SharedArena, since: number): { events: HostEventRecord[]; seq: number } {
  const seq = hostEventSeq(arena);
  const behind = (seq - since) >>> 0;
  const from = behind > HOST_EVENT_SLOTS ? (seq - HOST_EVENT_SLOTS) >>> 0 : since;
  const events: HostEventRecord[] = [];
  for (let n = (from + 1) >>> 0; behind !== 0; n = (n + 1) >>> 0) {
    const at = BigInt(RECORDS + (n % HOST_EVENT_SLOTS) * RECORD_BYTES);
    const kind = KINDS[arena.load32(at) - 1];
    if (kind !== undefined && arena.load32(at + 8n) === n) {
      events.push(kind === 'sriov-configure' ? { kind, numVfs: arena.load32(at + 4n) } : { kind });
    }
    if (n === seq) break;
  }
  return { events, seq };
}
