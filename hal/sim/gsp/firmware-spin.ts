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
 * does (core/runtime/adaptive-spin.ts): a spin that sees nothing makes the next 1, 2, 4 … 32 chances skip spinning,
 * so a host that calls seldom, or a loaded 2-core host — where the host's own wake-up takes hundreds of µs and a look
 * would only burn the core it needs to wake on — leaves the firmware asleep between calls as before.
 * Two things that were tried and measured worse, on the 2-core host at load 5–8 (docs/benchmarks.md "Wake-ups per
 * round trip"): a budget learned from the reply-to-next-command gaps (as the host's spin learns its) dropped to 0
 * under load and never came back — a look not taken learns nothing; and ending the back-offs (this one's and the
 * host's) as soon as a command or an answer came within the budget made both sides spin on a host with no core to
 * spare, where a spinner holds the core the other side needs: bench:rpc's p50 went from 32 to 232 µs. Under load
 * the two back-offs may settle on both sides sleeping — as before this look existed, no worse; on a host with a
 * core to spare the look catches the host's next command (its wake-up, 60–90 µs, plus its think time fit the
 * budget) and the host's spin then catches the replies.
 * One per firmware thread: the GSP-RM command loop and the plugin-task mailbox watcher share it, and each one's spin
 * looks at the other's work too — the thread serves either at once.
 *
 * `VGPUD_SIM_FW_SPIN_US` sets the budget (µs, 0 = never spin); unset: DEFAULT_FW_SPIN_US.
 */
import { AdaptiveSpin, budgetFromEnv } from '../../../core/runtime/adaptive-spin.js';

/**
 * Budget when VGPUD_SIM_FW_SPIN_US is unset (µs). It must cover the host's think time between a reply and its next
 * command plus, when the host slept for the reply, the host's own wake-up (60–90 µs on an idle 2-core VM). Inside a
 * create the lifecycle's think time between two commands is longer than a bare caller's (its steps, events and
 * journal sit between them), and 200 µs missed it: on the quiet 2-core host, compiled bench:lifecycle, the firmware
 * slept before 35–40 % of commands at 200 µs (create p50 0.80–1.19 ms), 21–26 % at 600 µs (0.57–0.88 ms) and 8–12 %
 * at 1000 µs (0.48–0.63 ms) — docs/benchmarks.md. 600 µs takes most of the gain; a look that misses costs at most
 * that much CPU and then backs off.
 */
export const DEFAULT_FW_SPIN_US = 600;
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
    const sliceEnd = performance.now() + FW_SPIN_SLICE_MS;
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
      if (!this.spin.spin(anyWork)) return 'sleep';
      const other = hit.source as FirmwareWorkSource | null; // set by anyWork (TS cannot see through the closure)
      if (other === null || other === own) return 'own';
      this.servedForOthers++;
      other.serveNow();
      if (performance.now() >= sliceEnd) return own.hasWork() ? 'own' : 'sleep';
    }
  }
}
