/**
 * Start a simulated Ada GPU (worker or vgpu-sim process): the generation-neutral starter
 * (hal/sim/device/start-sim-device.ts) with the Ada board table.
 *
 *   const dev = await startSimDevice({ board: 'l40s', bdf: '0000:41:00.0', mode: 'worker' });
 *   const gpu = await new AdaHal().open(dev.pciInfo(), { logger });
 */
import { ADA_BOARD_TABLE } from '../chips.js';
import {
  startSimDevice as startDevice, type SimDeviceHandle, type StartSimDeviceOptions,
} from '../../sim/device/start-sim-device.js';

export { WORKER_MAX_FB_BYTES, type SimDeviceDescriptor, type SimDeviceHandle, type StartSimDeviceOptions } from '../../sim/device/start-sim-device.js';

export function startSimDevice(opts: StartSimDeviceOptions): Promise<SimDeviceHandle> {
  return startDevice(opts, ADA_BOARD_TABLE);
}
