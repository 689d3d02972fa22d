#!/usr/bin/env node
/**
 * The Ada boards' `vgpu-sim` entry: the generation-neutral process runner (hal/sim/device/run-vgpu-sim.ts) with
 * the Ada board table. A process-mode Ada device started by startSimDevice runs this module; bin/vgpu-sim.ts is the
 * operator's entry that knows every built-in generation.
 */
import { ADA_BOARD_TABLE } from '../chips.js';
import { runVgpuSim } from '../../sim/device/run-vgpu-sim.js';

runVgpuSim([ADA_BOARD_TABLE]);
