/**
 * vgpu-sim: one simulated GSP GPU as its own process, for any generation whose board table the entry passes in
 * (hal/ada-lovelace/sim/vgpu-sim.ts, hal/hopper/sim/vgpu-sim.ts, and bin/vgpu-sim.ts with every built-in one).
 *
 *   node bin/vgpu-sim.mjs --board rtx6000-ada --bdf 0000:41:00.0 --dir /dev/shm/vgpud-sim   (compiled or from source)
 *
 * Creates the sparse device file `<dir>/<bdf>.vgpusim` (or re-attaches to it, keeping its FB), runs the device
 * and its GSP-RM thread, writes `<dir>/<bdf>.json` for discovery, and exits cleanly on SIGTERM/SIGINT (descriptor
 * removed, file kept). It is a separate process so it outlives a daemon that dies or restarts — like a GPU.
 *
 * When started with an IPC channel (child_process.fork / spawn with 'ipc'), it also obeys test controls
 * ({id, op, args} messages; see sim-ipc.ts) and announces {op:'ready', descriptor}. Losing the channel does not
 * stop the device.
 */
import { Command } from 'commander';
import { loadNativeOps } from '../../../native/index.js';
import { isVgpuError } from '../../../core/contracts/exceptions.js';
import type { BoardTable } from '../board/board-table.js';
import { DeviceState, LAYOUT_MAGIC, LAYOUT_VERSION, regionBytes } from './device-layout.js';
import { readHeader } from './device-region.js';
import { SimDevice } from './sim-device.js';
import { DEFAULT_SIM_DIR, removeDescriptor, simPaths, writeDescriptor, type SimDescriptor } from './sim-descriptor.js';
import { readIrqAddress } from './irq-protocol.js';
import { IrqLink } from '../../gsp-gpu/irq-link.js';
import { handleIpcRequest, type SimIpcRequest } from './sim-ipc.js';

function fail(message: string, hint: string): never {
  console.error(`vgpu-sim: ${message}\n  hint: ${hint}`);
  process.exit(2);
}

async function main(tables: readonly BoardTable[]): Promise<void> {
  const boards = tables.flatMap((t) => t.boards);
  const generations = tables.map((t) => t.generation).join(', ');
  const program = new Command()
    .name('vgpu-sim')
    .description(`Run one simulated NVIDIA GPU (SR-IOV PF with GSP-RM) for vgpud: ${generations}`)
    .requiredOption('--board <key>', `board: ${boards.map((b) => b.key).join(', ')}`)
    .requiredOption('--bdf <bdf>', 'PCI address of the PF, e.g. 0000:41:00.0')
    .option('--dir <dir>', 'directory for the device file and descriptor', DEFAULT_SIM_DIR)
    .option('--firmware-version <v>', "GSP-RM build the device carries (default: the board's firmware floor)")
    .option('--fb-bytes <n>', 'simulated FB size in bytes (default: the board\'s)')
    .option('--num-vfs <n>', 'VFs enabled at power-on (default: TotalVFs)')
    .option('--verbose', 'print GSP warnings to stderr', false)
    .parse(process.argv);
  const o = program.opts<{ board: string; bdf: string; dir: string; firmwareVersion?: string; fbBytes?: string; numVfs?: string; verbose: boolean }>();
  const board = boards.find((b) => b.key === o.board) ?? fail(`unknown board "${o.board}"`, `use one of ${boards.map((b) => b.key).join(', ')}`);
  const firmwareVersion = o.firmwareVersion ?? board.firmwareFloor;
  const fbBytes = o.fbBytes !== undefined ? BigInt(o.fbBytes) : board.fbBytes;
  if (fbBytes <= 0n || fbBytes % 4096n !== 0n || fbBytes > board.fbBytes) {
    fail(`--fb-bytes ${fbBytes} is not a page-aligned size up to the board's ${board.fbBytes}`, 'pass a multiple of 4096 no larger than the board FB');
  }
  const numVfs = o.numVfs !== undefined ? Number(o.numVfs) : board.totalVfs;
  const ops = loadNativeOps();
  if (ops.kind !== 'native') {
    fail('process mode needs the native addon (file-backed regions shared between processes)', 'run `npm run build:native`, or use startSimDevice({mode: "worker"})');
  }
  const { region } = simPaths(o.dir, o.bdf);
  const { mkdirSync } = await import('node:fs');
  mkdirSync(o.dir, { recursive: true });
  const arena = ops.createArena({ size: regionBytes(fbBytes), path: region });
  // Two simulators on one file would both think they own the GPU. A device whose process died (kill -9) leaves its
  // header saying Running, but its interrupt link died with it (an abstract socket): only a device that still
  // answers on its link is alive. That one is refused; a dead one is taken over, its FB kept.
  const prev = readHeader(arena);
  const prevLink = prev.magic === LAYOUT_MAGIC && prev.deviceState === DeviceState.Running ? readIrqAddress(arena) : null;
  if (prevLink !== null) {
    const alive = await IrqLink.connect(prevLink, 2000).then((l) => { l.close(); return true; }, () => false);
    if (alive) {
      arena.close();
      fail(`${region} is served by another vgpu-sim (pid ${prev.simPid})`, `stop it first (kill -TERM ${prev.simPid}), or use another --dir`);
    }
  }
  const device = new SimDevice({ arena, board, bdf: o.bdf, fbBytes, firmwareVersion, numVfs, verbose: o.verbose });
  await device.start();
  const descriptor: SimDescriptor = {
    kind: 'gsp-sim', board: board.key, bdf: o.bdf, path: region, pid: process.pid, fbBytes: fbBytes.toString(),
    firmwareVersion, layoutVersion: LAYOUT_VERSION, startedAt: new Date().toISOString(),
  };
  writeDescriptor(o.dir, descriptor);

  let stopping = false;
  const shutdown = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    try {
      await device.stop();
    } finally {
      removeDescriptor(o.dir, o.bdf);
      arena.close();
      if (o.verbose) console.error(`vgpu-sim: ${o.bdf} stopped on ${signal}`);
      process.exit(0);
    }
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));

  if (process.send !== undefined) {
    process.on('message', (m: SimIpcRequest) => {
      void handleIpcRequest(device, m).then((reply) => process.send?.(reply));
    });
    // A parent that goes away must not take the GPU with it.
    process.on('disconnect', () => {
      if (o.verbose) console.error('vgpu-sim: parent disconnected; device keeps running');
    });
    process.send({ op: 'ready', descriptor, reattached: device.reattached });
  }
  console.log(JSON.stringify({ ready: true, ...descriptor, reattached: device.reattached }));
}

/** Run the process for the boards of `tables` (an entry module calls this at its top level). */
export function runVgpuSim(tables: readonly BoardTable[]): void {
  main(tables).catch((e: unknown) => {
    console.error(`vgpu-sim: ${(e as Error).message}${isVgpuError(e) ? `\n  hint: ${e.hint}` : ''}`);
    process.exit(1);
  });
}
