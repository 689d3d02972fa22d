/**
 * Plugin 'hal-hopper': the Hopper HAL and its simulated GPUs, configured like 'hal-ada-lovelace'
 * (hal/gsp-gpu/sim-gpu-hal-plugin.ts has the config and the life cycle):
 *
 *   plugins:
 *     hal-hopper:
 *       devices:
 *         - { board: h100-pcie, bdf: "0000:81:00.0", mode: worker }
 *         - { board: h200, bdf: "0000:82:00.0", mode: process, dir: /dev/shm/vgpud-sim }
 *
 * Board keys: h100-pcie, h100-nvl, h100-sxm, h200, h200-nvl, h20 (chips.ts).
 */
import { createSimGpuHalPlugin, simGpuHalPluginConfig, type SimGpuHalPlugin } from '../gsp-gpu/sim-gpu-hal-plugin.js';
import { HOPPER_BOARD_TABLE } from './chips.js';
import { HopperHal } from './hopper-hal.js';

export const HOPPER_HAL_PLUGIN_NAME = 'hal-hopper';

export const HopperHalPluginConfig = simGpuHalPluginConfig(HOPPER_BOARD_TABLE.boards.map((b) => b.key));

export function createHopperHalPlugin(): SimGpuHalPlugin<HopperHal> {
  return createSimGpuHalPlugin({
    name: HOPPER_HAL_PLUGIN_NAME,
    description: 'Hopper HAL with the simulated H100/H200/H20 (worker or vgpu-sim process)',
    table: HOPPER_BOARD_TABLE,
    hal: new HopperHal(),
  });
}

export default createHopperHalPlugin;
