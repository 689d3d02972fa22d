// VFIO migration v2 device-state machine, as a pure function of (current, target, device flags).
//
// THE RULE (Linux `vfio_mig_get_next_state()` in drivers/vfio/vfio_main.c, the PRE_COPY version, Linux >= 6.2)
// -----------------------------------------------------------------------------------------------------------
// A SET_STATE request names only the state the user wants to end in. The kernel breaks it into single arcs the
// driver knows how to perform and asks, one arc at a time, "from here, which state comes next on the way to the
// target?". The answer comes from a fixed next-hop table written for a device that supports every optional
// state; it picks the shortest route that never stops inside the saving group (PRE_COPY, PRE_COPY_P2P,
// STOP_COPY) except where the route starts or ends there.
//
// A device advertises which optional states exist through VFIO_DEVICE_FEATURE_MIGRATION flags. Every state needs
// STOP_COPY; RUNNING_P2P also needs P2P, PRE_COPY needs PRE_COPY, PRE_COPY_P2P needs both. The kernel then:
//   1. refuses (-EINVAL) when the current or the target state is not available on this device. ERROR counts as
//      never available here, so it can neither be requested nor be the starting point of a step: once a device
//      is in ERROR only VFIO_DEVICE_RESET gets it out (back to RUNNING).
//   2. looks up the next hop; if that hop is a state the device lacks, it pretends to be there and looks up the
//      hop from it towards the same target, repeating until it lands on an available state. The driver thus sees
//      one arc from the real state to the first available state on the full-featured route.
//   3. refuses when the answer is the "blocked" marker: STOP_COPY -> PRE_COPY and STOP_COPY -> PRE_COPY_P2P are
//      not allowed (the uAPI reserves them for a future revision).
//
// DOING BETTER THAN UPSTREAM (docs/reference/create-order.md): in the kernel the blocked marker is the ERROR value, and
// ERROR's flag requirement is all-ones, so step 2 treats ERROR as "unavailable" and keeps re-looking it up
// forever: STOP_COPY -> PRE_COPY on a PRE_COPY-capable device spins with the state mutex held (a soft lockup).
// A fix ("terminate the skip loop on the ERROR sentinel", Fixes: 4db52602a607) was posted in 2026. We stop the
// skip loop on the blocked marker and return null, i.e. the -EINVAL the kernel meant to return, and we also
// bound the loop so a future table edit can never hang the daemon.
//
// nextState() is exactly one call of that function (null = -EINVAL). migrationPath() is what a variant driver's
// set_state loop does with it (`while (cur != target) cur = next(cur, target)`): it lists every state the
// device passes through. Because that loop never calls the rule when cur === target, asking for the state the
// device is already in is a no-op ([]), including ERROR -> ERROR.

/** `enum vfio_device_mig_state` (include/uapi/linux/vfio.h); the numbers are uAPI. */
export const MigState = {
  ERROR: 0,
  STOP: 1,
  RUNNING: 2,
  STOP_COPY: 3,
  RESUMING: 4,
  RUNNING_P2P: 5,
  PRE_COPY: 6,
  PRE_COPY_P2P: 7,
} as const;
export type MigState = (typeof MigState)[keyof typeof MigState];
export type MigStateName = keyof typeof MigState;

/** Every state in numeric order (index === value). */
export const ALL_STATES: readonly MigState[] = Object.freeze([0, 1, 2, 3, 4, 5, 6, 7] as const);

const NAMES: readonly MigStateName[] = Object.freeze(
  ['ERROR', 'STOP', 'RUNNING', 'STOP_COPY', 'RESUMING', 'RUNNING_P2P', 'PRE_COPY', 'PRE_COPY_P2P'] as const,
);

/** `VFIO_MIGRATION_*` bits of `struct vfio_device_feature_migration.flags`. STOP_COPY is mandatory. */
export const MigrationFlags = {
  stopCopy: 1 << 0,
  p2p: 1 << 1,
  preCopy: 1 << 2,
} as const;
/** A `VFIO_MIGRATION_*` bit mask (u32). Bits we do not know are ignored, as the kernel ignores them. */
export type MigrationFlagBits = number;
export const ALL_MIGRATION_FLAGS: MigrationFlagBits =
  MigrationFlags.stopCopy | MigrationFlags.p2p | MigrationFlags.preCopy;

const { ERROR, STOP, RUNNING, STOP_COPY, RESUMING, RUNNING_P2P, PRE_COPY, PRE_COPY_P2P } = MigState;

/** True when `x` is one of the eight uAPI state numbers. */
export function isMigState(x: number): x is MigState {
  return Number.isInteger(x) && x >= 0 && x < NAMES.length;
}

/** The enum name of a state, for logs and error messages; `UNKNOWN(n)` for a number outside the enum. */
export function migStateName(s: number): string {
  return isMigState(s) ? (NAMES[s] as MigStateName) : `UNKNOWN(${s})`;
}

/**
 * Flags a state needs before it exists on a device; null for ERROR, which no flag set makes requestable
 * (the kernel encodes that as an all-ones requirement).
 */
export function requiredFlags(s: MigState): MigrationFlagBits | null {
  switch (s) {
    case ERROR:
      return null;
    case RUNNING_P2P:
      return MigrationFlags.stopCopy | MigrationFlags.p2p;
    case PRE_COPY:
      return MigrationFlags.stopCopy | MigrationFlags.preCopy;
    case PRE_COPY_P2P:
      return MigrationFlags.stopCopy | MigrationFlags.p2p | MigrationFlags.preCopy;
    default: // STOP, RUNNING, STOP_COPY, RESUMING
      return MigrationFlags.stopCopy;
  }
}

/** May `s` be requested with SET_STATE (and be the source of a step) on a device with `flags`? */
export function isRequestable(s: number, flags: MigrationFlagBits): boolean {
  if (!isMigState(s)) return false;
  const need = requiredFlags(s);
  return need !== null && ((flags >>> 0) & need) === need;
}

/** Can a device with `flags` ever be in `s`? ERROR always (it is where failures land); others if requestable. */
export function isStateSupported(s: number, flags: MigrationFlagBits): boolean {
  return s === ERROR || isRequestable(s, flags);
}

/** PRE_COPY, PRE_COPY_P2P and STOP_COPY share one saving data session (one data fd). */
export function isSavingState(s: number): boolean {
  return s === PRE_COPY || s === PRE_COPY_P2P || s === STOP_COPY;
}

/**
 * Does the single arc `arcFrom -> arcTo` hand the user a NEW data fd? True when it enters the saving group from
 * outside it or enters RESUMING; on the arcs nextState() can produce that is exactly RUNNING->PRE_COPY,
 * RUNNING_P2P->PRE_COPY_P2P, STOP->STOP_COPY and STOP->RESUMING (docs/reference/vfio-migration.md). Moves inside the
 * saving group keep the existing fd.
 */
export function opensDataSession(arcFrom: number, arcTo: number): boolean {
  if (arcFrom === arcTo || !isMigState(arcFrom) || !isMigState(arcTo)) return false;
  if (arcTo === RESUMING) return true;
  return isSavingState(arcTo) && !isSavingState(arcFrom);
}

/**
 * Does the single arc `arcFrom -> arcTo` end the current data session (the driver stops streaming; the user
 * still closes the fd)? True when it leaves the saving group or leaves RESUMING: PRE_COPY->RUNNING,
 * PRE_COPY_P2P->RUNNING_P2P, STOP_COPY->STOP, RESUMING->STOP. Leaving RESUMING is also where the driver must
 * validate what was written and fail the arc if it is incomplete.
 */
export function closesDataSession(arcFrom: number, arcTo: number): boolean {
  if (arcFrom === arcTo || !isMigState(arcFrom) || !isMigState(arcTo)) return false;
  if (arcFrom === RESUMING) return true;
  return isSavingState(arcFrom) && !isSavingState(arcTo);
}

// Next-hop table for a device with every optional state, written as a routing table: for each source state,
// which neighbour to step to for each group of targets. A (source, target) pair listed nowhere is blocked;
// source === target is handled before the lookup. Same facts as the kernel's 8x8 matrix, different layout
// (the unit test checks it cell by cell against an independent transcription of that matrix).
type Route = readonly [via: MigState, targets: readonly MigState[]];
const ROUTES: Readonly<Record<MigState, readonly Route[]>> = {
  [ERROR]: [], // nothing leaves ERROR except a device reset, which is not an FSM arc
  [STOP]: [
    [RUNNING_P2P, [RUNNING_P2P, RUNNING, PRE_COPY, PRE_COPY_P2P]],
    [STOP_COPY, [STOP_COPY]],
    [RESUMING, [RESUMING]],
  ],
  [RUNNING]: [
    [RUNNING_P2P, [RUNNING_P2P, STOP, STOP_COPY, RESUMING, PRE_COPY_P2P]],
    [PRE_COPY, [PRE_COPY]],
  ],
  [STOP_COPY]: [
    [STOP, [STOP, RUNNING, RUNNING_P2P, RESUMING]],
    // PRE_COPY and PRE_COPY_P2P: blocked (no way back into pre-copy once the device is stopped for copy)
  ],
  [RESUMING]: [[STOP, [STOP, RUNNING, RUNNING_P2P, STOP_COPY, PRE_COPY, PRE_COPY_P2P]]],
  [RUNNING_P2P]: [
    [STOP, [STOP, STOP_COPY, RESUMING]],
    [RUNNING, [RUNNING, PRE_COPY]],
    [PRE_COPY_P2P, [PRE_COPY_P2P]],
  ],
  [PRE_COPY]: [
    [RUNNING, [RUNNING, RUNNING_P2P, STOP, RESUMING]],
    [PRE_COPY_P2P, [PRE_COPY_P2P, STOP_COPY]],
  ],
  [PRE_COPY_P2P]: [
    [RUNNING_P2P, [RUNNING_P2P, RUNNING, STOP, RESUMING]],
    [PRE_COPY, [PRE_COPY]],
    [STOP_COPY, [STOP_COPY]],
  ],
};

/** One lookup in the full-featured table; null = blocked. */
function hop(from: MigState, target: MigState): MigState | null {
  if (from === target) return target;
  for (const [via, targets] of ROUTES[from]) if (targets.includes(target)) return via;
  return null;
}

/**
 * One step of Linux's rule: the state the driver should move to next when the device is in `cur` and the
 * user asked for `target`. null where the kernel returns -EINVAL: `cur` or `target` not available with
 * `flags` (ERROR never is), a number outside the enum, or a blocked arc. `cur === target` gives `target`.
 */
export function nextState(cur: number, target: number, flags: MigrationFlagBits): MigState | null {
  if (!isRequestable(cur, flags) || !isRequestable(target, flags)) return null;
  let next = hop(cur as MigState, target as MigState);
  // Skip states this device lacks. Each hop moves one arc closer to `target` on the full table, so this ends
  // within ALL_STATES.length rounds; the bound is a guard, not a behaviour.
  for (let i = 0; next !== null && !isRequestable(next, flags); i++) {
    if (i >= ALL_STATES.length) return null;
    next = hop(next, target as MigState);
  }
  return next;
}

/**
 * The states a device passes through when the user asks to go from `from` to `to` (excluding `from`,
 * including `to`), as a driver that follows nextState() performs it; `[]` when `from === to` and the device can
 * be in that state; null when Linux refuses the request (target ERROR or unavailable, source ERROR or
 * unavailable, STOP_COPY -> PRE_COPY/PRE_COPY_P2P, a number outside the enum).
 */
export function migrationPath(
  from: number,
  to: number,
  flags: MigrationFlagBits = ALL_MIGRATION_FLAGS,
): MigState[] | null {
  if (from === to) return isStateSupported(from, flags) ? [] : null;
  const path: MigState[] = [];
  let cur = from;
  while (cur !== to) {
    const next = nextState(cur, to, flags);
    // A loop longer than the number of states would mean a table cycle; refuse rather than spin.
    if (next === null || path.length >= ALL_STATES.length) return null;
    path.push(next);
    cur = next;
  }
  return path;
}
