/**
 * sd_notify through the native addon (Node cannot send Unix datagrams itself). A no-op when not under systemd
 * ($NOTIFY_SOCKET unset) or when the addon is not available.
 */
import type { Logger } from '../../core/contracts/logger.js';
import { daemonNativeOps } from './daemon-native.js';

export type Notify = (state: string) => void;

export async function createNotifier(log: Logger): Promise<Notify> {
  if (!process.env.NOTIFY_SOCKET) return () => {};
  try {
    const ops = await daemonNativeOps(log);
    if (ops === undefined) return (s) => log.debug('sd_notify unavailable (no native module)', { state: s });
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
