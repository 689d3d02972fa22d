/**
 * SEAM: the per-vGPU "GSP plugin" task that BOOTLOAD_GSP_VGPU_PLUGIN_TASK starts inside GSP-RM for one gfid
 * (seed spec §2.3 C6, §4). Today it only records its state and writes its init-task log line; the mailbox
 * protocol it will serve (control/response/message buffers in the mgmt heap, the 0x4E654A6F "bootloaded" magic,
 * the VF priv doorbell at BAR0 0xB82200) arrives with the per-vGPU RPC issue, which replaces `start`/`stop` here
 * without touching the firmware handler that calls them.
 */
import type { BootloadParams } from '../../../core/firmware-abi/rm-controls.js';

export type PluginTaskState = 'running' | 'shutdown';

export interface PluginTaskEnv {
  /** Append a line to one of this gfid's log areas (FB-resident rings). */
  log(area: 'init-task' | 'vgpu-task' | 'kernel', line: string): void;
}

export class PluginTask {
  state: PluginTaskState = 'running';
  readonly startedAt = Date.now();
  stoppedAt: number | null = null;

  constructor(
    readonly gfid: number,
    readonly params: Readonly<BootloadParams>,
    /** RM client the bootload came in on (the per-vGPU client). */
    readonly hClient: number,
    private readonly env: PluginTaskEnv,
  ) {}

  start(): void {
    this.state = 'running';
    this.env.log('init-task', `plugin task for gfid ${this.gfid} bootloaded: ${this.params.numChannels} channels, ` +
      `guest FB 0x${(this.params.guestFbPhysAddrList[0] ?? 0n).toString(16)}+0x${(this.params.guestFbLengthList[0] ?? 0n).toString(16)}`);
    this.env.log('vgpu-task', `vgpu task gfid ${this.gfid} waiting for the host (mailbox not simulated yet)`);
  }

  stop(): void {
    if (this.state === 'shutdown') return;
    this.state = 'shutdown';
    this.stoppedAt = Date.now();
    this.env.log('init-task', `plugin task for gfid ${this.gfid} shut down`);
  }
}
