/**
 * Handler module of the simulated Ada GSP-RM: loaded by hal/sim/gsp/gsp-worker.ts on the device's GSP thread
 * (`handlerModule`), it builds the AdaFirmware for this device and answers the device's own control commands
 * (raise an event, inspect uploaded types and plugin tasks) sent with `GspWorkerHandle.command()`.
 */
import type { GspHandlerContext } from '../../sim/gsp/gsp-worker-protocol.js';
import type { GspRpcHandler } from '../../sim/gsp/gsp-rpc-server.js';
import { boardByKey } from '../chips.js';
import { AdaFirmware, type SimEventRequest } from './ada-firmware.js';
import { installPluginTaskRuntime } from './plugin-task-runtime.js';
import type { GuestWorkloadCommand } from './guest-workload.js';

/** `handlerOptions` the device passes (structured-cloneable: bigints as decimal strings). */
export interface AdaFirmwareHandlerOptions {
  boardKey: string;
  firmwareVersion: string;
  numVfs: number;
  fbOffset: string;
  fbBytes: string;
  eccEnabled?: boolean;
}

/** Commands the device sends to its GSP thread. */
export type AdaFirmwareCommand =
  | { op: 'raise'; event: SimEventRequest }
  | { op: 'types' }
  | { op: 'task'; gfid: number }
  | { op: 'clients' }
  | { op: 'guest-workload'; gfid: number; cmd: GuestWorkloadCommand };

export function createHandler(ctx: GspHandlerContext): GspRpcHandler {
  const o = ctx.options as AdaFirmwareHandlerOptions;
  const board = boardByKey(o.boardKey);
  if (board === undefined) throw new Error(`ada firmware: unknown board "${o.boardKey}"`);
  const fw = new AdaFirmware(
    { arena: ctx.arena, postEvent: (fn, payload, gfid) => ctx.postEvent(fn, payload, gfid !== undefined ? { gfid } : {}) },
    {
      board,
      firmwareVersion: o.firmwareVersion,
      numVfs: o.numVfs,
      fbOffset: BigInt(o.fbOffset),
      fbBytes: BigInt(o.fbBytes),
      ...(o.eccEnabled !== undefined ? { eccEnabled: o.eccEnabled } : {}),
    },
  );
  // Plugin tasks started by BOOTLOAD serve their mailbox from this thread (plugin-task-runtime.ts).
  const runtime = installPluginTaskRuntime({
    arena: ctx.arena,
    fbOffset: BigInt(o.fbOffset),
    isRunning: () => ctx.server.isRunning,
    taskState: (gfid) => fw.taskState(gfid),
  });
  ctx.onCommand((data) => {
    const cmd = data as AdaFirmwareCommand;
    switch (cmd.op) {
      case 'raise':
        fw.raiseEvent(cmd.event);
        return true;
      case 'types':
        return fw.uploadedTypes.map((t) => ({ id: t.id, name: t.name, maxInstance: t.maxInstance, fbLength: t.fbLength.toString() }));
      case 'task':
        return fw.taskState(cmd.gfid) ?? null;
      case 'clients':
        return fw.clientCount;
      case 'guest-workload':
        return runtime.guestWorkload(cmd.gfid, cmd.cmd);
      default:
        throw new Error(`ada firmware: unknown command ${JSON.stringify(data)}`);
    }
  });
  return (fn, payload, info) => fw.handle(fn, payload, info.gfid);
}
