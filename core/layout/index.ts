/**
 * Layouts in NVIDIA's vgpu-device-manager format, chip-neutral and over the VgpuService contract only, so every
 * face applies the same files the same way: the control API (plugins/api) and the Kubernetes node agent.
 *
 * parseLayoutText / validateLayout → selectLayoutConfig → snapshot → expandLayout → planLayout → assertFeasible →
 * applyLayout. The text path is bounded before the YAML library runs (layout-limits.ts).
 */
export { LAYOUT_LIMITS, scanLayoutText } from './layout-limits.js';
export { layoutFileSchema, parseLayoutText, validateLayout, type LayoutEntry, type LayoutFile } from './layout-file.js';
export { selectLayoutConfig, type SelectedConfig } from './select-config.js';
export { filterMatches, parsePciIdFilter, pciIdText, NVIDIA_VENDOR_ID, type PciIdFilter } from './device-filter.js';
export { snapshot, type LayoutSnapshot } from './layout-snapshot.js';
export { expandLayout, indexedGpus, resolveTypeName, type DesiredLayout, type ExpandedLayout } from './expand-layout.js';
export { planLayout, type GpuPlan, type LayoutPlan, type PlannedCreate, type PlannedDestroy } from './plan-layout.js';
export { assertFeasible } from './check-feasible.js';
export { applyLayout, assertNotBlocked, rollbackSteps, type AppliedStep, type ApplyOptions, type ApplyResult } from './apply-layout.js';
export { planLayoutRequest, type PlannedLayout } from './plan-layout-request.js';
