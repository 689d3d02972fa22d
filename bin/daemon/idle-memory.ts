/**
 * Give the memory a burst of work freed back to the kernel once the daemon turns idle. A start or 256 creates
 * leave garbage in V8's heap that an idle daemon, allocating next to nothing, may not collect for a long time, and
 * the C library's heap full of freed chunks (Node's and V8's bookkeeping: parsers, compiler zones, requests) that
 * glibc keeps resident, because it only trims the top of its heap on its own: ~10 MiB each with 8 GPUs × 32 vGPUs
 * (bench:scale). One full GC plus malloc_trim (native releaseFreeMemory, tens of ms) a few seconds after the last
 * vGPU or GPU event hands them back, put off while the event loop is still busy with work no event marks (a
 * migration's pre-copy must not get the pause in its downtime). Nothing runs while nothing happens: the timer is
 * armed by an event and fires once.
 */
import type { BusEventName, EventBus } from '../../core/contracts/events.js';
import type { Logger } from '../../core/contracts/logger.js';
import { daemonNativeOps } from './daemon-native.js';

/** How long the daemon must have been quiet before it releases memory. */
export const IDLE_RELEASE_QUIET_MS = 5000;

/** Share of a quiet period the event loop may have been busy and the daemon still counts as idle. */
const BUSY_LOOP_SHARE = 0.05;

/** Events that mark a burst of work (creates and destroys, GPUs coming up or resetting, a layout applied). */
const BUSY_EVENTS: readonly BusEventName[] = ['vgpu:state', 'gpu:ready', 'gpu:reset', 'layout:end'];

export interface IdleRelease {
  /** Something happened: release `quietMs` after the last touch. */
  touch(): void;
  close(): void;
}

/**
 * Calls `release` once `quietMs` after the last `touch()`, provided `busy()` says the process was not busy meanwhile
 * (else it waits another `quietMs`); one timer at most, none while idle.
 */
export function idleRelease(release: () => void, quietMs = IDLE_RELEASE_QUIET_MS, busy: () => boolean = () => false): IdleRelease {
  let timer: NodeJS.Timeout | undefined;
  const arm = (): void => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      timer = undefined;
      if (busy()) arm();
      else release();
    }, quietMs);
    timer.unref();
  };
  return {
    touch: arm,
    close() {
      clearTimeout(timer);
      timer = undefined;
    },
  };
}

/**
 * Release memory when the daemon goes quiet after start-up and after every burst of bus events. Without the
 * native module (or on a C library without malloc_trim) nothing is armed.
 */
export async function releaseMemoryWhenIdle(bus: EventBus, log: Logger, quietMs = IDLE_RELEASE_QUIET_MS): Promise<IdleRelease | undefined> {
  let ops;
  try {
    ops = await daemonNativeOps(log);
  } catch (error) {
    log.debug('memory release unavailable', { error });
    return undefined;
  }
  if (ops === undefined) return undefined;
  const native = ops;
  // The release pauses the event loop for tens of ms: not while work no bus event marks is running (a migration's
  // pre-copy, a long scrub). Busy = the event loop was busy more than BUSY_LOOP_SHARE of the quiet period; then the
  // next quiet period is judged.
  let elu = performance.eventLoopUtilization();
  const loopBusy = (): boolean => {
    const now = performance.eventLoopUtilization();
    const share = performance.eventLoopUtilization(now, elu).utilization;
    elu = now;
    return share > BUSY_LOOP_SHARE;
  };
  const idle = idleRelease(() => {
    const t0 = performance.now();
    try {
      const released = native.releaseFreeMemory();
      log.debug('idle: released free memory', { released, durationMs: performance.now() - t0 });
    } catch (error) {
      log.warn('releasing free memory failed', { error });
    }
  }, quietMs, loopBusy);
  const touch = (): void => {
    elu = performance.eventLoopUtilization(); // judge the quiet period only, not the burst before it
    idle.touch();
  };
  const offs = BUSY_EVENTS.map((e) => bus.on(e, touch));
  touch(); // the start itself was the first burst
  return {
    touch,
    close: () => {
      for (const off of offs) off();
      idle.close();
    },
  };
}
