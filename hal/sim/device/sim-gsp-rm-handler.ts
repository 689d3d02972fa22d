/**
 * Handler module of the simulated GSP-RM (any generation: the board comes in the options): loaded by hal/sim/gsp/gsp-worker.ts on the device's GSP thread
 * (`handlerModule`), it builds the SimGspRm for this device and answers the device's own control commands
 * (raise an event, inspect uploaded types and plugin tasks) sent with `GspWorkerHandle.command()`.
 */
import type { GspHandlerContext } from '../gsp/gsp-worker-protocol.js';
import type { GspRpcHandler } from '../gsp/gsp-rpc-server.js';
import type { SimBoard } from '../board/sim-board.js';
import { SimGspRm, type SimEventRequest } from './sim-gsp-rm.js';
import { installPluginTaskRuntime } from './plugin-task-runtime.js';
import type { GuestWorkloadCommand } from './guest-workload.js';
import { GspFwState } from '../../gsp/gsp-layout.js';
import type { IrqMessage } from './irq-protocol.js';
import { LogIrqModerator } from './log-irq-moderator.js';

/** `handlerOptions` the device passes (structured clone: the board record travels whole, so the GSP thread needs
 *  no generation's board table). */
export interface SimGspRmHandlerOptions {
  board: SimBoard;
  firmwareVersion: string;
  numVfs: number;
  fbOffset: string;
  fbBytes: string;
  eccEnabled?: boolean;
}

/** Commands the device sends to its GSP thread. */
export type SimGspRmCommand =
  | { op: 'raise'; event: SimEventRequest }
  | { op: 'types' }
  | { op: 'task'; gfid: number }
  | { op: 'clients' }
  | { op: 'guest-workload'; gfid: number; cmd: GuestWorkloadCommand };

export function createHandler(ctx: GspHandlerContext): GspRpcHandler {
  const o = ctx.options as SimGspRmHandlerOptions;
  const board = o.board;
  // Log text of every call within the hold-off becomes ONE interrupt naming every gfid that wrote (log-irq-moderator.ts).
  const logIrq = new LogIrqModerator((gfids) => ctx.raiseIrq({ t: 'irq', src: 'log', gfids } satisfies IrqMessage));
  const logWritten = (gfid: number): void => logIrq.written(gfid);
  const fw = new SimGspRm(
    {
      arena: ctx.arena, postEvent: (fn, payload, gfid) => ctx.postEvent(fn, payload, gfid !== undefined ? { gfid } : {}), logWritten,
      afterReply: (work) => ctx.server.afterReplies(work),
    },
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
    firmwareSpin: ctx.server.firmwareSpin,
  });
  ctx.server.onHalt((state) => {
    runtime.wake(); // its watcher sleeps without a timeout: it must see the halt and end
    ctx.raiseIrq({ t: 'irq', src: 'gsp', state: state === GspFwState.Crashed ? 'crashed' : 'stopped' } satisfies IrqMessage);
  });
  ctx.onCommand((data) => {
    const cmd = data as SimGspRmCommand;
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
        throw new Error(`simulated GSP-RM: unknown command ${JSON.stringify(data)}`);
    }
  });
  return (fn, payload, info) => fw.handle(fn, payload, info.gfid);
}
