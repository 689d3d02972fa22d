/**
 * One conformance check: an id a vendor can grep for, a one-line statement of what a conforming HAL does, and the
 * code that drives the HAL through the core contracts. A check ends in one of three ways:
 *
 *   - it returns: pass;
 *   - it throws a ConformanceFailure whose message says, in the HAL's terms, what the HAL did wrong
 *     ("open() of an unknown device id 0x1234 did not throw VGPU_ENODEV (it succeeded)");
 *   - it throws a ConformanceSkip naming the capability the HAL does not offer ("the HAL offers no device-side
 *     view of FB bytes").
 *
 * Anything else a check throws (an operation of the HAL that should have worked and did not) is turned into a
 * failure by CheckContext.attempt, which names the operation, never a line of the kit.
 */
import type { CheckContext } from './check-context.js';

export type CheckArea =
  | 'identification' | 'open-close' | 'firmware' | 'rpc' | 'faults' | 'events' | 'memory' | 'channels' | 'scrub' | 'vfs'
  | 'lifecycle';

export interface ConformanceCheck {
  /** Stable id "<area>.<name>": reports, `--only` filters and vendors' bug reports use it. */
  readonly id: string;
  readonly area: CheckArea;
  /** What a conforming HAL does, as one sentence. */
  readonly title: string;
  run(ctx: CheckContext): Promise<void>;
}

/** The HAL did not do what the contract asks; the message says what, in the HAL's terms. */
export class ConformanceFailure extends Error {
  constructor(message: string, opts?: { cause?: unknown }) {
    super(message, opts);
    this.name = 'ConformanceFailure';
  }
}

/** The check needs a capability the HAL (or its fixture) does not offer. */
export class ConformanceSkip extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = 'ConformanceSkip';
  }
}

export function defineCheck(area: CheckArea, name: string, title: string, run: (ctx: CheckContext) => Promise<void>): ConformanceCheck {
  return Object.freeze({ id: `${area}.${name}`, area, title, run });
}
