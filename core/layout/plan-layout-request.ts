/** The whole read-only half of a layout request in one call: config → snapshot → expansion → plan. */
import type { VgpuService } from '../contracts/vgpu-service.js';
import { expandLayout, type DesiredLayout } from './expand-layout.js';
import type { LayoutFile } from './layout-file.js';
import { snapshot, type LayoutSnapshot } from './layout-snapshot.js';
import { planLayout, type LayoutPlan } from './plan-layout.js';
import { selectLayoutConfig } from './select-config.js';

export interface PlannedLayout {
  config: string;
  snap: LayoutSnapshot;
  desired: DesiredLayout;
  plan: LayoutPlan;
}

export function planLayoutRequest(service: VgpuService, file: LayoutFile, config?: string): PlannedLayout {
  const chosen = selectLayoutConfig(file, config);
  const snap = snapshot(service);
  const { desired, notes } = expandLayout(chosen.name, chosen.entries, snap);
  return { config: chosen.name, snap, desired, plan: planLayout(snap, desired, notes) };
}
