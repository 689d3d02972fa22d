/**
 * sd_notify through the native addon (Node cannot send Unix datagrams itself). A no-op when not under systemd
 * ($NOTIFY_SOCKET unset) or when the addon is not available.
 */
import { existsSync } from 'node:fs';
import { siblingModule } from '../../core/runtime/module-entry.js';
import type { Logger } from '../../core/contracts/logger.js';

export type Notify = (state: string) => void;

export async function createNotifier(log: Logger): Promise<Notify> {
  if (!process.env.NOTIFY_SOCKET) return () => {};
  const index = siblingModule(import.meta.url, '../../native/index');
  if (!existsSync(index)) return (s) => log.debug('sd_notify unavailable (no native module)', { state: s });
  try {
    const mod = (await import('../../native/index.js')) as { loadNativeOps: (l?: unknown) => { sdNotify(s: string): boolean } };
    const ops = mod.loadNativeOps(log);
    return (state) => {
      try {
        if (!ops.sdNotify(state)) log.debug('sd_notify not sent', { state });
      } catch (error) {
        log.warn('sd_notify failed', { state, error });
      }
    };
  } catch (error) {
    log.warn('sd_notify unavailable', { error });
    return () => {};
  }
}
