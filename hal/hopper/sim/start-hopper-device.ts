/**
 * Start a simulated Hopper GPU (worker or vgpu-sim process): the generation-neutral starter
 * (hal/sim/device/start-sim-device.ts) with the Hopper board table.
 *
 *   const dev = await startHopperDevice({ board: 'h100-pcie', bdf: '0000:81:00.0', mode: 'worker' });
 *   const gpu = await new HopperHal().open(dev.pciInfo(), { logger });
 */
import { HOPPER_BOARD_TABLE } from '../chips.js';
import { startSimDevice, type SimDeviceHandle, type StartSimDeviceOptions } from '../../sim/device/start-sim-device.js';

export function startHopperDevice(opts: StartSimDeviceOptions): Promise<SimDeviceHandle> {
  return startSimDevice(opts, HOPPER_BOARD_TABLE);
}
