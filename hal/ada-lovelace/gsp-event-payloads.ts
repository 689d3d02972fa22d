/**
 * Payloads of the GSP → host events the Ada firmware raises (docs/reference/gsp-queues.md), shared by the simulator
 * (encode) and the HAL (decode, to tag each event with the gfid it concerns).
 *
 * RC_TRIGGERED: rpc_rc_triggered_v17_02 head (source: nouveau r570 nvrm/fifo.h excerpt of OGKM 570.144:
 *   nv2080EngineType, chid, gfid, exceptLevel, exceptType, scope, partitionAttributionId u16, …); we carry the
 *   head only (the real struct continues with rcJournalBufferSize and a journal).
 * OS_ERROR_LOG: rpc_os_error_log_v17_00 {exceptType, runlistId, chid, errString[0x100]} (source: nouveau r535).
 * POST_EVENT: rpc_post_event_v17_00 head {hClient, hEvent, notifyIndex, data, info16 u16, status, eventDataSize}
 *   (source: nouveau r535 rpc_post_event_v17_00) [field order unverified past info16].
 * MMU_FAULT_QUEUED: a bare notification on silicon (the host then reads the fault buffer). The simulator has no
 *   fault buffer, so it carries its own record {gfid, engine, faultType, faultAddress u64} — simulator layout.
 */
import { StructLayout, cString, toCString } from '../../core/firmware-abi/struct-layout.js';
import { GspEvent } from '../gsp/gsp-layout.js';

export interface RcTriggered {
  nv2080EngineType: number;
  chid: number;
  gfid: number;
  exceptLevel: number;
  exceptType: number;
  scope: number;
  partitionAttributionId: number;
}
export const RC_TRIGGERED = new StructLayout<RcTriggered>('rpc_rc_triggered_v17_02', [
  { name: 'nv2080EngineType', type: 'u32' },
  { name: 'chid', type: 'u32' },
  { name: 'gfid', type: 'u32' },
  { name: 'exceptLevel', type: 'u32' },
  { name: 'exceptType', type: 'u32' },
  { name: 'scope', type: 'u32' },
  { name: 'partitionAttributionId', type: 'u16' },
]);

export interface MmuFaultQueued {
  gfid: number;
  engine: number;
  faultType: number;
  faultAddress: bigint;
}
export const MMU_FAULT_QUEUED = new StructLayout<MmuFaultQueued>('SimMmuFaultQueued', [
  { name: 'gfid', type: 'u32' },
  { name: 'engine', type: 'u32' },
  { name: 'faultType', type: 'u32' },
  { name: 'faultAddress', type: 'u64' },
]);

export const OS_ERROR_LOG_STRING_BYTES = 0x100;
export interface OsErrorLogRaw {
  exceptType: number;
  runlistId: number;
  chid: number;
  errString: Uint8Array;
}
export const OS_ERROR_LOG = new StructLayout<OsErrorLogRaw>('rpc_os_error_log_v17_00', [
  { name: 'exceptType', type: 'u32' },
  { name: 'runlistId', type: 'u32' },
  { name: 'chid', type: 'u32' },
  { name: 'errString', type: 'bytes', count: OS_ERROR_LOG_STRING_BYTES },
]);

export function encodeOsErrorLog(v: { exceptType?: number; runlistId?: number; chid?: number; message: string }): Uint8Array {
  const msg = v.message.length >= OS_ERROR_LOG_STRING_BYTES ? v.message.slice(0, OS_ERROR_LOG_STRING_BYTES - 1) : v.message;
  return OS_ERROR_LOG.encode({
    exceptType: v.exceptType ?? 0, runlistId: v.runlistId ?? 0, chid: v.chid ?? 0,
    errString: toCString(msg, OS_ERROR_LOG_STRING_BYTES, 'errString'),
  });
}

export function decodeOsErrorLog(b: Uint8Array): { exceptType: number; runlistId: number; chid: number; message: string } {
  const r = OS_ERROR_LOG.decode(b);
  return { exceptType: r.exceptType, runlistId: r.runlistId, chid: r.chid, message: cString(r.errString) };
}

export interface PostEvent {
  hClient: number;
  hEvent: number;
  notifyIndex: number;
  data: number;
  info16: number;
  status: number;
  eventDataSize: number;
}
export const POST_EVENT = new StructLayout<PostEvent>('rpc_post_event_v17_00', [
  { name: 'hClient', type: 'u32' },
  { name: 'hEvent', type: 'u32' },
  { name: 'notifyIndex', type: 'u32' },
  { name: 'data', type: 'u32' },
  { name: 'info16', type: 'u16' },
  { name: 'status', type: 'u32' },
  { name: 'eventDataSize', type: 'u32' },
]);

/** The gfid an event payload names, when its layout has one (RC, MMU fault); undefined otherwise. */
export function gfidFromEventPayload(eventId: number, payload: Uint8Array): number | undefined {
  try {
    if (eventId === GspEvent.RC_TRIGGERED && payload.byteLength >= RC_TRIGGERED.size) return RC_TRIGGERED.decode(payload).gfid;
    if (eventId === GspEvent.MMU_FAULT_QUEUED && payload.byteLength >= MMU_FAULT_QUEUED.size) return MMU_FAULT_QUEUED.decode(payload).gfid;
  } catch {
    return undefined;
  }
  return undefined;
}
