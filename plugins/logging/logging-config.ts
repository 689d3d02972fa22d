/**
 * `plugins.logging` config: where per-vGPU log files go, how they rotate and how long they are kept.
 */
import { join } from 'node:path';
import { z } from 'zod';
import { ErrorCode, VgpuError } from '../../core/contracts/exceptions.js';

export const loggingConfigSchema = z.strictObject({
  /** Directory of the per-vGPU log files; default `<api.stateDir>/logs`. */
  dir: z.string().min(1).optional(),
  /** Size at which a vGPU's log file is rotated. */
  maxBytes: z.number().int().min(1024).default(1024 * 1024),
  /** Rotated files kept per vGPU (`.1` … `.maxFiles`); 0 = truncate instead of keeping any. */
  maxFiles: z.number().int().nonnegative().default(5),
  /**
   * Longest a firmware log line waits before it is drained (to the files, the daemon log and the store): lines are
   * drained when the firmware says it wrote some, batched over this window. Only a firmware that cannot notify is
   * swept on this period instead.
   */
  maxDelayMs: z.number().int().min(10).optional(),
  /** Older name of maxDelayMs (it was the poll period), still accepted. */
  pollMs: z.number().int().min(10).optional(),
  /** Lines kept in memory per vGPU for `VgpuLogStore` (the API's `logs`). */
  keepLines: z.number().int().positive().default(5000),
  /**
   * Log files of destroyed vGPUs kept, newest first, besides each VF's last vGPU (whose files stay until the VF is
   * reused). Older ones are deleted.
   */
  keepDestroyed: z.number().int().nonnegative().default(16),
  /** Also delete the files of destroyed vGPUs older than this many hours (0 = no age limit). */
  keepDestroyedHours: z.number().nonnegative().default(0),
}).prefault({});

export interface LoggingSettings {
  dir: string;
  maxBytes: number;
  maxFiles: number;
  maxDelayMs: number;
  keepLines: number;
  keepDestroyed: number;
  keepDestroyedHours: number;
}

export function parseLoggingConfig(raw: unknown, stateDir: string): LoggingSettings {
  const parsed = loggingConfigSchema.safeParse(raw ?? undefined);
  if (!parsed.success) {
    throw new VgpuError(ErrorCode.Config, `plugins.logging: ${z.prettifyError(parsed.error)}`, {
      hint: 'plugins.logging takes { dir?: string, maxBytes?: number, maxFiles?: number, maxDelayMs?: number, keepLines?: number, keepDestroyed?: number, keepDestroyedHours?: number }',
    });
  }
  const c = parsed.data;
  return {
    dir: c.dir ?? join(stateDir, 'logs'), maxBytes: c.maxBytes, maxFiles: c.maxFiles, maxDelayMs: c.maxDelayMs ?? c.pollMs ?? 250, keepLines: c.keepLines,
    keepDestroyed: c.keepDestroyed, keepDestroyedHours: c.keepDestroyedHours,
  };
}
