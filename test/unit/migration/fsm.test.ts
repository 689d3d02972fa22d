// The migration FSM against Linux. Expected values do NOT come from plugins/migration/fsm.ts: they come from a
// literal re-enactment of `vfio_mig_get_next_state()` over the kernel's own tables, transcribed below as data
// from torvalds/linux drivers/vfio/vfio_main.c at commit 037dd1308c6dfa64edd2dfcd1b8177a3f484a124 (the PRE_COPY
// version, Linux >= 6.2), and from the arc lists in that function's comment and in include/uapi/linux/vfio.h
// (commit 02256acf1e81e42f6338a39020bf2de9807c33d7), plus hand-written spot checks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ALL_MIGRATION_FLAGS,
  ALL_STATES,
  MigState,
  MigrationFlags,
  closesDataSession,
  isSavingState,
  isStateSupported,
  migStateName,
  migrationPath,
  nextState,
  opensDataSession,
} from '../../../plugins/migration/fsm.js';

// uAPI numbers, written out here so the test does not trust the module's enum.
const ERROR = 0, STOP = 1, RUNNING = 2, STOP_COPY = 3, RESUMING = 4, RUNNING_P2P = 5, PRE_COPY = 6, PRE_COPY_P2P = 7;
const NAME = ['ERROR', 'STOP', 'RUNNING', 'STOP_COPY', 'RESUMING', 'RUNNING_P2P', 'PRE_COPY', 'PRE_COPY_P2P'];
const F_STOP_COPY = 1, F_P2P = 2, F_PRE_COPY = 4;

// vfio_from_fsm_table[cur][new], rows and columns in uAPI order (ERROR, STOP, RUNNING, STOP_COPY, RESUMING,
// RUNNING_P2P, PRE_COPY, PRE_COPY_P2P). A cell of ERROR means "blocked".
const E = ERROR, S = STOP, R = RUNNING, SC = STOP_COPY, RS = RESUMING, RP = RUNNING_P2P, PC = PRE_COPY,
  PP = PRE_COPY_P2P;
const KERNEL_NEXT: readonly (readonly number[])[] = [
  /* from ERROR        */ [E, E, E, E, E, E, E, E],
  /* from STOP         */ [E, S, RP, SC, RS, RP, RP, RP],
  /* from RUNNING      */ [E, RP, R, RP, RP, RP, PC, RP],
  /* from STOP_COPY    */ [E, S, S, SC, S, S, E, E],
  /* from RESUMING     */ [E, S, S, S, RS, S, S, S],
  /* from RUNNING_P2P  */ [E, S, R, S, S, RP, R, PP],
  /* from PRE_COPY     */ [E, R, R, PP, R, R, PC, PP],
  /* from PRE_COPY_P2P */ [E, RP, RP, SC, RP, RP, PC, PP],
];
// state_flags_table[state]: the VFIO_MIGRATION_* bits a state needs. ERROR is ~0U.
const KERNEL_STATE_FLAGS: readonly number[] = [
  0xffffffff,
  F_STOP_COPY,
  F_STOP_COPY,
  F_STOP_COPY,
  F_STOP_COPY,
  F_STOP_COPY | F_P2P,
  F_STOP_COPY | F_PRE_COPY,
  F_STOP_COPY | F_P2P | F_PRE_COPY,
];

type KernelAnswer = { next: number } | 'EINVAL' | 'HANG';

/** A literal re-enactment of vfio_mig_get_next_state(), u32 arithmetic included. */
function kernelGetNextState(cur: number, target: number, flags: number): KernelAnswer {
  const inRange = (s: number): boolean => Number.isInteger(s) && s >= 0 && s < KERNEL_NEXT.length;
  const sup = (s: number): boolean => {
    const need = KERNEL_STATE_FLAGS[s]! >>> 0;
    return ((need & flags) >>> 0) === need;
  };
  if (!inRange(cur) || !sup(cur)) return 'EINVAL'; // WARN_ON + -EINVAL
  if (!inRange(target) || !sup(target)) return 'EINVAL';
  let next = KERNEL_NEXT[cur]![target]!;
  let spins = 0;
  while (!sup(next)) {
    next = KERNEL_NEXT[next]![target]!;
    if (++spins > 100) return 'HANG'; // upstream would spin here forever
  }
  return next !== ERROR ? { next } : 'EINVAL';
}

/** Can a device with `flags` be in `s` at all? ERROR always (uAPI: "RUNNING and ERROR are always supported"). */
function deviceCanBeIn(s: number, flags: number): boolean {
  if (s === ERROR) return true;
  if (!Number.isInteger(s) || s < 0 || s > 7) return false;
  const need = KERNEL_STATE_FLAGS[s]!;
  return (need & flags) === need;
}

/**
 * What a variant driver's set_state loop does (e.g. mlx5: `while (new != cur) get_next_state(...)`), with the
 * posted upstream fix for the blocked-arc spin: 'HANG' counts as -EINVAL. from === to is a no-op when the device
 * can be in that state (project decision for impossible states: refuse).
 */
function expectedPath(from: number, to: number, flags: number): number[] | null {
  if (from === to) return deviceCanBeIn(from, flags) ? [] : null;
  const path: number[] = [];
  let cur = from;
  while (cur !== to) {
    const a = kernelGetNextState(cur, to, flags);
    if (typeof a === 'string') return null;
    path.push(a.next);
    cur = a.next;
    if (path.length > 100) throw new Error('test oracle looped');
  }
  return path;
}

function expectedNext(cur: number, target: number, flags: number): number | null {
  const a = kernelGetNextState(cur, target, flags);
  return typeof a === 'string' ? null : a.next;
}

const names = (p: readonly number[] | null): string => (p === null ? 'null' : `[${p.map((s) => NAME[s]).join(', ')}]`);

// stopCopy is mandatory; p2p and preCopy on/off.
const COMBOS = [
  { label: 'STOP_COPY', flags: F_STOP_COPY, p2p: false, pre: false },
  { label: 'STOP_COPY|P2P', flags: F_STOP_COPY | F_P2P, p2p: true, pre: false },
  { label: 'STOP_COPY|PRE_COPY', flags: F_STOP_COPY | F_PRE_COPY, p2p: false, pre: true },
  { label: 'STOP_COPY|P2P|PRE_COPY', flags: F_STOP_COPY | F_P2P | F_PRE_COPY, p2p: true, pre: true },
] as const;
const STATES = [0, 1, 2, 3, 4, 5, 6, 7];
const OUT_OF_RANGE = [8, 255, -1, 1.5];

test('state numbers and flag bits are the uAPI values', () => {
  assert.deepEqual({ ...MigState }, {
    ERROR: 0, STOP: 1, RUNNING: 2, STOP_COPY: 3, RESUMING: 4, RUNNING_P2P: 5, PRE_COPY: 6, PRE_COPY_P2P: 7,
  });
  assert.deepEqual({ ...MigrationFlags }, { stopCopy: 1, p2p: 2, preCopy: 4 });
  assert.equal(ALL_MIGRATION_FLAGS, 7);
  assert.deepEqual([...ALL_STATES], STATES);
  assert.deepEqual(STATES.map((s) => migStateName(s)), NAME);
  assert.equal(migStateName(9), 'UNKNOWN(9)');
});

test('nextState equals vfio_mig_get_next_state for every (cur, target) and flag set', () => {
  let checked = 0;
  for (const c of COMBOS) {
    for (const cur of [...STATES, ...OUT_OF_RANGE]) {
      for (const target of [...STATES, ...OUT_OF_RANGE]) {
        const want = expectedNext(cur, target, c.flags);
        assert.equal(nextState(cur, target, c.flags), want,
          `${c.label}: next(${NAME[cur] ?? cur} -> ${NAME[target] ?? target})`);
        checked++;
      }
    }
  }
  assert.equal(checked, 4 * 12 * 12);
});

test('migrationPath equals the driver loop over the kernel rule for every (from, to) and flag set', () => {
  for (const c of COMBOS) {
    for (const from of STATES) {
      for (const to of STATES) {
        const want = expectedPath(from, to, c.flags);
        const got = migrationPath(from, to, c.flags);
        assert.deepEqual(got, want, `${c.label}: ${NAME[from]} -> ${NAME[to]}: got ${names(got)}, want ${names(want)}`);
      }
    }
    for (const bad of OUT_OF_RANGE) {
      assert.equal(migrationPath(bad, RUNNING, c.flags), null, `${c.label}: from ${bad}`);
      assert.equal(migrationPath(RUNNING, bad, c.flags), null, `${c.label}: to ${bad}`);
      assert.equal(migrationPath(bad, bad, c.flags), null, `${c.label}: ${bad} -> ${bad}`);
    }
  }
});

test('the default flags are all three, and unknown flag bits are ignored', () => {
  for (const from of STATES) {
    for (const to of STATES) {
      const want = expectedPath(from, to, 7);
      assert.deepEqual(migrationPath(from, to), want, `${NAME[from]} -> ${NAME[to]}`);
      assert.deepEqual(migrationPath(from, to, 7 | 8 | 0x100 | 0x8000_0000), want, `extra bits ${NAME[from]} -> ${NAME[to]}`);
    }
  }
});

test('a device without STOP_COPY has no usable state (the kernel refuses every step)', () => {
  for (const from of STATES) {
    for (const to of STATES) {
      assert.equal(nextState(from, to, 0), null);
      const want = from === ERROR && to === ERROR ? [] : null;
      assert.deepEqual(migrationPath(from, to, F_P2P | F_PRE_COPY), want, `${NAME[from]} -> ${NAME[to]}`);
    }
  }
});

test('upstream spins on the blocked arcs; we refuse them instead', () => {
  // Documents the kernel flaw the module works around: with PRE_COPY available, asking STOP_COPY for a pre-copy
  // state makes the skip loop chase the ERROR marker forever. Nowhere else does the oracle hang.
  for (const c of COMBOS) {
    for (const cur of STATES) {
      for (const target of STATES) {
        const hangs = kernelGetNextState(cur, target, c.flags) === 'HANG';
        const shouldHang = c.pre && cur === STOP_COPY && (target === PRE_COPY || (target === PRE_COPY_P2P && c.p2p));
        assert.equal(hangs, shouldHang, `${c.label}: ${NAME[cur]} -> ${NAME[target]}`);
        if (hangs) assert.equal(nextState(cur, target, c.flags), null);
      }
    }
  }
});

test('ERROR can be neither requested nor left by a state change', () => {
  for (const c of COMBOS) {
    for (const s of STATES) {
      if (s !== ERROR) {
        assert.equal(migrationPath(s, ERROR, c.flags), null, `${c.label}: ${NAME[s]} -> ERROR`);
        assert.equal(migrationPath(ERROR, s, c.flags), null, `${c.label}: ERROR -> ${NAME[s]}`);
      }
      assert.equal(nextState(ERROR, s, c.flags), null);
      assert.equal(nextState(s, ERROR, c.flags), null);
    }
    assert.deepEqual(migrationPath(ERROR, ERROR, c.flags), []); // nothing to do; only a reset leaves ERROR
    assert.equal(isStateSupported(ERROR, c.flags), true);
  }
});

// Arcs a driver must implement, per flag set, from the comment above the kernel's table
// (docs/reference/vfio-migration.md). "Without P2P" (with or without PRE_COPY) the core routes RUNNING <-> STOP
// directly.
function requiredArcs(p2p: boolean, pre: boolean): Set<string> {
  const a = [[RESUMING, STOP], [STOP, RESUMING], [STOP, STOP_COPY], [STOP_COPY, STOP]];
  if (p2p) a.push([RUNNING, RUNNING_P2P], [RUNNING_P2P, RUNNING], [RUNNING_P2P, STOP], [STOP, RUNNING_P2P]);
  else a.push([RUNNING, STOP], [STOP, RUNNING]);
  if (pre && !p2p) a.push([RUNNING, PRE_COPY], [PRE_COPY, RUNNING], [PRE_COPY, STOP_COPY]);
  if (pre && p2p) {
    a.push([PRE_COPY, RUNNING], [PRE_COPY, PRE_COPY_P2P], [PRE_COPY_P2P, PRE_COPY], [PRE_COPY_P2P, RUNNING_P2P],
      [PRE_COPY_P2P, STOP_COPY], [RUNNING, PRE_COPY], [RUNNING_P2P, PRE_COPY_P2P]);
  }
  return new Set(a.map(([x, y]) => `${NAME[x!]}->${NAME[y!]}`));
}

function arcsUsed(flags: number): Set<string> {
  const used = new Set<string>();
  for (const from of STATES) {
    for (const to of STATES) {
      const p = migrationPath(from, to, flags);
      if (!p) continue;
      let cur = from;
      for (const s of p) { used.add(`${NAME[cur]}->${NAME[s]}`); cur = s; }
    }
  }
  return used;
}

test('every step taken is one of the arcs the kernel comment obliges the driver to implement, and all are used', () => {
  for (const c of COMBOS) {
    assert.deepEqual([...arcsUsed(c.flags)].sort(), [...requiredArcs(c.p2p, c.pre)].sort(), c.label);
  }
});

test('paths are shortest and never stop inside the saving group unless they start there', () => {
  for (const c of COMBOS) {
    const arcs = requiredArcs(c.p2p, c.pre);
    for (const from of STATES) {
      for (const to of STATES) {
        const p = migrationPath(from, to, c.flags);
        if (!p || p.length === 0) continue;
        // interior saving states only while still inside the group the path started in
        let inGroup = isSaving(from);
        for (const s of p.slice(0, -1)) {
          inGroup = inGroup && isSaving(s);
          if (isSaving(s)) assert.ok(inGroup, `${c.label}: ${NAME[from]} -> ${NAME[to]} stops in ${NAME[s]}`);
        }
        assert.equal(p.length, bfsLength(from, to, arcs), `${c.label}: ${NAME[from]} -> ${NAME[to]} ${names(p)}`);
      }
    }
  }
  // the single case where a saving state is an interior step: staying inside the group
  assert.deepEqual(migrationPath(PRE_COPY, STOP_COPY), [PRE_COPY_P2P, STOP_COPY]);
});

function isSaving(s: number): boolean {
  return s === PRE_COPY || s === PRE_COPY_P2P || s === STOP_COPY;
}

/** Shortest route over `arcs` whose interior saving states continue a saving start (uAPI path rule). */
function bfsLength(from: number, to: number, arcs: Set<string>): number {
  type Node = { s: number; inGroup: boolean; d: number };
  const queue: Node[] = [{ s: from, inGroup: isSaving(from), d: 0 }];
  const seen = new Set<string>();
  while (queue.length) {
    const n = queue.shift()!;
    if (n.s === to) return n.d;
    for (const t of STATES) {
      if (!arcs.has(`${NAME[n.s]}->${NAME[t]}`)) continue;
      const inGroup = n.inGroup && isSaving(t);
      if (t !== to && isSaving(t) && !inGroup) continue;
      const k = `${t}/${inGroup}`;
      if (seen.has(k)) continue;
      seen.add(k);
      queue.push({ s: t, inGroup, d: n.d + 1 });
    }
  }
  return -1;
}

// The combination transitions listed in the comment above the kernel table (all optional states supported),
// transcribed as text. The kernel says these are exactly the multi-step ones.
const KERNEL_COMMENT_COMBINATIONS = `
PRE_COPY -> PRE_COPY_P2P -> STOP_COPY
PRE_COPY -> RUNNING -> RUNNING_P2P
PRE_COPY -> RUNNING -> RUNNING_P2P -> STOP
PRE_COPY -> RUNNING -> RUNNING_P2P -> STOP -> RESUMING
PRE_COPY_P2P -> RUNNING_P2P -> RUNNING
PRE_COPY_P2P -> RUNNING_P2P -> STOP
PRE_COPY_P2P -> RUNNING_P2P -> STOP -> RESUMING
RESUMING -> STOP -> RUNNING_P2P
RESUMING -> STOP -> RUNNING_P2P -> PRE_COPY_P2P
RESUMING -> STOP -> RUNNING_P2P -> RUNNING
RESUMING -> STOP -> RUNNING_P2P -> RUNNING -> PRE_COPY
RESUMING -> STOP -> STOP_COPY
RUNNING -> RUNNING_P2P -> PRE_COPY_P2P
RUNNING -> RUNNING_P2P -> STOP
RUNNING -> RUNNING_P2P -> STOP -> RESUMING
RUNNING -> RUNNING_P2P -> STOP -> STOP_COPY
RUNNING_P2P -> RUNNING -> PRE_COPY
RUNNING_P2P -> STOP -> RESUMING
RUNNING_P2P -> STOP -> STOP_COPY
STOP -> RUNNING_P2P -> PRE_COPY_P2P
STOP -> RUNNING_P2P -> RUNNING
STOP -> RUNNING_P2P -> RUNNING -> PRE_COPY
STOP_COPY -> STOP -> RESUMING
STOP_COPY -> STOP -> RUNNING_P2P
STOP_COPY -> STOP -> RUNNING_P2P -> RUNNING
`;

test('with every optional state, the multi-step paths are exactly those the kernel comment lists', () => {
  const listed = KERNEL_COMMENT_COMBINATIONS.trim().split('\n').map((l) => l.split(' -> ').map((n) => NAME.indexOf(n)));
  assert.equal(listed.length, 25);
  const seen = new Set<string>();
  for (const states of listed) {
    assert.ok(states.every((s) => s >= 0));
    const from = states[0]!, to = states[states.length - 1]!;
    assert.deepEqual(migrationPath(from, to), states.slice(1), `${NAME[from]} -> ${NAME[to]}`);
    seen.add(`${from}/${to}`);
  }
  for (const from of STATES) {
    for (const to of STATES) {
      const p = migrationPath(from, to);
      if (p && p.length >= 2) assert.ok(seen.has(`${from}/${to}`), `${NAME[from]} -> ${NAME[to]} ${names(p)} not listed`);
    }
  }
});

test('hand-written spot checks (docs/reference/vfio-migration.md, kernel comment)', () => {
  const ALL = F_STOP_COPY | F_P2P | F_PRE_COPY;
  const NO_P2P = F_STOP_COPY | F_PRE_COPY;
  const P2P_ONLY = F_STOP_COPY | F_P2P;
  const MIN = F_STOP_COPY;
  const cases: [number, number, number, number[] | null][] = [
    [ALL, RUNNING, STOP_COPY, [RUNNING_P2P, STOP, STOP_COPY]],
    [ALL, RUNNING, RESUMING, [RUNNING_P2P, STOP, RESUMING]],
    [ALL, PRE_COPY, STOP_COPY, [PRE_COPY_P2P, STOP_COPY]],
    [ALL, PRE_COPY, RESUMING, [RUNNING, RUNNING_P2P, STOP, RESUMING]],
    [ALL, RESUMING, PRE_COPY, [STOP, RUNNING_P2P, RUNNING, PRE_COPY]],
    [ALL, STOP_COPY, RUNNING, [STOP, RUNNING_P2P, RUNNING]],
    [ALL, STOP, PRE_COPY_P2P, [RUNNING_P2P, PRE_COPY_P2P]],
    [ALL, RUNNING, PRE_COPY, [PRE_COPY]],
    [ALL, PRE_COPY_P2P, STOP_COPY, [STOP_COPY]],
    [ALL, STOP_COPY, PRE_COPY, null],
    [ALL, STOP_COPY, PRE_COPY_P2P, null],
    [ALL, RUNNING, ERROR, null],
    [ALL, ERROR, RUNNING, null],
    [NO_P2P, RUNNING, STOP_COPY, [STOP, STOP_COPY]],
    [NO_P2P, PRE_COPY, STOP_COPY, [STOP_COPY]],
    [NO_P2P, STOP, PRE_COPY, [RUNNING, PRE_COPY]],
    [NO_P2P, PRE_COPY, RESUMING, [RUNNING, STOP, RESUMING]],
    [NO_P2P, RUNNING, RUNNING_P2P, null],
    [NO_P2P, RUNNING, PRE_COPY_P2P, null],
    [NO_P2P, STOP_COPY, PRE_COPY, null],
    [P2P_ONLY, STOP_COPY, RUNNING, [STOP, RUNNING_P2P, RUNNING]],
    [P2P_ONLY, RUNNING, PRE_COPY, null],
    [MIN, RUNNING, STOP_COPY, [STOP, STOP_COPY]],
    [MIN, RUNNING, RESUMING, [STOP, RESUMING]],
    [MIN, RESUMING, RUNNING, [STOP, RUNNING]],
    [MIN, RUNNING, RUNNING_P2P, null],
    [MIN, RUNNING, RUNNING, []],
  ];
  for (const [flags, from, to, want] of cases) {
    const got = migrationPath(from, to, flags);
    assert.deepEqual(got, want, `flags ${flags}: ${NAME[from]} -> ${NAME[to]}: got ${names(got)}`);
  }
  // a path through RESUMING always passes STOP just before it
  for (const c of COMBOS) {
    for (const from of STATES) {
      const p = migrationPath(from, RESUMING, c.flags);
      if (p && p.length > 0) {
        const prev = p.length >= 2 ? p[p.length - 2] : from;
        assert.equal(prev, STOP, `${c.label}: ${NAME[from]} -> RESUMING ${names(p)}`);
      }
    }
  }
});

test('data sessions: which arcs open and close one (docs/reference/vfio-migration.md, vfio.h)', () => {
  const OPENS = new Set(['RUNNING->PRE_COPY', 'RUNNING_P2P->PRE_COPY_P2P', 'STOP->STOP_COPY', 'STOP->RESUMING']);
  const CLOSES = new Set(['PRE_COPY->RUNNING', 'PRE_COPY_P2P->RUNNING_P2P', 'STOP_COPY->STOP', 'RESUMING->STOP']);
  const all = new Set<string>();
  for (const c of COMBOS) for (const a of arcsUsed(c.flags)) all.add(a);
  for (const arc of all) {
    const [a, b] = arc.split('->').map((n) => NAME.indexOf(n!));
    assert.equal(opensDataSession(a!, b!), OPENS.has(arc), `opens ${arc}`);
    assert.equal(closesDataSession(a!, b!), CLOSES.has(arc), `closes ${arc}`);
  }
  for (const arc of [...OPENS, ...CLOSES]) assert.ok(all.has(arc), `${arc} is a real arc`);
  // moving inside the saving group keeps the fd
  assert.equal(opensDataSession(PRE_COPY, PRE_COPY_P2P), false);
  assert.equal(opensDataSession(PRE_COPY_P2P, STOP_COPY), false);
  assert.equal(closesDataSession(PRE_COPY_P2P, STOP_COPY), false);
  assert.equal(opensDataSession(STOP, STOP), false);
  assert.deepEqual(STATES.filter((s) => isSavingState(s)), [STOP_COPY, PRE_COPY, PRE_COPY_P2P]);
});
