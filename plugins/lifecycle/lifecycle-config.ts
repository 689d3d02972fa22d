/**
 * The lifecycle plugin's own config section (`plugins.lifecycle`), validated here as the plugin host asks.
 * Timeouts shared by the daemon (rpcMs, bootloadMs, scrubMs) live in the top-level `timeouts` section.
 */
import { z } from 'zod';
import { ErrorCode, VgpuError } from '../../core/contracts/exceptions.js';

export const lifecycleConfigSchema = z.strictObject({
  /** Folder with vgpu-<GSP version>.bin; default: the folder of the built-in metadata (metadata/out). */
  metadataDir: z.string().min(1).optional(),
  /** Deadline of one host-RPC mailbox call; default `timeouts.rpcMs` (upstream: 120 s busy loop). */
  mailboxTimeoutMs: z.number().int().positive().optional(),
  /** Poll period of the mailbox once the fast (setImmediate) phase is over. */
  pollIntervalMs: z.number().int().min(0).max(100).default(1),
  /** Ask the scrubber to read the FB back after each scrub. */
  verifyScrub: z.boolean().default(false),
  /**
   * Hand out guest FB unscrubbed when no scrubber is bound (the scrub plugin is not loaded). Off (the default), such
   * a daemon refuses to create or reset vGPUs: FB that was not wiped can hold another tenant's data. Only for test
   * rigs and benchmarks that must run without the scrub; when on, the start is logged as an error.
   */
  allowUnscrubbedFb: z.boolean().default(false),
}).prefault({});

export type LifecycleConfig = z.output<typeof lifecycleConfigSchema>;

export function parseLifecycleConfig(raw: unknown): LifecycleConfig {
  const r = lifecycleConfigSchema.safeParse(raw ?? undefined);
  if (!r.success) {
    throw new VgpuError(ErrorCode.Config, `plugins.lifecycle: ${z.prettifyError(r.error)}`, { hint: 'fix the lifecycle section of the config' });
  }
  return r.data;
}
