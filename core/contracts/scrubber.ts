/**
 * Scrubber contract: wipes a vGPU's framebuffer so no tenant ever sees another's data
 * (docs/reference/copy-engine-scrub.md). The scrub plugin implements it with the copy engine (the upstream driver's
 * path); the lifecycle calls it at create, after a device reset and at destroy, and publishes the returned record
 * (operators cannot otherwise see that a scrub happened).
 */
import type { PhysicalGpu } from './hal.js';
import type { FbRange } from './memory.js';
import type { ChannelRange } from './channels.js';
import type { ScrubRecord } from './vgpu-service.js';

export interface ScrubRequest {
  gpu: PhysicalGpu;
  /** The guest FB range to wipe. */
  range: FbRange;
  /** The vGPU's CHID range: the scrub's copy channel takes its last CHID. */
  chids: ChannelRange;
  vgpuId: string;
  reason: ScrubRecord['reason'];
  /**
   * Place the scrubber's own FB allocations (the semaphore page) wholly below this offset: the vGPU manager keeps
   * the FB from here up for guest slices, some selected but not reserved yet (PgpuManager.region.base). Absent =
   * anywhere (first fit).
   */
  scratchBelow?: bigint;
  /** Read the range back after the scrub and check every word (verifiable isolation). */
  verify?: boolean;
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface FbScrubber {
  /** Resolves with the record of a completed scrub; rejects with VGPU_ESCRUB / VGPU_ETIMEDOUT. */
  scrub(req: ScrubRequest): Promise<ScrubRecord>;
}
