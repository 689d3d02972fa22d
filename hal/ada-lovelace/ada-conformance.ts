/**
 * The Ada HAL as a conformance-kit fixture (conformance/hal-fixture.ts): one simulated Ada board at 0000:41:00.0,
 * through the generation-neutral simulated-GPU fixture (hal/gsp-gpu/sim-gpu-conformance.ts: worker mode with 8 GiB
 * of FB by default, or a vgpu-sim process; every capability of the kit offered).
 *
 * Environment: VGPUD_CONFORMANCE_ADA_MODE=worker|process, VGPUD_CONFORMANCE_ADA_BOARD=<board key> (default
 * rtx6000-ada). `npm run conformance -- --hal hal/ada-lovelace/ada-conformance.ts`
 */
import type { HalConformanceModule, HalFixture, HalFixtureOptions } from '../../conformance/hal-fixture.js';
import { createSimGpuFixture } from '../gsp-gpu/sim-gpu-conformance.js';
import type { SimDeviceHandle } from '../sim/device/start-sim-device.js';
import { AdaHal } from './ada-hal.js';
import { ADA_BOARD_TABLE } from './chips.js';

export const ADA_CONFORMANCE_BDF = '0000:41:00.0';

export interface AdaFixtureOptions {
  mode?: 'worker' | 'process';
  board?: string;
  /** Simulated FB (default: 8 GiB in worker mode, the board's FB in process mode). */
  fbBytes?: bigint;
}

export function createAdaFixture(opts: HalFixtureOptions, ada: AdaFixtureOptions = {}): Promise<HalFixture & { device: SimDeviceHandle }> {
  return createSimGpuFixture(opts, {
    hal: new AdaHal(),
    table: ADA_BOARD_TABLE,
    board: ada.board ?? process.env['VGPUD_CONFORMANCE_ADA_BOARD'] ?? 'rtx6000-ada',
    bdf: ADA_CONFORMANCE_BDF,
    mode: ada.mode ?? (process.env['VGPUD_CONFORMANCE_ADA_MODE'] === 'process' ? 'process' : 'worker'),
    ...(ada.fbBytes !== undefined ? { fbBytes: ada.fbBytes } : {}),
  });
}

const adaConformance: HalConformanceModule = {
  name: 'ada-lovelace (simulated)',
  createFixture: (opts) => createAdaFixture(opts),
};

export default adaConformance;
