/**
 * What the layout code reads from the VgpuService, taken once per request, so expansion, plan and feasibility all
 * judge the same state (and `--dry-run`, `assert` and `apply` show the same plan).
 */
import type { GpuSummary, VgpuInfo, VgpuService, VgpuTypeInfo } from '../contracts/vgpu-service.js';

export interface LayoutSnapshot {
  gpus: GpuSummary[];
  vgpus: VgpuInfo[];
  /** Every type each GPU supports (`types(gpu, {all: true})`), with what is available right now. */
  types: Map<string, VgpuTypeInfo[]>;
}

export function snapshot(service: VgpuService): LayoutSnapshot {
  const gpus = service.gpus();
  const types = new Map(gpus.map((g) => [g.bdf, service.types(g.bdf, { all: true })]));
  return { gpus, vgpus: service.list(), types };
}
