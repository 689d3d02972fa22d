/**
 * Channels contract: the reserved pool of hardware channel IDs (CHIDs) for vGPUs and the copy-engine channel the
 * manager uses to scrub FB (docs/reference/core-driver-interface.md duty 2 and ops 11–13 and 21–27,
 * docs/reference/copy-engine-scrub.md).
 */
import type { FbRange } from './memory.js';
import type { RpcOptions } from './firmware.js';

export interface ChannelRange {
  readonly offset: number;
  readonly count: number;
  readonly owner: string;
}

export interface ChannelStats {
  total: number;
  used: number;
  largestFree: number;
}

/** How a range is mapped into a channel's GPU address space (docs/reference/core-driver-interface.md map_mem_info). */
export interface ChannelMapOptions {
  offset?: bigint;
  size?: bigint;
  hugePage?: boolean;
  compressibleDisable?: boolean;
}

/** A copy-engine channel bound to one CHID, with its pushbuffer (ops 23–27). */
export interface CopyChannel {
  readonly chid: number;
  /** RM handle of the CE object bound on subchannel 0 (method 0x000). */
  readonly objectHandle: number;
  /** Pushbuffer capacity in dwords. */
  readonly pushbufDwords: number;
  /** Map an FB range into this channel's VA space; returns the GPU virtual address (op 21). */
  mapMemory(range: FbRange, opts?: ChannelMapOptions): bigint;
  unmapMemory(gpuVa: bigint): void;
  /** Reserve room for `dwords` method dwords (op 25). */
  begin(dwords: number): void;
  emit(dword: number): void;
  /** Kick the pushbuffer (op 27); completion is signalled by a FIFO non-stall event for this CHID. */
  submit(opts?: RpcOptions): Promise<void>;
  free(): Promise<void>;
}

export interface ChannelPool {
  /** CHIDs available to the vGPU manager (op 13). */
  readonly total: number;
  /** Allocate `count` contiguous CHIDs (op 11); throws VGPU_ENOSPC when no run is free. */
  alloc(count: number, owner: string, opts?: { at?: number }): ChannelRange;
  free(range: ChannelRange): void;
  stats(): ChannelStats;
  list(): ChannelRange[];
  /** Allocate a copy-engine channel on CHID `chid` (op 23; the scrub uses the vGPU's last CHID). */
  allocCopyChannel(chid: number, owner: string): Promise<CopyChannel>;
}
