/**
 * The Hopper HAL: the generation-neutral GSP HAL (hal/gsp-gpu/gsp-hal.ts) over the Hopper board table (chips.ts).
 * Nothing here comes from hal/ada-lovelace (test/unit/core/layering.test.ts keeps it so): what differs from Ada —
 * PCI ids, HBM sizes, the compute-only engine set, NV_PMC_BOOT_0 architecture 0x18 — is data in the table.
 */
import { injectable } from 'inversify';
import { GspHal } from '../gsp-gpu/gsp-hal.js';
import { HOPPER_BOARD_TABLE } from './chips.js';

export const HOPPER_HAL_ID = 'hopper';

@injectable()
export class HopperHal extends GspHal {
  constructor() {
    super(HOPPER_HAL_ID, HOPPER_BOARD_TABLE);
  }
}
