/**
 * Messages and types between the simulated-GSP worker (gsp-worker.ts) and the thread that started it
 * (gsp-worker-host.ts), plus the context a handler module receives. Kept apart so a handler module can import
 * the types without pulling the worker entry in.
 */
import type { Logger } from '../../../core/contracts/logger.js';
import type { SharedArena } from '../../../native/native-ops.js';
import type { GspFault, GspRpcHandler, GspRpcServer, GspServerStats } from './gsp-rpc-server.js';

export interface GspWorkerData {
  /** Attach this SharedArrayBuffer arena (threads of one process, the JS fallback)… */
  sab?: SharedArrayBuffer;
  /** …or open this arena file through the native addon (another process may have created it). */
  path?: string;
  /** Region base inside the arena, as a decimal string (bigint does not cross postMessage in every Node). */
  base?: string;
  /** Module exporting `createHandler(ctx)`; absolute path or file: URL. Default: the echo handler. */
  handlerModule?: string;
  /** Passed to createHandler as ctx.options (must be structured-cloneable). */
  handlerOptions?: unknown;
  heartbeatMs?: number;
  spaceTimeoutMs?: number;
  /** The firmware thread's look-before-sleep budget, µs (firmware-spin.ts); default VGPUD_SIM_FW_SPIN_US or 200. */
  firmwareSpinUs?: number;
  /** Log warn/error lines of the simulated GSP to stderr. */
  verbose?: boolean;
}

export type GspWorkerCommand =
  | { id: number; op: 'inject'; fault: GspFault }
  | { id: number; op: 'event'; fn: number; payload: Uint8Array; gfid?: number }
  | { id: number; op: 'stats' }
  | { id: number; op: 'stop' }
  /** Forwarded to the handler module's `ctx.onCommand` listener (the simulator's own control channel). */
  | { id: number; op: 'custom'; data: unknown };

export type GspWorkerMessage =
  | { op: 'ready' }
  /** An interrupt the firmware raises to its device (ctx.raiseIrq); the device decides what the host sees. */
  | { op: 'irq'; data: unknown }
  | { op: 'fatal'; message: string; code?: string }
  | { op: 'ack'; id: number; value?: unknown; error?: { message: string; code?: string } };

/** What a handler module's `createHandler` receives. */
export interface GspHandlerContext {
  server: GspRpcServer;
  arena: SharedArena;
  base: bigint;
  /** `handlerOptions` from the worker data. */
  options: unknown;
  logger: Logger;
  /** Send a firmware event (fn ≥ 0x1000) to the host. */
  postEvent(fn: number, payload?: Uint8Array, opts?: { gfid?: number }): void;
  /** Receive 'custom' commands from the parent thread; the return value (or resolution) is the ack value. */
  onCommand(listener: (data: unknown) => unknown): void;
  /**
   * Raise an interrupt to the device this firmware runs in (its parent thread's `onIrq`): the firmware's way to
   * say "look now" about something outside the message queue, such as new log text. Structured-cloneable data.
   */
  raiseIrq(data: unknown): void;
}

/** The export a handler module must provide. */
export type CreateGspHandler = (ctx: GspHandlerContext) => GspRpcHandler | Promise<GspRpcHandler>;

export type { GspServerStats };
