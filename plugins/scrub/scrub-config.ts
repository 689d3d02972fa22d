/**
 * `plugins.scrub` config. Timeouts default to the daemon's `timeouts.scrubMs` (upstream: 4 s).
 */
import { z } from 'zod';
import { ErrorCode, VgpuError } from '../../core/contracts/exceptions.js';

export const GiB = 1n << 30n;

export const scrubConfigSchema = z.strictObject({
  /** Read every scrubbed range back and check it (also per request: ScrubRequest.verify). */
  verify: z.boolean().default(false),
  /** Wait per submission for the semaphore; default: timeouts.scrubMs. */
  timeoutMs: z.number().int().positive().optional(),
  /**
   * Bytes per pushbuffer submission (a power-of-two number of MiB); each finished submission is one
   * 'scrub:progress' event. 0 = the whole range in one submission, as upstream does.
   */
  submitMiB: z.number().int().nonnegative().default(2048),
  /** When the HAL has no copy-engine channel ('ce-chan-alloc'/'pushbuf-submit'), wipe from the host instead of
   *  leaving the FB unscrubbed (upstream silently skips the scrub then). */
  hostFallback: z.boolean().default(true),
}).prefault({});

export interface ScrubSettings {
  verify: boolean;
  timeoutMs: number;
  submitBytes: bigint;
  hostFallback: boolean;
}

export function parseScrubConfig(raw: unknown, defaultTimeoutMs: number): ScrubSettings {
  const parsed = scrubConfigSchema.safeParse(raw ?? undefined);
  if (!parsed.success) {
    throw new VgpuError(ErrorCode.Config, `plugins.scrub: ${z.prettifyError(parsed.error)}`, {
      hint: 'plugins.scrub takes { verify?: boolean, timeoutMs?: number, submitMiB?: number, hostFallback?: boolean }',
    });
  }
  const c = parsed.data;
  const submitBytes = BigInt(c.submitMiB) << 20n;
  if (submitBytes !== 0n && (submitBytes & (submitBytes - 1n)) !== 0n) {
    throw new VgpuError(ErrorCode.Config, `plugins.scrub.submitMiB ${c.submitMiB} is not a power of two`, {
      hint: 'use 512, 1024, 2048, … (or 0 for one submission)',
    });
  }
  return { verify: c.verify, timeoutMs: c.timeoutMs ?? defaultTimeoutMs, submitBytes, hostFallback: c.hostFallback };
}
