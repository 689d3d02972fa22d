/**
 * Shared definitions of the guest-writer worker: its start data and the control block (a small SAB both sides
 * touch with Atomics, so pause/stop take effect between two page writes without waiting for a message loop).
 */
export type ArenaRef = { sab: SharedArrayBuffer } | { path: string };
export type WritePattern = 'random' | 'sequential' | 'hot';

export interface GuestWriterInit {
  arena: ArenaRef;
  /** Region of the arena the guest writes (its FB): decimal strings (bigint does not survive structured clone
   *  on every path we care about, strings do). */
  base: string;
  size: string;
  pageSize: number;
  rateMiBps: number;
  pattern: WritePattern;
  /** 'hot': fraction of the FB that takes 90 % of the writes. */
  hotFraction: number;
  seed: number;
  dirtyLog?: { arena: ArenaRef; offset: string };
  /** Touch every page of the mapping (rewrite one word with its own value) before writing: see GuestWriterOptions. */
  prefault?: boolean;
  /** Back the FB without writing it before writing (SharedArena.reserve): see GuestWriterOptions. */
  reserveFb?: boolean;
  control: SharedArrayBuffer;
}

/** Int32 slots of the control block. */
export const CTL_CMD = 0; // written by the parent
export const CTL_STATE = 1; // acknowledged by the worker
/** BigInt64 slot (byte offset 8 → index 1 of a BigInt64Array): bytes written so far. */
export const CTL_BYTES_INDEX = 1;
export const CONTROL_BYTES = 16;

export const Cmd = { RUN: 0, PAUSE: 1, STOP: 2 } as const;
export const State = { STARTING: 0, RUNNING: 1, PAUSED: 2, STOPPED: 3 } as const;
