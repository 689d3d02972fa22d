/**
 * The plugins `vgpud` wires, in preferred order (dependencies decide the rest). ONE place to add a plugin.
 *
 * Waiting to be added here when it lands (one line):
 *   - the lifecycle plugin (plugins/lifecycle): binds TOKENS.VgpuManager, provides 'vgpu-service' (the api needs
 *     it), and the scrub plugin it uses (plugins/scrub).
 */
import type { VgpudPlugin } from '../core/contracts/plugin.js';
import { createAdaHalPlugin } from '../hal/ada-lovelace/ada-hal-plugin.js';
import { createApiPlugin } from '../plugins/api/api-plugin.js';
import { createMetricsPlugin } from '../plugins/metrics/metrics-plugin.js';

export function builtinPlugins(): VgpudPlugin[] {
  return [
    createAdaHalPlugin(),
    createApiPlugin(),
    createMetricsPlugin(),
  ];
}
