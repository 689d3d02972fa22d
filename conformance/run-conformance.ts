/**
 * Run the kit against one HAL module and return the report (the CLI prints it; a vendor's own script may assert on
 * it). Checks run one after the other; `onResult` sees each as it finishes.
 */
import type { KitSettings } from './check-context.js';
import { ConformanceSession, selectChecks, type CheckResult } from './conformance-session.js';
import type { HalConformanceModule } from './hal-fixture.js';
import type { MemoryLogger } from '../core/logging/memory-logger.js';

export interface ConformanceReport {
  hal: string;
  results: CheckResult[];
  passed: number;
  failed: number;
  skipped: number;
  durationMs: number;
}

export interface RunConformanceOptions {
  /** Check ids, areas or id prefixes to run (default: all). */
  only?: readonly string[];
  settings?: Partial<KitSettings>;
  logger?: MemoryLogger;
  onResult?: (r: CheckResult) => void;
}

export async function runConformance(mod: HalConformanceModule, opts: RunConformanceOptions = {}): Promise<ConformanceReport> {
  const checks = selectChecks(opts.only);
  const t0 = performance.now();
  const session = await ConformanceSession.open(mod, {
    ...(opts.settings !== undefined ? { settings: opts.settings } : {}),
    ...(opts.logger !== undefined ? { logger: opts.logger } : {}),
  });
  const results: CheckResult[] = [];
  try {
    for (const check of checks) {
      const r = await session.run(check);
      results.push(r);
      opts.onResult?.(r);
    }
  } finally {
    await session.close();
  }
  const count = (s: CheckResult['status']): number => results.filter((r) => r.status === s).length;
  return { hal: mod.name, results, passed: count('pass'), failed: count('fail'), skipped: count('skip'), durationMs: performance.now() - t0 };
}
