/**
 * The Hopper HAL as a conformance-kit fixture (conformance/hal-fixture.ts): one simulated Hopper board at
 * 0000:81:00.0 through the generation-neutral simulated-GPU fixture (hal/gsp-gpu/sim-gpu-conformance.ts).
 *
 * Environment: VGPUD_CONFORMANCE_HOPPER_MODE=worker|process, VGPUD_CONFORMANCE_HOPPER_BOARD=<board key> (default
 * h100-pcie). `npm run conformance -- --hal hal/hopper/hopper-conformance.ts`
 */
import type { HalConformanceModule, HalFixture, HalFixtureOptions } from '../../conformance/hal-fixture.js';
import { createSimGpuFixture } from '../gsp-gpu/sim-gpu-conformance.js';
import type { SimDeviceHandle } from '../sim/device/start-sim-device.js';
import { HOPPER_BOARD_TABLE } from './chips.js';
import { HopperHal } from './hopper-hal.js';

export const HOPPER_CONFORMANCE_BDF = '0000:81:00.0';

export interface HopperFixtureOptions {
  mode?: 'worker' | 'process';
  board?: string;
  fbBytes?: bigint;
}

export function createHopperFixture(opts: HalFixtureOptions, h: HopperFixtureOptions = {}): Promise<HalFixture & { device: SimDeviceHandle }> {
  return createSimGpuFixture(opts, {
    hal: new HopperHal(),
    table: HOPPER_BOARD_TABLE,
    board: h.board ?? process.env['VGPUD_CONFORMANCE_HOPPER_BOARD'] ?? 'h100-pcie',
    bdf: HOPPER_CONFORMANCE_BDF,
    mode: h.mode ?? (process.env['VGPUD_CONFORMANCE_HOPPER_MODE'] === 'process' ? 'process' : 'worker'),
    ...(h.fbBytes !== undefined ? { fbBytes: h.fbBytes } : {}),
  });
}

const hopperConformance: HalConformanceModule = {
  name: 'hopper (simulated)',
  createFixture: (opts) => createHopperFixture(opts),
};

export default hopperConformance;
