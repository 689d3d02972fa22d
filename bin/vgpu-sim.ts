/**
 * `vgpu-sim` for operators (bin/vgpu-sim.mjs, docs/vgpu-sim.service): one simulated GPU of any built-in generation,
 * chosen by its board key (rtx6000-ada … l4, h100-pcie … h20). A HAL plugin starting its own devices runs its
 * generation's entry instead (BoardTable.simEntry); both are the same runner, hal/sim/device/run-vgpu-sim.ts.
 */
import { ADA_BOARD_TABLE } from '../hal/ada-lovelace/chips.js';
import { HOPPER_BOARD_TABLE } from '../hal/hopper/chips.js';
import { runVgpuSim } from '../hal/sim/device/run-vgpu-sim.js';

runVgpuSim([ADA_BOARD_TABLE, HOPPER_BOARD_TABLE]);
