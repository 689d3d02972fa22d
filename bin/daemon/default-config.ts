/**
 * What `vgpud` runs without --config: one simulated RTX 6000 Ada in worker mode (no /dev/shm file, no second
 * process), human-readable logs, per-user socket and state dir when not root.
 */
import type { VgpudConfigInput } from '../../core/config/config-schema.js';

export const DEFAULT_SIM_BDF = '0000:41:00.0';

export function builtinConfig(): VgpudConfigInput {
  return {
    logging: { level: 'info', format: 'human' },
    // The Ada HAL plugin reads its devices from its own section (plugins.hal-ada-lovelace).
    plugins: { 'hal-ada-lovelace': { devices: [{ board: 'rtx6000-ada', bdf: DEFAULT_SIM_BDF, mode: 'worker' }] } },
  };
}
