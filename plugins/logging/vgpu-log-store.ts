/**
 * The firmware log lines of each vGPU, in memory, as the 'logging' plugin drained them (bound to
 * TOKENS.VgpuLogStore). Like upstream's debugfs shadow copy (docs/reference/host-rpc-mailbox.md), a vGPU's lines
 * outlive its destroy and are dropped only when a new vGPU takes the same VF.
 */
import type { VgpuLogLine, VgpuLogStore } from '../../core/contracts/vgpu-log-store.js';

export type { VgpuLogLine, VgpuLogStore };

interface Record {
  gpu: string;
  vf: number;
  vgpuId: string;
  lines: VgpuLogLine[];
}

export class VgpuLogStoreImpl implements VgpuLogStore {
  private readonly byId = new Map<string, Record>();

  constructor(private readonly keepLines: number) {}

  /** A vGPU appeared on a VF: whatever an earlier vGPU left there is dropped. */
  open(gpu: string, vf: number, vgpuId: string): void {
    if (this.byId.has(vgpuId)) return;
    for (const [id, r] of this.byId) if (r.gpu === gpu && r.vf === vf) this.byId.delete(id);
    this.byId.set(vgpuId, { gpu, vf, vgpuId, lines: [] });
  }

  add(vgpuId: string, area: string, lines: readonly string[], at: number): void {
    const r = this.byId.get(vgpuId);
    if (r === undefined) return;
    for (const line of lines) r.lines.push({ area, line, at });
    if (r.lines.length > this.keepLines) r.lines.splice(0, r.lines.length - this.keepLines);
  }

  lines(vgpuId: string, n?: number): string[] {
    const r = this.byId.get(vgpuId);
    if (r === undefined) return [];
    const all = r.lines.map((l) => `[${l.area}] ${l.line}`);
    return n === undefined || n >= all.length ? all : all.slice(all.length - Math.max(0, n));
  }

  linesForVf(gpu: string, vf: number, n?: number): string[] {
    const g = gpu.toLowerCase();
    for (const r of this.byId.values()) if (r.gpu.toLowerCase() === g && r.vf === vf) return this.lines(r.vgpuId, n);
    return [];
  }

  vgpus(): string[] {
    return [...this.byId.keys()];
  }
}
