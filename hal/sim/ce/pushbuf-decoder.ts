/**
 * Decodes a host pushbuffer into method writes.
 *
 * Method header (host class): bits 31:29 opcode (1 incrementing, 3 non-incrementing, 4 immediate, 5 increment
 * once), 28:16 count (or the immediate data), 15:13 subchannel, 11:0 method >> 2. A zero dword is a NOP.
 */
export interface MethodWrite {
  subch: number;
  method: number;
  value: number;
}

/** A pushbuffer the engine cannot parse; the channel turns it into a channel error (RC), never a crash. */
export class PushbufDecodeError extends Error {
  override readonly name = 'PushbufDecodeError';
}

export function decodePushbuf(dwords: ArrayLike<number>): MethodWrite[] {
  const out: MethodWrite[] = [];
  for (let i = 0; i < dwords.length; ) {
    const h = dwords[i++]! >>> 0;
    if (h === 0) continue;
    const op = h >>> 29;
    const count = (h >>> 16) & 0x1fff;
    const subch = (h >>> 13) & 7;
    const method = (h & 0xfff) << 2;
    if (op === 4) { out.push({ subch, method, value: count }); continue; }
    if (op !== 1 && op !== 3 && op !== 5) {
      throw new PushbufDecodeError(`unknown pushbuffer opcode ${op} in header 0x${h.toString(16)} at dword ${i - 1}`);
    }
    if (i + count > dwords.length) {
      throw new PushbufDecodeError(`method 0x${method.toString(16)} wants ${count} data dwords, ${dwords.length - i} left`);
    }
    for (let k = 0; k < count; k++) {
      const m = op === 1 ? method + 4 * k : op === 5 && k > 0 ? method + 4 : method;
      out.push({ subch, method: m, value: dwords[i++]! >>> 0 });
    }
  }
  return out;
}
