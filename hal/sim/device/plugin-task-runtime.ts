/**
 * What the plugin tasks of one simulated GSP share: the device region, and the watcher of the VF priv doorbell (PF
 * BAR0 0xB82200, docs/reference/host-rpc-mailbox.md). Installed once per GSP thread by sim-gsp-rm-handler.ts; a
 * PluginTask started on a thread without it (SimGspRm in a unit test) only logs.
 *
 * Doorbell: every gfid rings the same register with gfid·32 + 17, so a value says little — two hosts can ring
 * before the device looks. The watcher therefore treats the register as "something happened": it consumes it
 * (writes 0), then lets EVERY task scan its own control buffer for a new sequence number. It then sleeps on the
 * word with wait32(…, 0): a ring after the scan has made the word non-zero and wakes it (or returns at once),
 * so no ring is lost between the scan and the sleep. The host's register write also wakes the word
 * (GspRegisterWindow.write32). Idle, the watcher sleeps with no timeout at all — a doorbell, a new task or the GSP
 * halting (wake()) is what wakes it; only a task waiting for its host header or consuming a restore (both FB
 * writes, which ring nothing) is scanned on a short period, and only for as long as that lasts.
 *
 * After a scan a doorbell asked for (a call, most likely answered by it), the watcher looks a little while longer
 * before it sleeps — at the doorbell and at GSP-RM's command queue, whose loop shares this thread and the back-off
 * (firmware-spin.ts): a host sends its next command within tens of µs, and an always-running GSP sees it at once.
 */
import type { SharedArena } from '../../../native/native-ops.js';
import type { FirmwareSpin, FirmwareWorkSource } from '../gsp/firmware-spin.js';
import { MgmtHeap, gfidFromDoorbell } from '../../../core/firmware-abi/vgpu-mailbox.js';
import { Bar0, Region } from './device-layout.js';
import { appendLogRing, logLine } from './log-ring.js';
import type { PluginTask, PluginTaskMemory } from './plugin-task.js';
import { GuestWorkload, type GuestWorkloadCommand, type GuestWorkloadOptions, type GuestWorkloadStats } from './guest-workload.js';

export interface PluginTaskRuntimeIo {
  arena: SharedArena;
  /** Arena offset of FB byte 0. */
  fbOffset: bigint;
  /** False once GSP-RM stopped or crashed: the watcher ends and nothing is answered any more. */
  isRunning(): boolean;
  /** The firmware's record of a gfid's task: undefined once CLEANUP removed it. */
  taskState(gfid: number): 'running' | 'shutdown' | undefined;
  /** The GSP thread's look-before-sleep (GspRpcServer.firmwareSpin); without it the watcher sleeps at once. */
  firmwareSpin?: FirmwareSpin;
}

/** What the device writes into the doorbell register to wake its own watcher (no host writes it: not gfid·32 + 17). */
const INTERNAL_POKE = 0xffffffff;

/** Scan period while a task waits for its host header or consumes a restore (FB writes ring no doorbell). */
const HEADER_SCAN_MS = 2;
/** A watcher that keeps finding rings without waiting yields to the thread's event loop at least this often (ms). */
const MACROTASK_YIELD_MS = 5;

let current: PluginTaskRuntime | null = null;

export function installPluginTaskRuntime(io: PluginTaskRuntimeIo): PluginTaskRuntime {
  current = new PluginTaskRuntime(io);
  return current;
}

export function currentPluginTaskRuntime(): PluginTaskRuntime | null {
  return current;
}

export class PluginTaskRuntime {
  private readonly tasks = new Map<number, PluginTask>();
  /** Test workloads by gfid; an ended one stays for its stats until the next starts. */
  private readonly workloads = new Map<number, GuestWorkload>();
  private loop: Promise<void> | null = null;
  private readonly bell: bigint;
  /** Doorbells rung (for the stats a test may read). */
  rings = 0;
  /** The doorbell as a source of work for the firmware thread's spin. */
  private readonly source: FirmwareWorkSource;

  constructor(private readonly io: PluginTaskRuntimeIo) {
    this.bell = BigInt(Region.BAR0 + Bar0.VF_PRIV_DOORBELL);
    this.source = {
      hasWork: () => this.tasks.size > 0 && io.isRunning() && io.arena.load32(this.bell) !== 0,
      // GSP-RM's loop found the doorbell rung while our watcher sleeps: scan now (the watcher, woken by the same
      // ring, then finds it consumed and sleeps again).
      serveNow: () => {
        this.scanOnce();
      },
    };
    io.firmwareSpin?.add(this.source);
  }

  /** The device region and where FB byte 0 is in it (the guest side of a task reaches the VF pages through it). */
  get arena(): SharedArena {
    return this.io.arena;
  }

  get fbBase(): bigint {
    return this.io.fbOffset;
  }

  memoryFor(heapAddr: bigint): PluginTaskMemory {
    const a = this.io.arena;
    const base = this.io.fbOffset + heapAddr;
    return {
      comm: a.window(base, MgmtHeap.COMM_BUFF_SIZE),
      load32: (off) => a.load32(base + BigInt(off)),
      store32: (off, v) => a.store32(base + BigInt(off), v >>> 0),
      publish32: (off, v) => {
        a.store32(base + BigInt(off), v >>> 0);
        a.wake32(base + BigInt(off));
      },
    };
  }

  /**
   * A task for its gfid (a new bootload replaces the shut-down task of an earlier vGPU). `awaitingHeader`: the task
   * still waits for the host's control-buffer header (see below); a task that found it already needs no wake-up —
   * the host's next call rings the doorbell, which wakes the watcher.
   */
  register(task: PluginTask, awaitingHeader = true): void {
    this.tasks.set(task.gfid, task);
    // The watcher may be asleep in a long idle wait from before this task existed, and the host's control-buffer
    // header (what a new task waits for) is an FB write, not a register write that would wake it: wake it now so
    // the new task is scanned at the fast rate from the start.
    if (awaitingHeader) this.poke();
    this.loop ??= this.watch().finally(() => { this.loop = null; });
  }

  /** Wake the watcher (GSP-RM halted: it must notice and end instead of sleeping on). */
  wake(): void {
    this.poke();
  }

  /**
   * Wake the watcher from inside the device. The word must CHANGE, not only be woken: the addon's futex wait can be
   * entered a moment after a bare wake (its waiter thread starts late under load), and would then sleep on with the
   * value it expected — forever, since the watcher has no timeout. A register still holding the host's ring is
   * already a change; otherwise the device writes its own marker, which the scan treats as "look", not as a gfid.
   */
  private poke(): void {
    const a = this.io.arena;
    if (a.load32(this.bell) === 0) a.store32(this.bell, INTERNAL_POKE);
    a.wake32(this.bell);
  }

  task(gfid: number): PluginTask | undefined {
    return this.tasks.get(gfid);
  }

  /**
   * Start (options), report ('stats') or end ('end') the simulated guest workload of the vGPU on `gfid`
   * (guest-workload.ts); null when there is none. It writes while that vGPU's plugin task runs and is not stopped
   * for a migration, and ends with the task.
   */
  guestWorkload(gfid: number, cmd: GuestWorkloadCommand): GuestWorkloadStats | null {
    const old = this.workloads.get(gfid);
    if (cmd === 'stats') return old?.stats() ?? null;
    if (cmd === 'end') {
      old?.end();
      return old?.stats() ?? null;
    }
    const opts: GuestWorkloadOptions = cmd;
    const task = this.tasks.get(gfid);
    if (task === undefined || task.state !== 'running') throw new Error(`no running plugin task for gfid ${gfid}: create its vGPU first`);
    const fb = task.params.guestFbPhysAddrList[0];
    const len = task.params.guestFbLengthList[0];
    if (fb === undefined || len === undefined || len === 0n) throw new Error(`the plugin task of gfid ${gfid} has no guest FB`);
    if (!(opts.rateMiBps > 0)) throw new Error('rateMiBps must be positive');
    old?.end();
    const mine = (): boolean => this.tasks.get(gfid) === task && task.state === 'running' && this.io.taskState(gfid) !== undefined;
    const w = new GuestWorkload(this.io.arena, this.io.fbOffset + fb, len, opts, {
      running: () => mine() && task.work === 'running' && this.io.isRunning(),
      gone: () => !mine() || !this.io.isRunning(),
    });
    this.workloads.set(gfid, w);
    return w.stats();
  }

  /** One scan of every task; `rung` is the gfid the doorbell value named, if any (for the log only). */
  scan(rung: number | null): void {
    for (const [gfid, t] of this.tasks) {
      if (this.io.taskState(gfid) === undefined) { // cleaned up: its heap may belong to someone else now
        this.tasks.delete(gfid);
        continue;
      }
      t.poll();
    }
    if (rung !== null && !this.tasks.has(rung)) this.gspLog(`VF doorbell for gfid ${rung} ignored: no plugin task`);
  }

  /** Consume the doorbell and scan every task. Returns whether a host or guest had rung (not just a poke). */
  private scanOnce(): boolean {
    const a = this.io.arena;
    const v = a.load32(this.bell);
    let rung: number | null = null;
    if (v !== 0) {
      a.store32(this.bell, 0);
      if (v !== INTERNAL_POKE) {
        this.rings++;
        rung = gfidFromDoorbell(v);
      }
    }
    try {
      this.scan(rung);
    } catch (e) {
      // A task bug must not kill the GSP thread's other tasks; it shows in the GSP log.
      this.gspLog(`plugin task scan failed: ${(e as Error).stack ?? String(e)}`);
    }
    return v !== 0 && v !== INTERNAL_POKE;
  }

  private async watch(): Promise<void> {
    const a = this.io.arena;
    const spin = this.io.firmwareSpin;
    let lastYield = performance.now();
    while (this.io.isRunning() && this.tasks.size > 0) {
      const rung = this.scanOnce();
      let fast = false;
      for (const t of this.tasks.values()) if (t.needsFastScan) { fast = true; break; }
      if (!this.io.isRunning()) break;
      // A ring was served: look for the next one (or GSP-RM's next command) before sleeping (firmware-spin.ts).
      if (spin !== undefined && spin.beforeSleep(this.source, rung) === 'own') {
        // Rings that keep coming never let this loop wait: give the thread's timers and messages a turn now and then.
        if (performance.now() - lastYield > MACROTASK_YIELD_MS) {
          await new Promise<void>((r) => setImmediate(r));
          lastYield = performance.now();
        }
        continue;
      }
      await a.wait32(this.bell, 0, fast ? HEADER_SCAN_MS : Infinity);
      lastYield = performance.now();
    }
  }

  private gspLog(line: string): void {
    appendLogRing(this.io.arena.window(BigInt(Region.GSP_LOG), Region.GSP_LOG_SIZE), logLine(line));
  }
}
