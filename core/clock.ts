/** Monotonic time in milliseconds, bound as TOKENS.Clock so tests can bind a fake that they advance by hand. */
export interface Clock {
  now(): number;
}

/** performance.now() is monotonic: wall-clock jumps (NTP, suspend) cannot make a timeout fire early or never. */
export const monotonicClock: Clock = { now: () => performance.now() };
