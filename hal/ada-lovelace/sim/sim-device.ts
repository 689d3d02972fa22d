/**
 * The device itself: one simulated Ada GPU running on a region it has been given. Used by both modes — the
 * vgpu-sim process (file region) and startSimDevice in worker mode (SAB region) — so the two behave the same.
 *
 * Threads: this object lives on the device's main thread (the vgpu-sim process, or the test's main thread in
 * worker mode). GSP-RM runs on its OWN worker thread (hal/sim/gsp/gsp-worker.ts with ada-firmware-handler.ts),
 * started when the host sets STARTCPU in the GSP falcon's CPUCTL register — as a real driver starts the GSP after
 * it has set up the shared queues — and stopped on the halt request or when the device stops.
 *
 * The main thread also raises the device's interrupts (irq-hub.ts; protocol in irq-protocol.ts): host events, log
 * text the plugin tasks wrote, GSP-RM state changes and completed resets reach every listener the moment they
 * happen, and the link closing tells a listener the device is gone. Idle, the device has no timer: its main thread
 * sleeps on the device doorbell (Header.DEVICE_DOORBELL, rung by the host after a CPUCTL or FLR write), the GSP
 * thread on its command doorbell and the plugin tasks on the VF priv doorbell.
 */
import { siblingModule } from '../../../core/runtime/module-entry.js';
import type { SharedArena } from '../../../native/native-ops.js';
import { ErrorCode, VgpuError } from '../../../core/contracts/exceptions.js';
import { GspControl, GspFwState, GspRegion } from '../../gsp/gsp-layout.js';
import { startGspWorker, type GspWorkerHandle } from '../../sim/gsp/gsp-worker-host.js';
import type { GspFault, GspServerStats } from '../../sim/gsp/gsp-rpc-server.js';
import type { AdaBoard } from '../chips.js';
import type { SimEventRequest } from './ada-firmware.js';
import type { AdaFirmwareCommand, AdaFirmwareHandlerOptions } from './ada-firmware-handler.js';
import { Bar0, Cpuctl, DeviceState, Header, Region } from './device-layout.js';
import { powerOnRegion, readHeader, resetFirmwareState, setDeviceState } from './device-region.js';
import { postHostEvent } from './host-events.js';
import { IrqHub } from './irq-hub.js';
import { clearIrqAddress, decodeIrqLine, ringDevice, writeIrqAddress, type IrqMessage } from './irq-protocol.js';
import { PCIE_DEVCTL, PCIE_DEVCTL_BCR_FLR, PF_PCIE_CAP } from './pci-config.js';
import { setNumVfs } from './sriov-configure.js';
import type { GuestWorkloadCommand, GuestWorkloadStats } from './guest-workload.js';

export interface SimDeviceOptions {
  arena: SharedArena;
  board: AdaBoard;
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
   * A host-side event of the PF (docs/reference/core-driver-interface.md), delivered to the HAL's `onHostEvent`
   * listeners through the device's host-event ring. 'sriov-configure' also changes NumVFs in config space first (VFs
   * past it vanish).
   */
  hostEvent(e: { kind: 'unbind' | 'sriov-configure' | 'suspend' | 'resume'; numVfs?: number }): Promise<void>;
  /**
   * Start (options), report ('stats') or end ('end') a simulated guest workload on the vGPU of `gfid`
   * (guest-workload.ts: writes its FB while the vGPU runs, held by MIGRATION_STOP_WORK); resolves with its stats
   * (null: there is none).
   */
  guestWorkload(gfid: number, cmd: GuestWorkloadCommand): Promise<GuestWorkloadStats | null>;
  /**
   * The device drops off the bus as if its process had died (kill -9): its interrupt link closes, GSP-RM's thread
   * is killed, and the header is left as it was (still "running", firmware state frozen). `replug` brings it back.
   */
  unplug(): Promise<void>;
  /** Power the device on again after `unplug`, on the same region (FB kept; a new generation, GSP-RM halted). */
  replug(): Promise<void>;
  /** Listeners connected to the interrupt link. */
  irqListeners(): Promise<number>;
  /**
   * GSP-RM hangs: its thread is killed without a word — FW_STATE stays RUNNING, nothing answers, the heartbeat no
   * longer moves. The device itself (and its link) stays up. A reset (FLR) or a new STARTCPU starts a fresh GSP-RM.
   */
  hangGsp(): Promise<void>;
}

const HANDLER_MODULE = siblingModule(import.meta.url, './ada-firmware-handler');

export class SimDevice implements SimTestControls {
  reattached: boolean;
  private gsp: GspWorkerHandle | null = null;
  private gspStarting: Promise<void> | null = null;
  private hub: IrqHub | null = null;
  private stopped = false;
  private unplugged = false;
  private watchDone: Promise<void> = Promise.resolve();
  private readonly cpuctl: bigint;
  private readonly doorbell: bigint;
  private readonly devctl: bigint;

  constructor(private readonly o: SimDeviceOptions) {
    this.reattached = this.powerOn();
    this.cpuctl = BigInt(Region.BAR0 + Bar0.PGSP_CPUCTL);
    this.doorbell = BigInt(Header.DEVICE_DOORBELL);
    this.devctl = BigInt(Region.PF_CONFIG + PF_PCIE_CAP + PCIE_DEVCTL);
  }

  get arena(): SharedArena {
    return this.o.arena;
  }

  private powerOn(): boolean {
    return powerOnRegion(this.o.arena, {
      board: this.o.board, bdf: this.o.bdf, fbBytes: this.o.fbBytes, firmwareVersion: this.o.firmwareVersion, numVfs: this.o.numVfs, pid: process.pid,
    }).reattached;
  }

  /**
   * Power the device up: open the interrupt link, publish its address, say Running, then serve the host's writes.
   * A host waiting for this device to come back (a reset after a surprise removal) sleeps on the header's
   * generation word: it is woken last, when everything it needs is in place.
   */
  async start(): Promise<void> {
    const a = this.o.arena;
    this.hub = await IrqHub.listen(IrqHub.defaultAddress(this.o.bdf), {
      bdf: this.o.bdf, generation: readHeader(a).generation,
      log: (line) => { if (this.o.verbose) console.error(`[vgpu-sim] ${line}`); },
    });
    writeIrqAddress(a, this.hub.address);
    setDeviceState(a, DeviceState.Running);
    a.wake32(BigInt(Header.GENERATION));
    this.watchDone = this.watch();
  }

  /** Stop the device: GSP-RM stops (host calls fail with GpuLost), the header says Stopped; contents are kept. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    ringDevice(this.o.arena); // a change of the word, not just a wake: a wake can land before the waiter sleeps
    await this.watchDone;
    await this.stopGsp();
    this.mirrorFirmwareState();
    if (!this.unplugged) {
      clearIrqAddress(this.o.arena);
      setDeviceState(this.o.arena, DeviceState.Stopped);
    }
    // Last: a listener that sees the link close finds the header already saying Stopped (a clean stop, not a death).
    await this.hub?.close();
    this.hub = null;
  }

  // ---- the host's writes: GSP CPUCTL (start/halt GSP-RM) and the PF's FLR bit ---------------------------------

  private async watch(): Promise<void> {
    const a = this.o.arena;
    while (!this.stopped && !this.unplugged) {
      const seen = a.load32(this.doorbell);
      const devctl = a.load32(this.devctl);
      if ((devctl & PCIE_DEVCTL_BCR_FLR) !== 0) {
        await this.functionLevelReset();
        continue;
      }
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
        a.wake32(this.cpuctl);
        continue;
      }
      // No timeout: the host rings the device doorbell after every write that needs us, and stop() rings it too.
      await a.wait32(this.doorbell, seen, Infinity);
    }
  }

  /**
   * PCIe FLR of the PF (Device Control bit 15, set by the host): GSP-RM and every plugin task are gone, the firmware
   * state and the log directory reset as at power-on, FB contents kept (an FLR does not clear VRAM). The bit reads
   * back 0 when the reset is done (the host may sleep on the config word) and listeners get a reset interrupt.
   * Config space stays as the host had it: Linux saves and restores it around a reset (pci_reset_function with
   * pci_dev_save_and_disable / pci_dev_restore in drivers/pci/pci.c) [inference: the simulator skips that round trip].
   */
  private async functionLevelReset(): Promise<void> {
    const a = this.o.arena;
    if (this.gsp !== null) await this.stopGsp(true);
    resetFirmwareState(a);
    const word = a.load32(this.devctl);
    a.store32(this.devctl, (word & ~PCIE_DEVCTL_BCR_FLR) >>> 0);
    a.wake32(this.devctl);
    this.hub?.raise({ t: 'irq', src: 'reset', phase: 'done' });
  }

  private async startGsp(): Promise<void> {
    const a = this.o.arena;
    // A restart replaces whatever GSP thread ran before (after a crash the old thread still exists).
    if (this.gsp !== null) await this.stopGsp();
    a.store32(this.cpuctl, 0);
    const opts: AdaFirmwareHandlerOptions = {
      boardKey: this.o.board.key,
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
        onIrq: (data) => this.fromGsp(data),
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
    this.hub?.raise({ t: 'irq', src: 'gsp', state: 'running' });
  }

  /** An interrupt from the GSP thread: mirror what changed, then pass it on to the listeners. */
  private fromGsp(data: unknown): void {
    const m = typeof data === 'object' && data !== null ? decodeIrqLine(JSON.stringify(data)) : null;
    if (m === null || m.t !== 'irq') return;
    if (m.src === 'gsp') this.mirrorFirmwareState();
    this.hub?.raise(m);
  }

  private async stopGsp(kill = false): Promise<void> {
    const g = this.gsp;
    this.gsp = null;
    if (g !== null) {
      const fw = this.o.arena.load32(BigInt(Region.GSP_QUEUES + GspRegion.CONTROL + GspControl.FW_STATE));
      if (kill || fw === GspFwState.Crashed) {
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
        hint: 'boot the GPU (AdaHal open + firmware.boot) before injecting faults or raising events',
      });
    }
    return this.gsp;
  }

  async inject(fault: GspFault): Promise<void> {
    const g = await this.need();
    await this.acked(g, g.inject(fault));
    if (fault.kind === 'crash') this.mirrorFirmwareState();
  }
  async crash(reason?: number): Promise<void> {
    const g = await this.need();
    await this.acked(g, g.crash(reason));
    this.mirrorFirmwareState();
  }

  /**
   * A crash is acted on at once by a host that resets the GPU: its FLR can kill the GSP thread before that thread's
   * acknowledgement of the crash arrives. The crash happened; only the ack was lost.
   */
  private async acked(g: GspWorkerHandle, p: Promise<void>): Promise<void> {
    try {
      await p;
    } catch (e) {
      if (this.gsp === g) throw e;
    }
  }
  async raiseEvent(event: SimEventRequest): Promise<void> {
    await (await this.need()).command({ op: 'raise', event } satisfies AdaFirmwareCommand);
  }
  async uploadedTypes(): Promise<Array<{ id: number; name: string; maxInstance: number; fbLength: string }>> {
    return (await (await this.need()).command({ op: 'types' } satisfies AdaFirmwareCommand)) as Array<{ id: number; name: string; maxInstance: number; fbLength: string }>;
  }
  async pluginTask(gfid: number): Promise<'running' | 'shutdown' | null> {
    return (await (await this.need()).command({ op: 'task', gfid } satisfies AdaFirmwareCommand)) as 'running' | 'shutdown' | null;
  }
  async rmClients(): Promise<number> {
    return (await (await this.need()).command({ op: 'clients' } satisfies AdaFirmwareCommand)) as number;
  }
  async gspStats(): Promise<GspServerStats> {
    return (await this.need()).stats();
  }
  async hostEvent(e: { kind: 'unbind' | 'sriov-configure' | 'suspend' | 'resume'; numVfs?: number }): Promise<void> {
    let seq: number;
    if (e.kind === 'sriov-configure') {
      const n = e.numVfs ?? 0;
      if (!Number.isInteger(n) || n < 0 || n > this.o.board.totalVfs) {
        throw new VgpuError(ErrorCode.InvalidArgument, `sriov-configure numVfs ${String(e.numVfs)} is outside 0..${this.o.board.totalVfs}`, {
          hint: `pass numVfs between 0 and TotalVFs (${this.o.board.totalVfs})`,
        });
      }
      setNumVfs(this.o.arena, this.o.board, n);
      seq = postHostEvent(this.o.arena, { kind: e.kind, numVfs: n });
    } else {
      seq = postHostEvent(this.o.arena, { kind: e.kind });
    }
    this.hub?.raise({ t: 'irq', src: 'host-event', seq } satisfies IrqMessage);
  }
  async guestWorkload(gfid: number, cmd: GuestWorkloadCommand): Promise<GuestWorkloadStats | null> {
    return (await (await this.need()).command({ op: 'guest-workload', gfid, cmd } satisfies AdaFirmwareCommand)) as GuestWorkloadStats | null;
  }
  async gspRunning(): Promise<boolean> {
    if (this.gspStarting !== null) await this.gspStarting;
    return this.gsp !== null;
  }

  async unplug(): Promise<void> {
    if (this.unplugged || this.stopped) return;
    this.unplugged = true;
    ringDevice(this.o.arena); // a change of the word, not just a wake: a wake can land before the waiter sleeps
    await this.watchDone;
    if (this.gspStarting !== null) await this.gspStarting.catch(() => undefined);
    const g = this.gsp;
    this.gsp = null;
    await g?.terminate(); // dies mid-sentence: FW_STATE and the header stay as they were, as after a kill -9
    await this.hub?.close();
    this.hub = null;
  }

  async replug(): Promise<void> {
    if (!this.unplugged || this.stopped) return;
    this.unplugged = false;
    this.reattached = this.powerOn();
    await this.start();
  }

  async irqListeners(): Promise<number> {
    return this.hub?.listeners ?? 0;
  }

  async hangGsp(): Promise<void> {
    const g = await this.need();
    this.gsp = null;
    await g.terminate();
  }
}
