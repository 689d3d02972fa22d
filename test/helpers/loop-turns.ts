/**
 * How a test shows that a long job runs OFF the event loop without timing it: count the loop's turns while the job
 * is in flight. A job done on the loop's thread (a synchronous fill, a busy wait) lets no timer run before it
 * settles; a job on another thread lets a 1 ms timer chain run all along, as the daemon's heartbeats and API calls
 * would. No wall-clock bound is asserted, so a loaded or stalled machine cannot fail the test — the millisecond figure (monitorEventLoopDelay against an idle window) lives in
 * `npm run bench:loop-delay`.
 */
export interface LoopTurns<T> {
  result: T;
  /** 1 ms timers that fired (one after another) while the job ran. */
  turns: number;
}

export async function loopTurnsDuring<T>(work: () => Promise<T>): Promise<LoopTurns<T>> {
  // A chain of 1 ms timers, not a setImmediate spin: a spinning main thread would take a core from the job's
  // threads (SCHED_IDLE in the addon, nice 19 in the fallback) and measure something else.
  let turns = 0;
  let timer: NodeJS.Timeout | undefined;
  const tick = (): void => { turns++; timer = setTimeout(tick, 1); };
  timer = setTimeout(tick, 1);
  try {
    const result = await work();
    return { result, turns };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The fewest timer turns a multi-GiB job must leave the loop. A job on the loop's thread leaves none: its promise
 * settles before any timer can run. Multi-GiB jobs take tens of milliseconds at least even at memory speed.
 */
export const MIN_TURNS = 5;
