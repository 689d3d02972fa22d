/**
 * The device itself: one simulated GSP GPU (any generation) running on a region it has been given. Used by both modes — the
 * vgpu-sim process (file region) and startSimDevice in worker mode (SAB region) — so the two behave the same.
 *
 * Threads: this object lives on the device's main thread (the vgpu-sim process, or the test's main thread in
 * worker mode). GSP-RM runs on its OWN worker thread (hal/sim/gsp/gsp-worker.ts with sim-gsp-rm-handler.ts),
 * started when the host sets STARTCPU in the GSP falcon's CPUCTL register — as a real driver starts the GSP after
 * it has set up the shared queues — and stopped on the halt request or when the device stops.
 *
 * The main thread keeps the device header's heartbeat and the firmware-state mirrors (header word, BAR0 mailbox 0)
 * up to date so a host can tell a live device from a stale file.
 */
import { siblingModule } from '../../../core/runtime/module-entry.js';
import type { SharedArena } from '../../../native/native-ops.js';
import { ErrorCode, VgpuError } from '../../../core/contracts/exceptions.js';
import { GspControl, GspFwState, GspRegion } from '../../gsp/gsp-layout.js';
import { startGspWorker, type GspWorkerHandle } from '../gsp/gsp-worker-host.js';
import type { GspFault, GspServerStats } from '../gsp/gsp-rpc-server.js';
import type { SimBoard } from '../board/sim-board.js';
import type { SimEventRequest } from './sim-gsp-rm.js';
import type { SimGspRmCommand, SimGspRmHandlerOptions } from './sim-gsp-rm-handler.js';
import { Bar0, Cpuctl, DEVICE_HEARTBEAT_MS, DeviceState, Header, Region } from './device-layout.js';
import { powerOnRegion, setDeviceState } from './device-region.js';
import { postHostEvent } from './host-events.js';
import { setNumVfs } from './sriov-configure.js';
import type { GuestWorkloadCommand, GuestWorkloadStats } from './guest-workload.js';

export interface SimDeviceOptions {
  arena: SharedArena;
  board: SimBoard;
  bdf: string;
  fbBytes: bigint;
  firmwareVersion: string;
  numVfs: number;
  eccEnabled?: boolean;
  /** GSP heartbeat period (ms); the host declares the firmware lost after its heartbeat timeout. */
  gspHeartbeatMs?: number;
  /** Print the simulated GSP's warnings to stderr. */
  verbose?: boolean;
}

/** What tests (and the vgpu-sim IPC channel) can do to a running device. */
export interface SimTestControls {
  /** Arm a GSP fault: fail the Nth call of a function with a result, drop/delay a reply, corrupt the next
   *  element, or crash. Throws IllegalState while GSP-RM is not running. */
  inject(fault: GspFault): Promise<void>;
  /** Crash GSP-RM now (FW_STATE = crashed; in-flight host calls fail with GpuLost). */
  crash(reason?: number): Promise<void>;
  /** Raise a firmware event (RC, MMU fault, error log, post event) as GSP-RM would. */
  raiseEvent(event: SimEventRequest): Promise<void>;
  /** vGPU types GSP-RM holds after the host's upload. */
  uploadedTypes(): Promise<Array<{ id: number; name: string; maxInstance: number; fbLength: string }>>;
  /** State of the plugin task of `gfid` (null: none). */
  pluginTask(gfid: number): Promise<'running' | 'shutdown' | null>;
  /** Number of RM clients alive in GSP-RM. */
  rmClients(): Promise<number>;
  gspStats(): Promise<GspServerStats>;
  /** True while a GSP thread runs. */
  gspRunning(): Promise<boolean>;
  /**
   * A host-side event of the PF (seed spec §9), delivered to the HAL's `onHostEvent` listeners through the
   * device's host-event ring. 'sriov-configure' also changes NumVFs in config space first (VFs past it vanish).
   */
  hostEvent(e: { kind: 'unbind' | 'sriov-configure' | 'suspend' | 'resume'; numVfs?: number }): Promise<void>;
  /**
   * Start (options), report ('stats') or end ('end') a simulated guest workload on the vGPU of `gfid`
   * (guest-workload.ts: writes its FB while the vGPU runs, held by MIGRATION_STOP_WORK); resolves with its stats
   * (null: there is none).
   */
  guestWorkload(gfid: number, cmd: GuestWorkloadCommand): Promise<GuestWorkloadStats | null>;
}

const HANDLER_MODULE = siblingModule(import.meta.url, './sim-gsp-rm-handler');

export class SimDevice implements SimTestControls {
  readonly reattached: boolean;
  private gsp: GspWorkerHandle | null = null;
  private gspStarting: Promise<void> | null = null;
  private heartbeat: NodeJS.Timeout | null = null;
  private stopped = false;
  private watchDone: Promise<void> = Promise.resolve();
  private readonly cpuctl: bigint;

  constructor(private readonly o: SimDeviceOptions) {
    this.reattached = powerOnRegion(o.arena, {
      board: o.board, bdf: o.bdf, fbBytes: o.fbBytes, firmwareVersion: o.firmwareVersion, numVfs: o.numVfs, pid: process.pid,
    }).reattached;
    this.cpuctl = BigInt(Region.BAR0 + Bar0.PGSP_CPUCTL);
  }

  get arena(): SharedArena {
    return this.o.arena;
  }

  /** Power the device up: heartbeat, then wait for the host to start GSP-RM. */
  start(): void {
    setDeviceState(this.o.arena, DeviceState.Running);
    const hb = BigInt(Header.HEARTBEAT);
    this.heartbeat = setInterval(() => {
      this.o.arena.store32(hb, (this.o.arena.load32(hb) + 1) >>> 0);
      this.mirrorFirmwareState();
    }, DEVICE_HEARTBEAT_MS);
    this.watchDone = this.watchCpuctl();
  }

  /** Stop the device: GSP-RM stops (host calls fail with GpuLost), the header says Stopped; contents are kept. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.o.arena.wake32(this.cpuctl);
    await this.watchDone;
    await this.stopGsp();
    if (this.heartbeat !== null) clearInterval(this.heartbeat);
    this.heartbeat = null;
    this.mirrorFirmwareState();
    setDeviceState(this.o.arena, DeviceState.Stopped);
  }

  // ---- CPUCTL: the host starts and halts GSP-RM --------------------------------------------------------------

  private async watchCpuctl(): Promise<void> {
    const a = this.o.arena;
    while (!this.stopped) {
      const v = a.load32(this.cpuctl);
      if ((v & Cpuctl.STARTCPU) !== 0) {
        // Published before awaiting: GSP-RM reports RUNNING (and the host may call test controls) a moment
        // before the worker handle is back in our hands.
        this.gspStarting = this.startGsp();
        await this.gspStarting;
        this.gspStarting = null;
        continue;
      }
      if ((v & Cpuctl.SIM_HALT_REQUEST) !== 0) {
        await this.stopGsp();
        a.store32(this.cpuctl, (a.load32(this.cpuctl) & ~Cpuctl.SIM_HALT_REQUEST) >>> 0);
        continue;
      }
      // Bounded wait: a wake from another process arrives through the arena's futex; the timeout only bounds how
      // late `stopped` is noticed.
      await a.wait32(this.cpuctl, v, 250);
    }
  }

  private async startGsp(): Promise<void> {
    const a = this.o.arena;
    // A restart replaces whatever GSP thread ran before (after a crash the old thread still exists).
    if (this.gsp !== null) await this.stopGsp();
    a.store32(this.cpuctl, 0);
    const opts: SimGspRmHandlerOptions = {
      board: this.o.board,
      firmwareVersion: this.o.firmwareVersion,
      numVfs: this.o.numVfs,
      fbOffset: String(Region.FB),
      fbBytes: this.o.fbBytes.toString(),
      ...(this.o.eccEnabled !== undefined ? { eccEnabled: this.o.eccEnabled } : {}),
    };
    try {
      this.gsp = await startGspWorker({
        arena: a,
        base: BigInt(Region.GSP_QUEUES),
        handlerModule: HANDLER_MODULE,
        handlerOptions: opts,
        ...(this.o.gspHeartbeatMs !== undefined ? { heartbeatMs: this.o.gspHeartbeatMs } : {}),
        ...(this.o.verbose !== undefined ? { verbose: this.o.verbose } : {}),
      });
      this.gsp.worker.unref();
    } catch (e) {
      // The host's queues were not set up (or the handler failed): GSP stays halted, the host times out waiting
      // for RUNNING and reports FirmwareBoot.
      a.store32(this.cpuctl, Cpuctl.HALTED);
      if (this.o.verbose) console.error(`[vgpu-sim] GSP start failed: ${(e as Error).message}`);
      return;
    }
    this.mirrorFirmwareState();
  }

  private async stopGsp(): Promise<void> {
    const g = this.gsp;
    this.gsp = null;
    if (g !== null) {
      const fw = this.o.arena.load32(BigInt(Region.GSP_QUEUES + GspRegion.CONTROL + GspControl.FW_STATE));
      if (fw === GspFwState.Crashed) {
        await g.terminate(); // a crashed GSP-RM has nothing to shut down in order; its pending timers must not linger
      } else {
        // Orderly stop, bounded: a thread still sitting on a delayed reply would otherwise hold the exit.
        let timer: NodeJS.Timeout | undefined;
        const late = new Promise<'late'>((r) => { timer = setTimeout(() => r('late'), 1000); });
        const r = await Promise.race([g.stop().then(() => 'ok' as const, () => 'late' as const), late]);
        clearTimeout(timer);
        if (r === 'late') await g.terminate();
      }
    }
    this.o.arena.store32(this.cpuctl, (this.o.arena.load32(this.cpuctl) | Cpuctl.HALTED) >>> 0);
    this.mirrorFirmwareState();
  }

  private mirrorFirmwareState(): void {
    const a = this.o.arena;
    const fw = a.load32(BigInt(Region.GSP_QUEUES + GspRegion.CONTROL + GspControl.FW_STATE));
    const state = this.gsp === null && fw === GspFwState.Running ? GspFwState.Stopped : fw;
    a.store32(BigInt(Header.FIRMWARE_STATE), state);
    a.store32(BigInt(Region.BAR0 + Bar0.PGSP_MAILBOX0), state);
  }

  // ---- test controls ------------------------------------------------------------------------------------------

  private async need(): Promise<GspWorkerHandle> {
    if (this.gspStarting !== null) await this.gspStarting;
    if (this.gsp === null) {
      throw new VgpuError(ErrorCode.IllegalState, `GSP-RM of ${this.o.bdf} is not running`, {
        hint: 'boot the GPU (open it with its HAL and boot the firmware) before injecting faults or raising events',
      });
    }
    return this.gsp;
  }

  async inject(fault: GspFault): Promise<void> {
    await (await this.need()).inject(fault);
    if (fault.kind === 'crash') this.mirrorFirmwareState();
  }
  async crash(reason?: number): Promise<void> {
    await (await this.need()).crash(reason);
    this.mirrorFirmwareState();
  }
  async raiseEvent(event: SimEventRequest): Promise<void> {
    await (await this.need()).command({ op: 'raise', event } satisfies SimGspRmCommand);
  }
  async uploadedTypes(): Promise<Array<{ id: number; name: string; maxInstance: number; fbLength: string }>> {
    return (await (await this.need()).command({ op: 'types' } satisfies SimGspRmCommand)) as Array<{ id: number; name: string; maxInstance: number; fbLength: string }>;
  }
  async pluginTask(gfid: number): Promise<'running' | 'shutdown' | null> {
    return (await (await this.need()).command({ op: 'task', gfid } satisfies SimGspRmCommand)) as 'running' | 'shutdown' | null;
  }
  async rmClients(): Promise<number> {
    return (await (await this.need()).command({ op: 'clients' } satisfies SimGspRmCommand)) as number;
  }
  async gspStats(): Promise<GspServerStats> {
    return (await this.need()).stats();
  }
  async hostEvent(e: { kind: 'unbind' | 'sriov-configure' | 'suspend' | 'resume'; numVfs?: number }): Promise<void> {
    if (e.kind === 'sriov-configure') {
      const n = e.numVfs ?? 0;
      if (!Number.isInteger(n) || n < 0 || n > this.o.board.totalVfs) {
        throw new VgpuError(ErrorCode.InvalidArgument, `sriov-configure numVfs ${String(e.numVfs)} is outside 0..${this.o.board.totalVfs}`, {
          hint: `pass numVfs between 0 and TotalVFs (${this.o.board.totalVfs})`,
        });
      }
      setNumVfs(this.o.arena, this.o.board, n);
      postHostEvent(this.o.arena, { kind: e.kind, numVfs: n });
      return;
    }
    postHostEvent(this.o.arena, { kind: e.kind });
  }
  async guestWorkload(gfid: number, cmd: GuestWorkloadCommand): Promise<GuestWorkloadStats | null> {
    return (await (await this.need()).command({ op: 'guest-workload', gfid, cmd } satisfies SimGspRmCommand)) as GuestWorkloadStats | null;
  }
  async gspRunning(): Promise<boolean> {
    if (this.gspStarting !== null) await this.gspStarting;
    return this.gsp !== null;
  }
}
