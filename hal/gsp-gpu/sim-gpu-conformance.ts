/**
 * A simulated GSP GPU of any generation as a conformance-kit fixture (conformance/hal-fixture.ts): one device of the
 * given board table at `bdf` — worker mode by default (device region in a SharedArrayBuffer, GSP-RM on a worker
 * thread, 8 GiB of the board's FB so the kit can reach above 4 GiB), or a vgpu-sim process with the board's full FB
 * in a private /dev/shm folder. The simulated device gives the kit every capability:
 *
 *   deviceView      the FB part of the device region, read directly (what the simulated copy engine and the
 *                   firmware's plugin tasks see), not through the HAL's FramebufferMemory
 *   hostEvents      the device posts the event into its host-event ring (sriov-configure changes NumVFs first)
 *   firmwareEvents  the simulated GSP-RM raises RC_TRIGGERED for the gfid
 *   faults          the simulated GSP-RM drops or corrupts its next reply to GSP_RM_CONTROL, or crashes
 *   inspect         the RM clients GSP-RM holds
 *
 * Each generation's conformance module (hal/ada-lovelace/ada-conformance.ts, hal/hopper/hopper-conformance.ts) is
 * this with its HAL, table and default board.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { HalFixture, HalFixtureOptions } from '../../conformance/hal-fixture.js';
import { ErrorCode, VgpuError } from '../../core/contracts/exceptions.js';
import type { Hal } from '../../core/contracts/hal.js';
import { GspFunction } from '../gsp/gsp-layout.js';
import type { BoardTable } from '../sim/board/board-table.js';
import { SimPciBus } from '../sim/device/sim-pci-bus.js';
import { startSimDevice, type SimDeviceHandle } from '../sim/device/start-sim-device.js';

const GiB = 1n << 30n;

export interface SimGpuFixtureOptions {
  hal: Hal;
  table: BoardTable;
  board: string;
  bdf: string;
  mode?: 'worker' | 'process';
  /** Simulated FB (default: 8 GiB in worker mode, the board's FB in process mode). */
  fbBytes?: bigint;
}

export async function createSimGpuFixture(opts: HalFixtureOptions, o: SimGpuFixtureOptions): Promise<HalFixture & { device: SimDeviceHandle }> {
  const mode = o.mode ?? 'worker';
  // Process mode: the sparse device file goes to shared memory (a file on disk would be written back), in a
  // folder of our own — never the default /dev/shm/vgpud-sim of a running daemon.
  const dir = mode === 'process' ? await mkdtemp(existsSync('/dev/shm') ? '/dev/shm/vgpud-conformance-' : join(opts.workDir, 'sim-')) : undefined;
  let dev: SimDeviceHandle;
  try {
    dev = await startSimDevice({
      board: o.board, bdf: o.bdf, mode,
      ...(mode === 'worker' ? { fbBytes: o.fbBytes ?? 8n * GiB } : o.fbBytes !== undefined ? { fbBytes: o.fbBytes } : {}),
      ...(dir !== undefined ? { dir } : {}),
    }, o.table);
  } catch (e) {
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
    throw e;
  }
  const bus = new SimPciBus({ logger: opts.logger });
  const unregister = mode === 'worker' ? bus.register(dev.arena) : (bus.addDir(dir!), () => {});
  const device = (await bus.list()).find((d) => d.bdf === o.bdf);
  const mine = (bdf: string): SimDeviceHandle => {
    if (bdf !== o.bdf) {
      throw new VgpuError(ErrorCode.NotFound, `the ${o.table.generation} conformance fixture has no device ${bdf}`, { hint: `its device is ${o.bdf}` });
    }
    return dev;
  };
  return {
    device: dev,
    hal: o.hal,
    bus,
    devices: device !== undefined ? [device] : [],
    deviceView: { readFb: (bdf, offset, length) => Uint8Array.from(mine(bdf).fbWindow(offset, length)) },
    hostEvents: { raise: (bdf, e) => mine(bdf).controls.hostEvent(e) },
    firmwareEvents: { raiseRcError: (bdf, gfid) => mine(bdf).controls.raiseEvent({ kind: 'rc', gfid }) },
    faults: {
      dropNextReply: (bdf) => mine(bdf).controls.inject({ kind: 'drop-reply', fn: GspFunction.GSP_RM_CONTROL }),
      corruptNextReply: (bdf) => mine(bdf).controls.inject({ kind: 'corrupt-next-element' }),
      crash: (bdf) => mine(bdf).controls.crash(),
    },
    inspect: { rmClients: (bdf) => mine(bdf).controls.rmClients() },
    teardown: async () => {
      unregister();
      try {
        await dev.stop();
      } finally {
        if (dir !== undefined) await rm(dir, { recursive: true, force: true });
      }
    },
  };
}
