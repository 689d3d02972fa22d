/**
 * The Ada Lovelace HAL: the generation-neutral GSP HAL (hal/gsp-gpu/gsp-hal.ts) over the Ada board table
 * (chips.ts). Everything Ada-specific is in that table: PCI ids, FB, engines, NV_PMC_BOOT_0 identity, firmware floor.
 */
import { injectable } from 'inversify';
import { GspHal } from '../gsp-gpu/gsp-hal.js';
import { ADA_BOARD_TABLE } from './chips.js';

export const ADA_HAL_ID = 'ada-lovelace';

@injectable()
export class AdaHal extends GspHal {
  constructor() {
    super(ADA_HAL_ID, ADA_BOARD_TABLE);
  }
}

export { ENGINE_BITMAP_BYTES } from '../sim/board/sim-board.js';
