/**
 * VgpuLogStore contract: the firmware log lines of each vGPU as the logging plugin drained them (bound to
 * TOKENS.VgpuLogStore when that plugin is enabled). Like upstream's debugfs shadow copy
 * (docs/reference/host-rpc-mailbox.md), a vGPU's lines outlive its destroy and are dropped only when a new vGPU takes
 * the same VF. The vGPU service reads it for `logs()`; without the logging plugin it reads the live firmware log
 * areas instead.
 */
export interface VgpuLogLine {
  /** 'init-task' | 'vgpu-task' | 'kernel'. */
  area: string;
  line: string;
  /** Wall-clock ms when the plugin drained it. */
  at: number;
}

export interface VgpuLogStore {
  /** Last `n` lines of a vGPU as "[area] text" (all when n is omitted); [] for an unknown vGPU. */
  lines(vgpuId: string, n?: number): string[];
  /** The same for whatever vGPU last used VF `vf` of GPU `gpu` (its logs survive until the VF is reused). */
  linesForVf(gpu: string, vf: number, n?: number): string[];
  /** vGPU ids with lines kept. */
  vgpus(): string[];
}
