/**
 * The simulated firmware thread's look-before-sleep. After it has served something — a GSP-RM RPC from the command
 * queue, or a plugin task's mailbox call — it keeps looking at everything it serves for a short, bounded while
 * before it sleeps on its doorbell, and serves what arrives in that window at once.
 *
 * Why this is faithful: GSP-RM runs on the GSP's own RISC-V core (OpenRM boots it there, docs/reference/gsp-queues.md
 * "Firmware wake-up"), which is running when a command lands: it pays no operating-system wake-up to notice one
 * (inferred: a microcontroller has no scheduler that parks it). The simulated GSP-RM is a thread that sleeps on a
 * futex/Atomics doorbell, and waking an idle thread costs 60–90 µs on the 2-core VMs we run on (docs/benchmarks.md)
 * — per command. A host driver sees that as a slow firmware: most of a create's six round trips was this wake-up.
 * Looking again right after a reply covers exactly the case where it shows: a host issuing a sequence of commands
 * (a create sends its next one within tens of µs).
 *
 * Why it still costs nothing idle: it spins only right after having served something (a firmware woken for nothing
 * — a halt, a heartbeat tick, a poke — sleeps at once), for at most the budget, and it backs off as AdaptiveSpin
 * does (core/runtime/adaptive-spin.ts): a spin that sees nothing makes the next 1, 2, 4 … 32 chances skip spinning.
 * The budget is learned the same way as the host's: about twice the recent gap between a reply and the next command
 * (seen by the look, or — after a look that missed — when the next command was served), at most AUTO_CAP_US, and no
 * look at all while those gaps are longer than that. That matters on a loaded 2-core host: there the host's own
 * wake-up takes hundreds of µs, a look would only burn the core the host needs to wake on (measured: creates got
 * slower with a fixed 200 µs look and the host not spinning), and the learned budget drops to 0 instead.
 * One per firmware thread: the GSP-RM command loop and the plugin-task mailbox watcher share it, and each one's spin
 * looks at the other's work too — the thread serves either at once.
 *
 * `VGPUD_SIM_FW_SPIN_US` fixes the budget (µs, 0 = never spin); unset: learned (DEFAULT_FW_SPIN_US).
 */
import { AUTO_SPIN, AdaptiveSpin, budgetFromEnv } from '../../../core/runtime/adaptive-spin.js';

/**
 * Budget when VGPUD_SIM_FW_SPIN_US is unset: learned from the gaps between a reply and the next command (it must
 * cover the host's think time plus, when the host slept for the reply, the host's own wake-up: 60–90 µs on an idle
 * 2-core VM), capped at AUTO_CAP_US.
 */
export const DEFAULT_FW_SPIN_US = AUTO_SPIN;
/** The kind under which the spin learns its gaps (one kind: the next command, whatever it is). */
const GAP = 0;
/** Longest stretch one spin serves work in before it hands the thread back to its event loop (timers, messages). */
export const FW_SPIN_SLICE_MS = 5;

/** The budget from the environment: VGPUD_SIM_FW_SPIN_US if it is a number ≥ 0, else DEFAULT_FW_SPIN_US. */
export function firmwareSpinBudgetFromEnv(env: NodeJS.ProcessEnv = process.env): number {
  return budgetFromEnv(env, 'VGPUD_SIM_FW_SPIN_US', DEFAULT_FW_SPIN_US);
}

/** Something the firmware thread serves: a cheap look for work, and a synchronous serve of what is there. */
export interface FirmwareWorkSource {
  /** Work waits (a shared-memory look; called in a tight loop). */
  hasWork(): boolean;
  /**
   * Serve what waits, now, on this thread. Called by ANOTHER source's spin: this source's own loop is asleep and
   * finds the work done when it wakes (its serve must tolerate that: it re-checks and sleeps again).
   */
  serveNow(): void;
}

/** How a spin ended. */
export type FirmwareSpinResult =
  /** The caller's own source has work: go round its loop instead of sleeping. */
  | 'own'
  /** Nothing came within the budget (or no spin was due): sleep. */
  | 'sleep';

export class FirmwareSpin {
  readonly spin: AdaptiveSpin;
  private readonly sources: FirmwareWorkSource[] = [];
  /** Work of another source served from inside a spin (stats and tests). */
  servedForOthers = 0;
  /** When the last look that missed began (performance.now()), until the next command is served; else -1. */
  private missedAt = -1;

  constructor(budgetUs: number = firmwareSpinBudgetFromEnv()) {
    this.spin = new AdaptiveSpin(budgetUs);
  }

  /** Add a source; returns its removal. */
  add(source: FirmwareWorkSource): () => void {
    this.sources.push(source);
    return () => {
      const i = this.sources.indexOf(source);
      if (i >= 0) this.sources.splice(i, 1);
    };
  }

  /**
   * `own` is about to sleep. If it served something since its last sleep (`served`), look for work of every source
   * for up to the budget: the own source's work returns 'own'; another source's is served here (serveNow) and the
   * look goes on, with a fresh budget, since that too was a command served. Without `served`, or while backing off,
   * returns 'sleep' at once. Hands the thread back after FW_SPIN_SLICE_MS of serving others however busy it is.
   */
  beforeSleep(own: FirmwareWorkSource, served: boolean): FirmwareSpinResult {
    if (!served) return 'sleep';
    const now = performance.now();
    if (this.missedAt >= 0) {
      // The look after the previous reply missed; this command is the one it waited for: learn how far off it was
      // (an over-estimate by this command's own service time; capped in observe()).
      this.spin.observe(GAP, (now - this.missedAt) * 1000);
      this.missedAt = -1;
    }
    const sliceEnd = now + FW_SPIN_SLICE_MS;
    const hit: { source: FirmwareWorkSource | null } = { source: null };
    const anyWork = (): boolean => {
      if (own.hasWork()) {
        hit.source = own;
        return true;
      }
      for (const s of this.sources) {
        if (s !== own && s.hasWork()) {
          hit.source = s;
          return true;
        }
      }
      return false;
    };
    for (;;) {
      hit.source = null;
      const us = this.spin.next(GAP);
      if (us <= 0) return 'sleep';
      const start = performance.now();
      if (!this.spin.spin(anyWork, us)) {
        this.missedAt = start;
        return 'sleep';
      }
      this.spin.observe(GAP, (performance.now() - start) * 1000);
      const other = hit.source as FirmwareWorkSource | null; // set by anyWork (TS cannot see through the closure)
      if (other === null || other === own) return 'own';
      this.servedForOthers++;
      other.serveNow();
      if (performance.now() >= sliceEnd) return own.hasWork() ? 'own' : 'sleep';
    }
  }
}
