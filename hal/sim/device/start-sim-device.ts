/**
 * Start one simulated GSP GPU of a generation's board table, in this process (worker mode: SAB region, GSP-RM on a worker thread) or as a
 * vgpu-sim child process (process mode: sparse file region under `dir`), and get back a handle with the region
 * (to peek at FB the way a guest would), test controls and stop().
 *
 *   const dev = await startSimDevice({ board: 'l40s', bdf: '0000:41:00.0', mode: 'worker' }, ADA_BOARD_TABLE);
 *   const gpu = await new AdaHal().open(dev.pciInfo(), { logger });
 *
 * (Each generation wraps this with its own table: hal/ada-lovelace/sim/start-sim-device.ts,
 * hal/hopper/sim/start-hopper-device.ts.)
 *   await dev.controls.raiseEvent({ kind: 'rc', gfid: 3 });
 *   await dev.stop();
 *
 * Worker-mode FB: the JS fallback caps a SharedArrayBuffer arena at 16 GiB (V8 cannot allocate one near the
 * machine's RAM), so a worker-mode device simulates min(board FB, 16 GiB − 32 MiB) unless `fbBytes` says
 * otherwise; `descriptor.boardFbBytes` keeps the board's nominal size. Process mode simulates the full board FB
 * in a sparse file.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { nodeArgsFor } from '../../../core/runtime/module-entry.js';
import type { PciDeviceInfo } from '../../../core/contracts/hal.js';
import { ErrorCode, VgpuError } from '../../../core/contracts/exceptions.js';
import type { SharedArena } from '../../../native/native-ops.js';
import { loadNativeOps } from '../../../native/index.js';
import { FALLBACK_MAX_ARENA } from '../../../native/fallback.js';
import type { BoardTable } from '../board/board-table.js';
import type { SimBoard } from '../board/sim-board.js';
import { Region, regionBytes } from './device-layout.js';
import { parseBdf } from './pci-config.js';
import { SimDevice, type SimTestControls } from './sim-device.js';
import { DEFAULT_SIM_DIR, type SimDescriptor } from './sim-descriptor.js';
import { ipcControls } from './sim-ipc.js';
import { pciInfoFromRegion } from './sim-pci-bus.js';

export interface StartSimDeviceOptions {
  /** Board key from the chip table ('rtx6000-ada', 'l40s', …). */
  board: string;
  bdf: string;
  mode: 'worker' | 'process';
  /** Process mode: directory of the device file and descriptor (default /dev/shm/vgpud-sim). */
  dir?: string;
  /** GSP-RM build the device's firmware reports (default the board's firmware floor). */
  firmwareVersion?: string;
  /** Simulated FB bytes (page aligned, ≤ board FB). */
  fbBytes?: bigint;
  /** VFs enabled at power-on (default TotalVFs). */
  numVfs?: number;
  eccEnabled?: boolean;
  /** Worker mode only: GSP heartbeat period in ms (default 100). */
  gspHeartbeatMs?: number;
  verbose?: boolean;
  /** Process mode: how long to wait for the child to come up (default 20 s). */
  startTimeoutMs?: number;
}

export interface SimDeviceDescriptor {
  board: string;
  bdf: string;
  mode: 'worker' | 'process';
  /** Region file (process mode) or null. */
  path: string | null;
  /** PID of the process hosting the device. */
  pid: number;
  fbBytes: bigint;
  boardFbBytes: bigint;
  firmwareVersion: string;
}

export interface SimDeviceHandle {
  readonly descriptor: SimDeviceDescriptor;
  /** The whole device region (header, config spaces, BAR0, GSP queues, FB). */
  readonly arena: SharedArena;
  /** Offset of FB byte 0 in `arena`. */
  readonly fbOffset: bigint;
  readonly controls: SimTestControls;
  /** The device as a PCI bus would list it: pass it to its HAL's open(). */
  pciInfo(): PciDeviceInfo;
  /** A view of FB bytes [offset, offset+length), as a guest with the FB mapped would see them. */
  fbWindow(offset: bigint, length: number): Buffer;
  /** The vgpu-sim child (process mode), for signals. */
  readonly child: ChildProcess | null;
  /** Stop the device (process mode: SIGTERM and wait). Idempotent. */
  stop(): Promise<void>;
}

export const WORKER_MAX_FB_BYTES = FALLBACK_MAX_ARENA - BigInt(Region.FB);

function resolveBoard(key: string, table: BoardTable): SimBoard {
  const b = table.byKey(key);
  if (b === undefined) {
    throw new VgpuError(ErrorCode.UnsupportedDevice, `no simulated ${table.generation} board "${key}"`, {
      hint: `use one of ${table.boards.map((x) => x.key).join(', ')}`,
    });
  }
  return b;
}

function checkFb(fb: bigint, board: SimBoard, max: bigint): void {
  if (fb <= 0n || fb % 4096n !== 0n || fb > board.fbBytes || fb > max) {
    throw new VgpuError(ErrorCode.InvalidArgument, `fbBytes ${fb} must be page aligned and at most ${board.fbBytes < max ? board.fbBytes : max}`, {
      hint: 'pass a multiple of 4096 no larger than the board FB (and 16 GiB − 32 MiB in worker mode)',
    });
  }
}

export async function startSimDevice(opts: StartSimDeviceOptions, table: BoardTable): Promise<SimDeviceHandle> {
  const board = resolveBoard(opts.board, table);
  try {
    parseBdf(opts.bdf);
  } catch (e) {
    throw new VgpuError(ErrorCode.InvalidArgument, (e as Error).message, { hint: 'pass a BDF like 0000:41:00.0' });
  }
  const firmwareVersion = opts.firmwareVersion ?? board.firmwareFloor;
  return opts.mode === 'worker' ? startWorker(opts, board, firmwareVersion) : startProcess(opts, board, firmwareVersion, table.simEntry);
}

async function startWorker(opts: StartSimDeviceOptions, board: SimBoard, firmwareVersion: string): Promise<SimDeviceHandle> {
  const fbBytes = opts.fbBytes ?? (board.fbBytes < WORKER_MAX_FB_BYTES ? board.fbBytes : WORKER_MAX_FB_BYTES);
  checkFb(fbBytes, board, WORKER_MAX_FB_BYTES);
  const arena = loadNativeOps().createArena({ size: regionBytes(fbBytes), backing: 'sab' });
  const device = new SimDevice({
    arena, board, bdf: opts.bdf, fbBytes, firmwareVersion, numVfs: opts.numVfs ?? board.totalVfs,
    ...(opts.eccEnabled !== undefined ? { eccEnabled: opts.eccEnabled } : {}),
    ...(opts.gspHeartbeatMs !== undefined ? { gspHeartbeatMs: opts.gspHeartbeatMs } : {}),
    ...(opts.verbose !== undefined ? { verbose: opts.verbose } : {}),
  });
  await device.start();
  const sab = arena.sab as SharedArrayBuffer;
  let stopped: Promise<void> | null = null;
  return {
    descriptor: { board: board.key, bdf: opts.bdf, mode: 'worker', path: null, pid: process.pid, fbBytes, boardFbBytes: board.fbBytes, firmwareVersion },
    arena,
    fbOffset: BigInt(Region.FB),
    controls: device,
    child: null,
    pciInfo: () => pciInfoFromRegion(arena, { kind: 'gsp-sim', mode: 'worker', sab }),
    fbWindow: (offset, length) => arena.window(BigInt(Region.FB) + offset, length),
    stop: () => (stopped ??= device.stop()),
  };
}

async function startProcess(opts: StartSimDeviceOptions, board: SimBoard, firmwareVersion: string, script: string): Promise<SimDeviceHandle> {
  const ops = loadNativeOps();
  if (ops.kind !== 'native') {
    throw new VgpuError(ErrorCode.UnsupportedDevice, 'process-mode simulation needs the native addon (file regions shared between processes)', {
      hint: 'run `npm run build:native`, or use mode: "worker"',
    });
  }
  const fbBytes = opts.fbBytes ?? board.fbBytes;
  checkFb(fbBytes, board, board.fbBytes);
  const dir = opts.dir ?? DEFAULT_SIM_DIR;
  const args = ['--board', board.key, '--bdf', opts.bdf, '--dir', dir, '--firmware-version', firmwareVersion, '--fb-bytes', fbBytes.toString()];
  if (opts.numVfs !== undefined) args.push('--num-vfs', String(opts.numVfs));
  if (opts.verbose) args.push('--verbose');
  const child = fork(script, args, {
    execArgv: nodeArgsFor(script).slice(0, -1), // tsx's loader for a .ts script, nothing for compiled .js
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  const descriptor = await new Promise<SimDescriptor>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new VgpuError(ErrorCode.FirmwareBoot, `vgpu-sim for ${opts.bdf} did not come up in time`, { hint: 'run it by hand with --verbose to see why' }));
    }, opts.startTimeoutMs ?? 20_000);
    const onMsg = (m: { op?: string; descriptor?: SimDescriptor }): void => {
      if (m.op !== 'ready' || m.descriptor === undefined) return;
      clearTimeout(timer);
      child.off('message', onMsg);
      resolve(m.descriptor);
    };
    child.on('message', onMsg);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new VgpuError(ErrorCode.FirmwareBoot, `vgpu-sim for ${opts.bdf} exited with code ${code} before it was ready`, {
        hint: 'its stderr above says why (board, file, addon)',
      }));
    });
  });
  const arena = ops.openArena(descriptor.path);
  const exited = new Promise<void>((r) => {
    if (child.exitCode !== null || child.signalCode !== null) r();
    else child.once('exit', () => r());
  });
  let stopped: Promise<void> | null = null;
  return {
    descriptor: {
      board: board.key, bdf: opts.bdf, mode: 'process', path: descriptor.path, pid: descriptor.pid, fbBytes, boardFbBytes: board.fbBytes, firmwareVersion,
    },
    arena,
    fbOffset: BigInt(Region.FB),
    controls: ipcControls(child),
    child,
    pciInfo: () => pciInfoFromRegion(arena, { kind: 'gsp-sim', mode: 'process', path: descriptor.path }),
    fbWindow: (offset, length) => arena.window(BigInt(Region.FB) + offset, length),
    stop: () => (stopped ??= (async () => {
      child.kill('SIGTERM');
      await exited;
      if (child.connected) child.disconnect();
      arena.close();
    })()),
  };
}
