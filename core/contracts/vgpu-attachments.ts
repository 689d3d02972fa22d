/**
 * VgpuAttachments contract: what the vfio-user face knows about each served vGPU — the socket, the attached VMM and
 * the traffic counters — for the metrics (per-vGPU attached, trapped MMIO, interrupts, DMA bytes). Bound to
 * TOKENS.VgpuAttachments by the vfio-user plugin; counters are totals since the vGPU was first served.
 */
export interface VgpuAttachment {
  vgpuId: string;
  gpu: string;
  vf: number;
  socket: string;
  attached: boolean;
  clientPid: number | null;
  /** Trapped BAR0 accesses (REGION_READ / REGION_WRITE). */
  mmioReads: number;
  mmioWrites: number;
  /** Interrupts delivered to the VMM (eventfd signals). */
  interrupts: number;
  /** Bytes the device moved to or from the VMM's memory. */
  dmaBytes: number;
}

export interface VgpuAttachments {
  snapshot(): Promise<VgpuAttachment[]>;
}
