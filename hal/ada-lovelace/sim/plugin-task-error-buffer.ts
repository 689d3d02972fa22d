/**
 * The GSP plugin error buffer (mgmt heap 0x203000, 4 KiB, GSP → host; docs/reference/host-rpc-mailbox.md): its record
 * format is not public, so the simulator defines one. 64 fixed records of 64 bytes, a ring indexed by two counters:
 *
 *   PUT = response.error_buff_gsp_put_idx  (records ever written by the plugin task, u32, wraps)
 *   GET = ctrl.error_buff_cpu_get_idx      (records the host has consumed; the host writes it)
 *
 * Record i lives at slot (i mod 64): {seq u32 @0, message_type u32 @4, result_code u32 @8, time (ms, low 32 bits)
 * u32 @12, text[48] UTF-8 NUL-padded @16}. The plugin never waits for the host: when PUT − GET would exceed 64 the
 * oldest unread record is overwritten, and a host seeing PUT − GET > 64 knows it lost PUT − GET − 64 records.
 */
import { CTRL_BUFFER, MgmtHeap, RESPONSE_BUFFER } from '../../../core/firmware-abi/vgpu-mailbox.js';

export const ERROR_RECORD_BYTES = 64;
export const ERROR_RECORDS = MgmtHeap.ERROR_SIZE / ERROR_RECORD_BYTES;
export const ERROR_TEXT_BYTES = 48;
export const ERROR_PUT_OFFSET = MgmtHeap.RESPONSE_OFFSET + RESPONSE_BUFFER.offsetOf('error_buff_gsp_put_idx');
export const ERROR_GET_OFFSET = MgmtHeap.CTRL_OFFSET + CTRL_BUFFER.offsetOf('error_buff_cpu_get_idx');

export interface ErrorRecord {
  /** Index of the record (PUT value it was written at). */
  index: number;
  seq: number;
  messageType: number;
  resultCode: number;
  timeMs: number;
  text: string;
}

/** Write one record into the error area `err` (a 4 KiB view) at index `put`. Returns the new PUT. */
export function writeErrorRecord(err: Buffer, put: number, r: Omit<ErrorRecord, 'index'>): number {
  const at = (put % ERROR_RECORDS) * ERROR_RECORD_BYTES;
  const rec = err.subarray(at, at + ERROR_RECORD_BYTES);
  rec.fill(0);
  rec.writeUInt32LE(r.seq >>> 0, 0);
  rec.writeUInt32LE(r.messageType >>> 0, 4);
  rec.writeUInt32LE(r.resultCode >>> 0, 8);
  rec.writeUInt32LE(r.timeMs >>> 0, 12);
  // Truncate on a character boundary so a reader never decodes half a UTF-8 sequence.
  let text = Buffer.from(r.text, 'utf8');
  if (text.byteLength > ERROR_TEXT_BYTES) text = Buffer.from(r.text.slice(0, ERROR_TEXT_BYTES), 'utf8').subarray(0, ERROR_TEXT_BYTES);
  while (text.byteLength > 0 && Buffer.from(text.toString('utf8'), 'utf8').byteLength !== text.byteLength) text = text.subarray(0, text.byteLength - 1);
  rec.set(text, 16);
  return (put + 1) >>> 0;
}

/** Records [get, put) still present in the ring (older ones were overwritten), oldest first. For hosts and tests. */
export function readErrorRecords(err: Uint8Array, get: number, put: number): ErrorRecord[] {
  const buf = Buffer.from(err.buffer, err.byteOffset, err.byteLength);
  const count = (put - get) >>> 0;
  const from = count > ERROR_RECORDS ? (put - ERROR_RECORDS) >>> 0 : get;
  const out: ErrorRecord[] = [];
  for (let i = from; i !== put; i = (i + 1) >>> 0) {
    const at = (i % ERROR_RECORDS) * ERROR_RECORD_BYTES;
    const rec = buf.subarray(at, at + ERROR_RECORD_BYTES);
    const raw = rec.subarray(16, 16 + ERROR_TEXT_BYTES);
    const end = raw.indexOf(0);
    out.push({
      index: i, seq: rec.readUInt32LE(0), messageType: rec.readUInt32LE(4), resultCode: rec.readUInt32LE(8),
      timeMs: rec.readUInt32LE(12), text: raw.subarray(0, end < 0 ? raw.byteLength : end).toString('utf8'),
    });
  }
  return out;
}
