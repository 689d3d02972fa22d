/**
 * A generation's board table as the generation-neutral simulator and GSP HAL use it: look a board up by config key
 * or PCI device id, name the boards in an error hint, and know which `vgpu-sim` entry simulates them in process
 * mode. Each generation builds one (`createBoardTable`) from its own chips.ts; nothing here names a generation.
 */
import type { SimBoard } from './sim-board.js';

export interface BoardTable<B extends SimBoard = SimBoard> {
  /** "Ada Lovelace", "Hopper": the HardwareConfig.generation of its GPUs. */
  readonly generation: string;
  readonly boards: readonly B[];
  /**
   * Absolute path of this generation's `vgpu-sim`
   * entry (core/runtime/module-entry.ts siblingModule: .ts from the sources, .js compiled): a process-mode device of
   * one of these boards is that module run as a process.
   */
  readonly simEntry: string;
  byKey(key: string): B | undefined;
  byDeviceId(deviceId: number): B | undefined;
  /** "h100-pcie (0x2331 NVIDIA H100 PCIe), …" for error hints. */
  describe(): string;
}

export function createBoardTable<B extends SimBoard>(generation: string, boards: readonly B[], simEntry: string): BoardTable<B> {
  const keys = new Set<string>();
  const ids = new Set<number>();
  for (const b of boards) {
    // A table with a duplicate would make a config key or a PCI id ambiguous: a programming error of the table.
    if (keys.has(b.key) || ids.has(b.deviceId)) throw new Error(`${generation} board table: duplicate board ${b.key} / 0x${b.deviceId.toString(16)}`);
    keys.add(b.key);
    ids.add(b.deviceId);
  }
  return Object.freeze({
    generation,
    boards,
    simEntry,
    byKey: (key: string) => boards.find((b) => b.key === key),
    byDeviceId: (deviceId: number) => boards.find((b) => b.deviceId === deviceId),
    describe: () => boards.map((b) => `${b.key} (0x${b.deviceId.toString(16)} ${b.name})`).join(', '),
  });
}
