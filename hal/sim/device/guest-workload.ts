/**
 * A simulated guest workload on one vGPU, for tests: the work a VM's driver keeps submitting to its vGPU, seen as
 * what a host can observe of it — FB pages of the vGPU changing while it runs. It runs on the device's GSP thread
 * next to the vGPU's plugin task and writes only while that task lets the vGPU run: MIGRATION_STOP_WORK stops it
 * (as it quiesces a real vGPU: no channel progress, no FB writes; docs/migration.md), RESUME_WORK or CANCEL_STOP
 * let it go on, and the task's shutdown ends it. Nothing starts one by itself: a test asks through
 * SimTestControls.guestWorkload. A guest's own CPU writes through a mapped BAR are the VMM's to pause, not the
 * device's, and are not simulated here.
 *
 * Deterministic: write number i puts page pageOf(i) of a window at the start of the guest FB into a state that
 * depends on (seed, i) only, so the window a run leaves behind follows from its write count alone
 * (`replayGuestWorkload`): a test can check a migrated FB byte for byte without a copy of the source.
 */
import type { SharedArena } from '../../../native/native-ops.js';

export const WORKLOAD_PAGE = 4096;
/** How often the workload writes its share (its rate is an average over these ticks). */
const TICK_MS = 10;

export interface GuestWorkloadOptions {
  /** Average write rate, MiB/s. */
  rateMiBps: number;
  seed?: number;
  /** Bytes at the start of the guest FB it writes into (page multiple; default 16 MiB, at most the FB). */
  windowBytes?: number;
}

/** What SimTestControls.guestWorkload does: start a workload with these options, report it, or end it. */
export type GuestWorkloadCommand = GuestWorkloadOptions | 'stats' | 'end';

export interface GuestWorkloadStats {
  /** Writes done (each one whole page). */
  writes: number;
  /** Timer ticks seen so far, also while held (a test waits for ticks, not for time, to see it hold). */
  ticks: number;
  seed: number;
  windowBytes: number;
  /** 'running' writes, 'held' waits for the vGPU to run again, 'ended' stopped for good. */
  state: 'running' | 'held' | 'ended';
}

/** The vGPU as the workload sees it: may it write now, and is it still there at all. */
export interface WorkloadGate {
  running(): boolean;
  gone(): boolean;
}

/** 32-bit mix (murmur3 finalizer): spreads (seed, i) over pages and contents. */
function mix(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}

function pageOf(seed: number, i: number, pages: number): number {
  return mix((seed ^ Math.imul(i + 1, 0x9e3779b9)) >>> 0) % pages;
}

/** Page contents of write i: one 32-bit word from (seed, i) repeated, its first word replaced by i. */
function writePage(page: Buffer, seed: number, i: number): void {
  const word = Buffer.alloc(4);
  word.writeUInt32LE(mix((seed + Math.imul(i, 0x27d4eb2f)) >>> 0));
  page.fill(word);
  page.writeUInt32LE(i >>> 0, 0);
}

/** What the window holds after `writes` writes of a workload (pages never written stay as they were: zero here). */
export function replayGuestWorkload(o: { seed: number; windowBytes: number }, writes: number): Buffer {
  const out = Buffer.alloc(o.windowBytes);
  const pages = o.windowBytes / WORKLOAD_PAGE;
  for (let i = 0; i < writes; i++) {
    const p = pageOf(o.seed, i, pages);
    writePage(out.subarray(p * WORKLOAD_PAGE, (p + 1) * WORKLOAD_PAGE), o.seed, i);
  }
  return out;
}

export class GuestWorkload {
  private writes = 0;
  private ticks = 0;
  private credit = 0;
  private ended = false;
  private readonly timer: NodeJS.Timeout;
  private readonly pages: number;
  readonly seed: number;
  readonly windowBytes: number;

  /** `fbBase`: arena offset of guest FB byte 0; `fbBytes`: its length. */
  constructor(private readonly arena: SharedArena, private readonly fbBase: bigint, fbBytes: bigint, o: GuestWorkloadOptions, private readonly gate: WorkloadGate) {
    this.seed = (o.seed ?? 1) >>> 0;
    const want = BigInt(o.windowBytes ?? 16 << 20);
    const bytes = want < fbBytes ? want : fbBytes;
    this.windowBytes = Number(bytes - (bytes % BigInt(WORKLOAD_PAGE)));
    this.pages = this.windowBytes / WORKLOAD_PAGE;
    const perTick = (o.rateMiBps * 2 ** 20 * TICK_MS) / 1000 / WORKLOAD_PAGE;
    // unref: a workload never keeps the GSP thread alive on its own.
    this.timer = setInterval(() => this.tick(perTick), TICK_MS).unref();
  }

  private tick(perTick: number): void {
    this.ticks++;
    if (this.gate.gone()) { this.end(); return; }
    if (!this.gate.running()) { this.credit = 0; return; }
    this.credit += perTick;
    for (; this.credit >= 1; this.credit--) {
      const p = pageOf(this.seed, this.writes, this.pages);
      writePage(this.arena.window(this.fbBase + BigInt(p * WORKLOAD_PAGE), WORKLOAD_PAGE), this.seed, this.writes);
      this.writes++;
    }
  }

  end(): void {
    this.ended = true;
    clearInterval(this.timer);
  }

  stats(): GuestWorkloadStats {
    const state = this.ended ? 'ended' : this.gate.gone() ? 'ended' : this.gate.running() ? 'running' : 'held';
    return { writes: this.writes, ticks: this.ticks, seed: this.seed, windowBytes: this.windowBytes, state };
  }
}
