/**
 * What `vgpud` runs without --config: one simulated RTX 6000 Ada in PROCESS mode (a `vgpu-sim` process with the
 * board's full 48 GiB FB in a sparse file under DEFAULT_SIM_DIR), human-readable logs, per-user socket and state
 * dir when not root. Process mode because the simulated card must outlive the daemon, like a real one: a daemon
 * restart re-attaches the running vGPUs. `npm start` (vgpud --spawn-sim) starts that simulator when it is not
 * running; worker mode (in-process, dies with the daemon) stays available through a config file.
 */
import type { VgpudConfigInput } from '../../core/config/config-schema.js';
import { DEFAULT_SIM_DIR } from '../../hal/sim/device/sim-descriptor.js';

export const DEFAULT_SIM_BDF = '0000:41:00.0';
export const DEFAULT_SIM_BOARD = 'rtx6000-ada';

export function builtinConfig(): VgpudConfigInput {
  return {
    logging: { level: 'info', format: 'human' },
    // The Ada HAL plugin reads its devices from its own section (plugins.hal-ada-lovelace).
    plugins: { 'hal-ada-lovelace': { devices: [{ board: DEFAULT_SIM_BOARD, bdf: DEFAULT_SIM_BDF, mode: 'process', dir: DEFAULT_SIM_DIR }] } },
  };
}
