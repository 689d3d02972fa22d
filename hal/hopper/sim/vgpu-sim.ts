#!/usr/bin/env node
/**
 * The Hopper boards' `vgpu-sim` entry: the generation-neutral process runner (hal/sim/device/run-vgpu-sim.ts) with
 * the Hopper board table. A process-mode Hopper device (startHopperDevice, `vgpud --spawn-sim`) runs this module.
 */
import { HOPPER_BOARD_TABLE } from '../chips.js';
import { runVgpuSim } from '../../sim/device/run-vgpu-sim.js';

runVgpuSim([HOPPER_BOARD_TABLE]);
