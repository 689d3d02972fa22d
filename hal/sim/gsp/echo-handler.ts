/**
 * The default handler of the simulated GSP worker: answers every RPC with its own payload and result 0.
 * Enough for transport tests and the RPC benchmark; the Ada simulator replaces it with the RM handlers through
 * `handlerModule` (see gsp-worker.ts).
 */
import type { GspHandlerContext } from './gsp-worker-protocol.js';
import type { GspRpcHandler } from './gsp-rpc-server.js';

export function createHandler(_ctx: GspHandlerContext): GspRpcHandler {
  return (_fn, payload) => ({ result: 0, payload });
}
