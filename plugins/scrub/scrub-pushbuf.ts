/**
 * The scrub's pushbuffer (docs/reference/copy-engine-scrub.md steps 5 and 7), built exactly as the upstream driver
 * emits it, method by method against the Ampere/Ada DMA-copy class. Pure functions: no channel, no I/O, so tests
 * compare dwords.
 */
import { ErrorCode, VgpuError } from '../../core/contracts/exceptions.js';
import { CE, methodHeader, splitVa } from '../../hal/sim/ce/ce-methods.js';

/** begin_pushbuf(150): what upstream reserves; the layout below uses 54 of them. */
export const SCRUB_PUSHBUF_DWORDS = 150;
/** Upstream's NOP padding in front of the methods. */
export const SCRUB_NOPS = 32;
/** Payload the engine writes into the semaphore word when the memset is done. */
export const SCRUB_SEMAPHORE_PAYLOAD = 0xdeadbeef;
/** dst X = CONST_A, 4-byte components, 1 component: a 32-bit memset. */
export const REMAP_MEMSET_32 = 0x30004;
/** Pipelined, flush, pitch src and dst, multi-line, remap (memset). */
export const LAUNCH_MEMSET = 0x785;
/** No transfer, flush, release a one-word semaphore, non-blocking interrupt (the FIFO non-stall IRQ). */
export const LAUNCH_SEMAPHORE = 0x5cc;
/** Longest line the engine's 32-bit pitch takes comfortably: 2 GiB. */
export const MAX_LINE_BYTES = 0x8000_0000n;
/** Upstream sends the class methods on subchannel 4 after binding the object on subchannel 0. */
const SUBCH_BIND = 0;
const SUBCH_CE = 4;

export interface LineSplit {
  lineBytes: bigint;
  lineCount: number;
}

/**
 * Upstream: one line of `bytes`; while the line is longer than 2 GiB, halve it and double the count. Upstream
 * silently drops the remainder when a halving is inexact; here that is an error instead (do better than the
 * quirk: a scrub that skips bytes is a leak).
 */
export function splitLines(bytes: bigint): LineSplit {
  if (bytes <= 0n || bytes % 4n !== 0n) {
    throw new VgpuError(ErrorCode.InvalidArgument, `cannot scrub ${bytes} bytes: need a positive multiple of 4`, {
      hint: 'scrub whole FB ranges (they are page aligned)',
    });
  }
  let lineBytes = bytes;
  let lineCount = 1;
  while (lineBytes > MAX_LINE_BYTES) {
    lineBytes /= 2n;
    lineCount *= 2;
  }
  if (lineBytes * BigInt(lineCount) !== bytes || lineBytes % 4n !== 0n) {
    throw new VgpuError(ErrorCode.InvalidArgument, `${bytes} bytes do not split into equal lines of ≤ 2 GiB`, {
      hint: 'scrub in chunks whose size is a power-of-two multiple of a ≤ 2 GiB line (page-aligned FB ranges of < 2 TiB always are)',
      details: { bytes: String(bytes), lineBytes: String(lineBytes), lineCount },
    });
  }
  return { lineBytes, lineCount };
}

export interface ScrubPushbufParams {
  objectHandle: number;
  /** Channel VA of the first byte to fill. */
  dstVa: bigint;
  bytes: bigint;
  pattern: number;
  /** Channel VA of the semaphore word. */
  semaphoreVa: bigint;
}

/** The dwords of one scrub submission, in upstream's order. */
export function buildScrubPushbuf(p: ScrubPushbufParams): number[] {
  const { lineBytes, lineCount } = splitLines(p.bytes);
  const line = Number(lineBytes);
  const m = (method: number, ...data: number[]): number[] => [methodHeader(SUBCH_CE, method, data.length), ...data.map((d) => d >>> 0)];
  return [
    ...new Array<number>(SCRUB_NOPS).fill(0),
    methodHeader(SUBCH_BIND, CE.SET_OBJECT, 1), p.objectHandle >>> 0,
    ...m(CE.SET_REMAP_COMPONENTS, REMAP_MEMSET_32),
    ...m(CE.SET_REMAP_CONST_A, p.pattern),
    ...m(CE.PITCH_IN, line, line, line / 4, lineCount),
    ...m(CE.OFFSET_OUT_UPPER, ...splitVa(p.dstVa)),
    ...m(CE.LAUNCH_DMA, LAUNCH_MEMSET),
    ...m(CE.SEMAPHORE_A, ...splitVa(p.semaphoreVa), SCRUB_SEMAPHORE_PAYLOAD),
    ...m(CE.LAUNCH_DMA, LAUNCH_SEMAPHORE),
  ];
}
