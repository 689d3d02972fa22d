/**
 * Turns successive snapshots of one firmware log area into "the lines that are new since last time".
 *
 * `Firmware.readLog` returns what the area holds now, oldest byte first: on the simulator a ring (older text
 * falls out once it wraps), on the mock everything ever appended. So the reader keeps the previous snapshot and:
 *  - if the new one starts with it, the rest is new (the common case, and always so before a ring wraps);
 *  - otherwise the ring moved by d bytes and the new snapshot starts with the previous one minus its first d
 *    bytes: find that d and take what follows; if nothing of the previous snapshot is left (more than a ring's
 *    worth written between two drains), everything after the first (cut) line is new and a marker line says so.
 * An empty snapshot after a non-empty one (the area was released at cleanup) is "nothing new", not a reset.
 * Only complete lines are returned; a partial last line waits for its newline (or for `flush`).
 */
const PROBE = 32;

/**
 * A ring that moved by d bytes reads as prev[d..] followed by new text: the length of that kept part (bytes of
 * `snap` already seen), or −1 when none of `prev` is left. d = 0 is the append-only case.
 */
function overlap(prev: Buffer, snap: Buffer): number {
  if (snap.byteLength >= prev.byteLength && snap.subarray(0, prev.byteLength).equals(prev)) return prev.byteLength;
  const probe = snap.subarray(0, Math.min(PROBE, snap.byteLength));
  for (let d = prev.indexOf(probe, 1); d >= 0; d = prev.indexOf(probe, d + 1)) {
    const keep = prev.byteLength - d;
    if (keep <= snap.byteLength && snap.subarray(0, keep).equals(prev.subarray(d))) return keep;
  }
  return -1;
}

export class LogAreaReader {
  private prev: Buffer = Buffer.alloc(0);
  private partial = '';

  /** New complete lines in `snapshot` (trailing NULs and CRs dropped). */
  next(snapshot: Uint8Array): string[] {
    const snap = Buffer.from(snapshot.buffer, snapshot.byteOffset, snapshot.byteLength);
    if (snap.byteLength === 0) return [];
    let fresh: Buffer;
    let lost = false;
    const p = this.prev;
    const kept = p.byteLength === 0 ? -1 : overlap(p, snap);
    if (p.byteLength === 0) fresh = snap;
    else if (kept >= 0) fresh = snap.subarray(kept);
    else {
      // Nothing of the last snapshot survived: the first line is cut at the ring boundary, so skip to the next.
      const nl = snap.indexOf(0x0a);
      fresh = nl >= 0 ? snap.subarray(nl + 1) : Buffer.alloc(0);
      this.partial = '';
      lost = true;
    }
    this.prev = Buffer.from(snap); // a copy: the snapshot may be a live view
    const text = this.partial + fresh.toString('utf8').replace(/\0+/g, '');
    const parts = text.split('\n');
    this.partial = parts.pop() ?? '';
    const lines = parts.map((l) => l.replace(/\r$/, '')).filter((l) => l.length > 0);
    if (lost) lines.unshift('[log text lost: the firmware ring wrapped between two drains]');
    return lines;
  }

  /** A partial last line, returned once at the final drain. */
  flush(): string[] {
    const l = this.partial;
    this.partial = '';
    return l.length > 0 ? [l] : [];
  }
}

/**
 * The same for a firmware that can say what is new itself (Firmware.readLogSince): it keeps a cursor and the last
 * partial line, never a copy of the area — which for 256 vGPUs × 3 areas was most of the drainer's memory and all of
 * its CPU (every drain copied and compared every area).
 */
export class LogCursorReader {
  private cursor = 0;
  private partial = '';

  /** Where the next read starts. */
  get position(): number {
    return this.cursor;
  }

  /** New complete lines of a chunk read from `position` (trailing NULs and CRs dropped). */
  next(chunk: { text: Uint8Array; cursor: number; lost: number }): string[] {
    this.cursor = chunk.cursor;
    if (chunk.text.byteLength === 0 && chunk.lost === 0) return [];
    let text = Buffer.from(chunk.text.buffer, chunk.text.byteOffset, chunk.text.byteLength).toString('utf8').replace(/\0+/g, '');
    const lines: string[] = [];
    if (chunk.lost > 0) {
      // The ring wrapped past what we had read: the first line we see is cut; skip to the next whole one.
      lines.push('[log text lost: the firmware ring wrapped between two drains]');
      const nl = text.indexOf('\n');
      text = nl >= 0 ? text.slice(nl + 1) : '';
      this.partial = '';
    }
    const parts = (this.partial + text).split('\n');
    this.partial = parts.pop() ?? '';
    for (const l of parts) {
      const line = l.replace(/\r$/, '');
      if (line.length > 0) lines.push(line);
    }
    return lines;
  }

  /** A partial last line, returned once at the final drain. */
  flush(): string[] {
    const l = this.partial;
    this.partial = '';
    return l.length > 0 ? [l] : [];
  }
}
