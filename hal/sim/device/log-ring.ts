/**
 * A byte ring for firmware logs, laid out in shared memory so the host can snapshot it synchronously
 * (Firmware.readLog) while the firmware thread appends. Used for GSP-RM's own log (device region) and for the
 * three per-vGPU log areas inside each vGPU's management heap in FB (docs/reference/host-rpc-mailbox.md).
 *
 *   +0  magic 'LOGR' (u32)   +4 capacity: data bytes (u32)   +8 written: total bytes ever appended (u32, wraps)
 *   +12 reserved             +16 data[capacity]
 *
 * The real layout of these buffers is not public (docs/reference/host-rpc-mailbox.md); this one is the simulator's
 * choice. Single writer (the firmware thread); a reader may see a line being written, which is acceptable for logs.
 */
export const LOG_RING_MAGIC = 0x52474f4c; // 'LOGR'
export const LOG_RING_HEADER = 16;

/** Format `buf` as an empty ring (idempotent on an existing ring of the same capacity: keeps its contents). */
export function initLogRing(buf: Buffer, opts: { reset?: boolean } = {}): void {
  const capacity = buf.byteLength - LOG_RING_HEADER;
  if (capacity <= 0) throw new RangeError(`log ring needs more than ${LOG_RING_HEADER} bytes, got ${buf.byteLength}`);
  if (!opts.reset && buf.readUInt32LE(0) === LOG_RING_MAGIC && buf.readUInt32LE(4) === capacity) return;
  buf.writeUInt32LE(LOG_RING_MAGIC, 0);
  buf.writeUInt32LE(capacity, 4);
  buf.writeUInt32LE(0, 8);
  buf.writeUInt32LE(0, 12);
}

export function isLogRing(buf: Buffer): boolean {
  return buf.byteLength > LOG_RING_HEADER && buf.readUInt32LE(0) === LOG_RING_MAGIC &&
    buf.readUInt32LE(4) === buf.byteLength - LOG_RING_HEADER;
}

/** Append bytes (a line should end in '\n'); older bytes are overwritten once the ring is full. */
export function appendLogRing(buf: Buffer, data: Uint8Array | string): void {
  if (!isLogRing(buf)) initLogRing(buf);
  const capacity = buf.readUInt32LE(4);
  const written = buf.readUInt32LE(8);
  if (typeof data === 'string') {
    // A line that fits before the ring's end goes straight in as UTF-8, with no intermediate buffer (the simulated
    // firmware logs several lines per create); one that would wrap takes the byte path below.
    const pos = written % capacity;
    const len = Buffer.byteLength(data, 'utf8');
    if (len <= capacity - pos) {
      buf.write(data, LOG_RING_HEADER + pos, len, 'utf8');
      buf.writeUInt32LE((written + len) >>> 0, 8);
      return;
    }
  }
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  // Only the last `capacity` bytes of an oversized append can survive.
  const src = bytes.byteLength > capacity ? bytes.subarray(bytes.byteLength - capacity) : bytes;
  let pos = (written + (bytes.byteLength - src.byteLength)) % capacity;
  let done = 0;
  while (done < src.byteLength) {
    const n = Math.min(capacity - pos, src.byteLength - done);
    buf.set(src.subarray(done, done + n), LOG_RING_HEADER + pos);
    done += n;
    pos = (pos + n) % capacity;
  }
  buf.writeUInt32LE((written + bytes.byteLength) >>> 0, 8);
}

/** The ring's contents, oldest byte first (a copy). An unformatted buffer reads as empty. */
export function readLogRing(buf: Buffer): Uint8Array {
  if (!isLogRing(buf)) return new Uint8Array(0);
  const capacity = buf.readUInt32LE(4);
  const written = buf.readUInt32LE(8);
  const wrapped = written >= capacity; // u32 wrap after 4 GiB of logs is harmless: then it has wrapped anyway
  const len = wrapped ? capacity : written;
  const start = wrapped ? written % capacity : 0;
  const out = new Uint8Array(len);
  const first = Math.min(capacity - start, len);
  out.set(buf.subarray(LOG_RING_HEADER + start, LOG_RING_HEADER + start + first), 0);
  if (first < len) out.set(buf.subarray(LOG_RING_HEADER, LOG_RING_HEADER + (len - first)), first);
  return out;
}

/**
 * What the ring received since `cursor` (a value of its running `written` count): the new bytes, the next cursor, and
 * how many bytes since the cursor the ring no longer holds because it wrapped. A cursor from a ring that was
 * re-initialised since (written went back below it) restarts from the oldest byte kept.
 */
export function readLogRingSince(buf: Buffer, cursor: number): { text: Uint8Array; cursor: number; lost: number } {
  if (!isLogRing(buf)) return { text: new Uint8Array(0), cursor: 0, lost: 0 };
  const capacity = buf.readUInt32LE(4);
  const written = buf.readUInt32LE(8);
  let from = cursor >>> 0;
  let delta = (written - from) >>> 0;
  if (delta > written && written < capacity) {
    // The ring was reset under us (a new task on this gfid): everything in it is new.
    from = 0;
    delta = written;
  }
  const lost = delta > capacity ? delta - capacity : 0;
  const len = delta - lost;
  const out = new Uint8Array(len);
  if (len > 0) {
    const start = ((written - len) >>> 0) % capacity;
    const first = Math.min(capacity - start, len);
    out.set(buf.subarray(LOG_RING_HEADER + start, LOG_RING_HEADER + start + first), 0);
    if (first < len) out.set(buf.subarray(LOG_RING_HEADER, LOG_RING_HEADER + (len - first)), first);
  }
  return { text: out, cursor: written, lost };
}

let stampMs = -1;
let stampText = '';

/**
 * `[<ISO time>] <line>\n`, the simulated firmware's log-line format. The ISO text is made once per millisecond: a
 * create writes several lines within the same one.
 */
export function logLine(line: string): string {
  const now = Date.now();
  if (now !== stampMs) {
    stampMs = now;
    stampText = new Date(now).toISOString();
  }
  return `[${stampText}] ${line}\n`;
}
