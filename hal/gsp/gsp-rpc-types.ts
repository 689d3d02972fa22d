/**
 * Options, defaults, statistics and the event record of the host GSP client (gsp-rpc-client.ts), apart so that
 * callers and the client's parts can share them without pulling the client in.
 */
import type { RpcOptions } from '../../core/contracts/firmware.js';
import type { Logger } from '../../core/contracts/logger.js';
import type { SharedArena } from '../../native/native-ops.js';

/** OpenRM reply wait: defaultus + defaultus/2 with the 4 s graphics-mode default (`kernel_gsp.c` `_kgspRpcRecvPoll`). */
export const GSP_DEFAULT_RPC_TIMEOUT_MS = 6000;
/** OpenRM command-queue space wait per element (`message_queue_cpu.c`). */
export const GSP_DEFAULT_SPACE_TIMEOUT_MS = 1000;
export const GSP_DEFAULT_HEARTBEAT_TIMEOUT_MS = 2000;

export interface GspRpcClientOptions {
  arena: SharedArena;
  /** Region base in the arena (page aligned). Default 0. */
  base?: bigint;
  /** Initialise the region (PTEs, cmdq header, control page). The host owns the region: default true. */
  init?: boolean;
  /** Default reply timeout per call, counted from the call (queue time included). */
  timeoutMs?: number;
  /** Wait for command-queue space per element before failing with Busy. */
  spaceTimeoutMs?: number;
  /** A heartbeat that does not move for this long while a call is in flight means the firmware is gone. */
  heartbeatTimeoutMs?: number;
  /** Longest sleep of the receive loop between health checks. */
  pollMs?: number;
  /** Spin budget (µs) for a reply before sleeping (core/runtime/adaptive-spin.ts). Default VGPUD_GSP_SPIN_US, else 0. */
  spinUs?: number;
  logger?: Logger;
}

export interface GspCallOptions extends RpcOptions {
  /** GFID placed in the RPC header's cpuRmGfid (0 = the PF). */
  gfid?: number;
  /**
   * Payload bytes of the reply, when it may be split into continuation records and its own header does not say
   * (RM control and alloc replies do). Default: the request's size, as nouveau expects (`r535_gsp_msg_recv`).
   */
  replyBytes?: number;
}

/** A firmware event as the transport delivers it (the HAL turns it into a FirmwareEventRecord). */
export interface GspEvent {
  fn: number;
  name: string;
  gfid: number;
  sequence: number;
  payload: Uint8Array;
}

export interface GspClientStats {
  /** call()s made (including those that failed before being sent). */
  calls: number;
  /** send()s of asynchronous RPCs written into the command queue. */
  asyncSent: number;
  replies: number;
  events: number;
  timeouts: number;
  /** Replies whose caller was gone (timed out, cancelled). */
  lateReplies: number;
  /** Messages below 0x1000 that matched no call (neither the one in flight nor an expired one): logged, dropped. */
  unexpected: number;
  /** Elements or messages dropped (checksum, malformed, broken continuation). */
  drops: number;
  /** Most calls ever waiting behind the one in flight. */
  maxQueued: number;
  elementsSent: number;
  elementsReceived: number;
  /** Wake-ups (futex/notify) sent to the firmware: one per time it had gone to sleep, not one per message. */
  wakesSent: number;
  /** Times the receive loop went to sleep waiting for the firmware. */
  sleeps: number;
}
