/**
 * Method numbers and LAUNCH_DMA fields of the DMA-copy class (the Ampere/Ada layout, AMPERE_DMA_COPY_B), and the
 * host-class method header. Only what a scrub and a plain pitch copy use; the copy engines of older and newer
 * generations keep these offsets, which is why the simulated engine in this folder is generation-neutral.
 */
export const CE = {
  /** Host method: bind an object (its RM handle) to the subchannel of the header. */
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

/** LAUNCH_DMA fields (bit positions of the class header). */
export const LaunchDma = {
  /** 1:0 DATA_TRANSFER_TYPE: 0 none, 1 pipelined, 2 non-pipelined. */
  transferType: (v: number): number => v & 3,
  /** 2 FLUSH_ENABLE. */
  flush: (v: number): boolean => ((v >>> 2) & 1) === 1,
  /** 4:3 SEMAPHORE_TYPE: 0 none, 1 release one word, 2 release four words (with timestamp). */
  semaphoreType: (v: number): number => (v >>> 3) & 3,
  /** 6:5 INTERRUPT_TYPE: 0 none, 1 blocking (stall), 2 non-blocking (the FIFO non-stall interrupt). */
  interruptType: (v: number): number => (v >>> 5) & 3,
  /** 9 MULTI_LINE_ENABLE. */
  multiLine: (v: number): boolean => ((v >>> 9) & 1) === 1,
  /** 10 REMAP_ENABLE: the source is the remap constants (a memset), not memory. */
  remap: (v: number): boolean => ((v >>> 10) & 1) === 1,
} as const;

export const SEMAPHORE_RELEASE_ONE_WORD = 1;
export const INTERRUPT_NON_BLOCKING = 2;

/** SET_REMAP_COMPONENTS fields. */
export const RemapComponents = {
  /** 2:0 DST_X: 4 = CONST_A. */
  dstX: (v: number): number => v & 7,
  /** 17:16 COMPONENT_SIZE: value + 1 bytes. */
  componentBytes: (v: number): number => ((v >>> 16) & 3) + 1,
  /** 25:24 NUM_DST_COMPONENTS: value + 1. */
  dstComponents: (v: number): number => ((v >>> 24) & 3) + 1,
} as const;

/** Header for `count` incrementing methods starting at `method` on `subch` (opcode 1). */
export function methodHeader(subch: number, method: number, count: number): number {
  return (0x2000_0000 | (count << 16) | (subch << 13) | (method >> 2)) >>> 0;
}

/** A 40-bit GPU VA as the class's UPPER/LOWER method pair. */
export function splitVa(va: bigint): [upper: number, lower: number] {
  return [Number((va >> 32n) & 0xffff_ffffn), Number(va & 0xffff_ffffn)];
}

/** The inverse of splitVa (UPPER keeps 25 significant bits in the class). */
export function joinVa(upper: number, lower: number): bigint {
  return (BigInt(upper & 0x1ff_ffff) << 32n) | BigInt(lower >>> 0);
}
