/**
 * The native addon's operations for the daemon's own process-level needs (sd_notify, giving memory back), loaded
 * on demand: undefined when the build has no native module (then those features quietly do nothing).
 */
import { existsSync } from 'node:fs';
import type { Logger } from '../../core/contracts/logger.js';
import { siblingModule } from '../../core/runtime/module-entry.js';
import type { NativeOps } from '../../native/native-ops.js';

export async function daemonNativeOps(log: Logger): Promise<NativeOps | undefined> {
  if (!existsSync(siblingModule(import.meta.url, '../../native/index'))) return undefined;
  const mod = (await import('../../native/index.js')) as { loadNativeOps: (l?: unknown) => NativeOps };
  return mod.loadNativeOps(log);
}
