/**
 * Decodes a host pushbuffer into method writes and runs the few copy-engine operations the scrub uses (seed spec
 * §5): memset through the remap unit, pitch copies, and the one-word semaphore release. Shared by the mock and
 * usable by a simulator; it knows method offsets of the Ampere/Ada DMA-copy class and nothing else.
 *
 * Method header (host class): bits 31:29 = opcode (1 incrementing, 3 non-incrementing, 4 immediate, 5 one-incr),
 * 28:16 count (or the immediate value), 15:13 subchannel, 11:0 method >> 2. A zero dword is a NOP.
 */
export interface MethodWrite {
  subch: number;
  method: number;
  value: number;
}

export const CE = {
  SET_OBJECT: 0x000,
  SEMAPHORE_A: 0x240,
  SEMAPHORE_B: 0x244,
  SEMAPHORE_PAYLOAD: 0x248,
  LAUNCH_DMA: 0x300,
  OFFSET_IN_UPPER: 0x400,
  OFFSET_IN_LOWER: 0x404,
  OFFSET_OUT_UPPER: 0x408,
  OFFSET_OUT_LOWER: 0x40c,
  PITCH_IN: 0x410,
  PITCH_OUT: 0x414,
  LINE_LENGTH_IN: 0x418,
  LINE_COUNT: 0x41c,
  SET_REMAP_CONST_A: 0x700,
  SET_REMAP_CONST_B: 0x704,
  SET_REMAP_COMPONENTS: 0x708,
} as const;

/** Header for `count` incrementing methods starting at `method` on `subch`. */
export function methodHeader(subch: number, method: number, count: number): number {
  return (0x2000_0000 | (count << 16) | (subch << 13) | (method >> 2)) >>> 0;
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
    if (op !== 1 && op !== 3 && op !== 5) throw new Error(`unknown pushbuffer opcode ${op} in header 0x${h.toString(16)} at dword ${i - 1}`);
    if (i + count > dwords.length) throw new Error(`method 0x${method.toString(16)} wants ${count} data dwords, ${dwords.length - i} left`);
    for (let k = 0; k < count; k++) {
      const m = op === 1 ? method + 4 * k : op === 5 && k > 0 ? method + 4 : method;
      out.push({ subch, method: m, value: dwords[i++]! >>> 0 });
    }
  }
  return out;
}

/** What the engine needs from the channel: VA translation and the bytes. */
export interface CeTarget {
  fill(va: bigint, length: bigint, pattern: number): Promise<void>;
  copy(srcVa: bigint, dstVa: bigint, length: number): void;
  write32(va: bigint, value: number): void;
}

export interface CeRunResult {
  launches: number;
  semaphoreReleases: number;
  bytesWritten: bigint;
  nonstallInterrupts: number;
}

/** Execute the decoded methods against `target`. Throws on anything it cannot do (the caller turns that into RC). */
export async function runCopyEngine(writes: MethodWrite[], target: CeTarget): Promise<CeRunResult> {
  const reg = new Map<number, number>();
  const r = (m: number): number => reg.get(m) ?? 0;
  const res: CeRunResult = { launches: 0, semaphoreReleases: 0, bytesWritten: 0n, nonstallInterrupts: 0 };
  for (const w of writes) {
    if (w.method !== CE.LAUNCH_DMA) { reg.set(w.method, w.value); continue; }
    res.launches++;
    const v = w.value;
    const transfer = v & 3;
    const semaphore = (v >>> 3) & 3;
    const interrupt = (v >>> 5) & 3;
    const multiLine = ((v >>> 9) & 1) === 1;
    const remap = ((v >>> 10) & 1) === 1;
    if (transfer !== 0) {
      const lines = multiLine ? r(CE.LINE_COUNT) : 1;
      const dst = (BigInt(r(CE.OFFSET_OUT_UPPER) & 0x1ffffff) << 32n) | BigInt(r(CE.OFFSET_OUT_LOWER));
      const src = (BigInt(r(CE.OFFSET_IN_UPPER) & 0x1ffffff) << 32n) | BigInt(r(CE.OFFSET_IN_LOWER));
      const pitchOut = BigInt(r(CE.PITCH_OUT));
      const pitchIn = BigInt(r(CE.PITCH_IN));
      if (remap) {
        const comps = r(CE.SET_REMAP_COMPONENTS);
        const dstX = comps & 7;
        const compSize = ((comps >>> 16) & 3) + 1;
        const numComps = ((comps >>> 24) & 3) + 1;
        if (dstX !== 4 || compSize !== 4 || numComps !== 1) {
          throw new Error(`remap 0x${comps.toString(16)} is not a 32-bit constant memset (the mock only emulates that)`);
        }
        const lineBytes = BigInt(r(CE.LINE_LENGTH_IN)) * 4n;
        for (let l = 0; l < lines; l++) await target.fill(dst + BigInt(l) * pitchOut, lineBytes, r(CE.SET_REMAP_CONST_A));
        res.bytesWritten += lineBytes * BigInt(lines);
      } else {
        const lineBytes = r(CE.LINE_LENGTH_IN);
        for (let l = 0; l < lines; l++) target.copy(src + BigInt(l) * pitchIn, dst + BigInt(l) * pitchOut, lineBytes);
        res.bytesWritten += BigInt(lineBytes) * BigInt(lines);
      }
    }
    if (semaphore === 1) {
      const va = (BigInt(r(CE.SEMAPHORE_A) & 0x1ffffff) << 32n) | BigInt(r(CE.SEMAPHORE_B));
      target.write32(va, r(CE.SEMAPHORE_PAYLOAD));
      res.semaphoreReleases++;
    } else if (semaphore !== 0) {
      throw new Error(`semaphore type ${semaphore} is not emulated (only one-word release)`);
    }
    if (interrupt === 2) res.nonstallInterrupts++;
  }
  return res;
}
