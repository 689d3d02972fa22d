/**
 * Plugin 'hal-ada-lovelace': the Ada HAL and its simulated GPUs (hal/gsp-gpu/sim-gpu-hal-plugin.ts has the config
 * and the life cycle, the same for every GSP generation).
 *
 *   plugins:
 *     hal-ada-lovelace:
 *       devices:
 *         - { board: l40s, bdf: "0000:41:00.0", mode: worker }
 *         - { board: rtx6000-ada, bdf: "0000:42:00.0", mode: process, dir: /dev/shm/vgpud-sim }
 */
import { createSimGpuHalPlugin, simGpuHalPluginConfig, type SimGpuHalPlugin } from '../gsp-gpu/sim-gpu-hal-plugin.js';
import { AdaHal } from './ada-hal.js';
import { ADA_BOARD_TABLE } from './chips.js';

export const ADA_HAL_PLUGIN_NAME = 'hal-ada-lovelace';

export const AdaHalPluginConfig = simGpuHalPluginConfig(ADA_BOARD_TABLE.boards.map((b) => b.key));

export function createAdaHalPlugin(): SimGpuHalPlugin<AdaHal> {
  return createSimGpuHalPlugin({
    name: ADA_HAL_PLUGIN_NAME,
    description: 'Ada Lovelace HAL with the simulated Ada GPU (worker or vgpu-sim process)',
    table: ADA_BOARD_TABLE,
    hal: new AdaHal(),
  });
}

export default createAdaHalPlugin;
