/**
 * The Ada HAL as a conformance-kit fixture (conformance/hal-fixture.ts): one simulated Ada board at 0000:41:00.0 —
 * worker mode by default (device region in a SharedArrayBuffer, GSP-RM on a worker thread, 8 GiB of the board's FB
 * so the kit can reach above 4 GiB), or a vgpu-sim process with the board's full FB in a private /dev/shm folder.
 * The simulated device gives the kit every capability:
 *
 *   deviceView      the FB part of the device region, read directly (what the simulated copy engine and the
 *                   firmware's plugin tasks see), not through the HAL's FramebufferMemory
 *   hostEvents      the device posts the event into its host-event ring (sriov-configure changes NumVFs first)
 *   firmwareEvents  the simulated GSP-RM raises RC_TRIGGERED for the gfid
 *   faults          the simulated GSP-RM drops or corrupts its next reply to GSP_RM_CONTROL, or crashes
 *   inspect         the RM clients GSP-RM holds
 *
 * Environment: VGPUD_CONFORMANCE_ADA_MODE=worker|process, VGPUD_CONFORMANCE_ADA_BOARD=<board key> (default
 * rtx6000-ada). `npm run conformance -- --hal hal/ada-lovelace/ada-conformance.ts`
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { HalConformanceModule, HalFixture, HalFixtureOptions } from '../../conformance/hal-fixture.js';
import { ErrorCode, VgpuError } from '../../core/contracts/exceptions.js';
import { GspFunction } from '../gsp/gsp-layout.js';
import { AdaHal } from './ada-hal.js';
import { SimPciBus } from '../sim/device/sim-pci-bus.js';
import { startSimDevice, type SimDeviceHandle } from './sim/start-sim-device.js';

const GiB = 1n << 30n;
export const ADA_CONFORMANCE_BDF = '0000:41:00.0';

export interface AdaFixtureOptions {
  mode?: 'worker' | 'process';
  board?: string;
  /** Simulated FB (default: 8 GiB in worker mode, the board's FB in process mode). */
  fbBytes?: bigint;
}

export async function createAdaFixture(opts: HalFixtureOptions, ada: AdaFixtureOptions = {}): Promise<HalFixture & { device: SimDeviceHandle }> {
  const mode = ada.mode ?? (process.env['VGPUD_CONFORMANCE_ADA_MODE'] === 'process' ? 'process' : 'worker');
  const board = ada.board ?? process.env['VGPUD_CONFORMANCE_ADA_BOARD'] ?? 'rtx6000-ada';
  // Process mode: the sparse device file goes to shared memory (a file on disk would be written back), in a
  // folder of our own — never the default /dev/shm/vgpud-sim of a running daemon.
  const dir = mode === 'process' ? await mkdtemp(existsSync('/dev/shm') ? '/dev/shm/vgpud-conformance-' : join(opts.workDir, 'sim-')) : undefined;
  let dev: SimDeviceHandle;
  try {
    dev = await startSimDevice({
      board, bdf: ADA_CONFORMANCE_BDF, mode,
      ...(mode === 'worker' ? { fbBytes: ada.fbBytes ?? 8n * GiB } : ada.fbBytes !== undefined ? { fbBytes: ada.fbBytes } : {}),
      ...(dir !== undefined ? { dir } : {}),
    });
  } catch (e) {
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
    throw e;
  }
  const bus = new SimPciBus({ logger: opts.logger });
  const unregister = mode === 'worker' ? bus.register(dev.arena) : (bus.addDir(dir!), () => {});
  const device = (await bus.list()).find((d) => d.bdf === ADA_CONFORMANCE_BDF);
  const mine = (bdf: string): SimDeviceHandle => {
    if (bdf !== ADA_CONFORMANCE_BDF) {
      throw new VgpuError(ErrorCode.NotFound, `the Ada conformance fixture has no device ${bdf}`, { hint: `its device is ${ADA_CONFORMANCE_BDF}` });
    }
    return dev;
  };
  return {
    device: dev,
    hal: new AdaHal(),
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

const adaConformance: HalConformanceModule = {
  name: 'ada-lovelace (simulated)',
  createFixture: (opts) => createAdaFixture(opts),
};

export default adaConformance;
