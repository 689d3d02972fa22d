/**
 * SR-IOV reconfiguration of the simulated PF (what `echo N > sriov_numvfs` does to the device): NumVFs and the
 * VF Enable bit in the PF's SR-IOV capability, the NV_PCFG mirror of it in BAR0, each VF's config space (present
 * or all-ones) and the header's VF count. The HAL's `vfs()` reads exactly these.
 */
import type { SharedArena } from '../../../native/native-ops.js';
import type { SimBoard } from '../board/sim-board.js';
import { Bar0, Header, MAX_VFS, Region, vfConfigOffset } from './device-layout.js';
import { buildPfConfig, buildVfConfig } from './pci-config.js';

export function setNumVfs(arena: SharedArena, board: SimBoard, numVfs: number): void {
  const pf = arena.window(BigInt(Region.PF_CONFIG), Region.CONFIG_SIZE);
  buildPfConfig(pf, board, numVfs);
  arena.window(BigInt(Region.BAR0 + Bar0.PCFG), 0x1000).set(pf.subarray(0, 0x1000));
  // The mirror's VF BAR type words are device registers, not config bytes: restore them after the copy.
  arena.store32(BigInt(Region.BAR0 + Bar0.PCFG_VF_BAR1_TYPE), 0xc);
  arena.store32(BigInt(Region.BAR0 + Bar0.PCFG_VF_BAR2_TYPE), 0xc);
  for (let i = 0; i < MAX_VFS; i++) {
    const vf = arena.window(BigInt(vfConfigOffset(i)), Region.CONFIG_SIZE);
    if (i < numVfs) {
      // A VF that stays enabled keeps its config space (its driver may have written the command register).
      if (vf.readUInt16LE(0) !== board.vendorId) buildVfConfig(vf, board);
    } else {
      vf.fill(0xff);
    }
  }
  arena.store32(BigInt(Header.NUM_VFS), numVfs);
}
