/**
 * Payload codecs of the RM RPCs every NVIDIA HAL sends through GSP, the RM-status → typed-error mapping (nouveau
 * `r535_rpc_status_to_errno`), and small host helpers that send them over any `GspRpcCaller`. Layouts and sources:
 * docs/reference/gsp-queues.md.
 *
 *   rpc_gsp_rm_control_v03_00 (535/570): hClient, hObject, cmd, status, paramsSize, flags, params[]   (24 B + params)
 *   rpc_gsp_rm_alloc_v03_00:   hClient, hParent, hObject, hClass, status, paramsSize, flags, reserved[4], params[]
 *                                                                                                    (44 B + params)
 *   rpc_free_v03_00 (NVOS00_PARAMETERS_v03_00): hRoot, hObjectParent, hObjectOld, status             (16 B)
 */
import { ErrorCode, VgpuError } from '../../core/contracts/exceptions.js';
import type { RpcOptions } from '../../core/contracts/firmware.js';
import { GspFunction, RmStatus, gspFunctionName } from './gsp-layout.js';

export const RM_CONTROL_HEADER_SIZE = 24;
export const RM_ALLOC_HEADER_SIZE = 44;
export const RM_FREE_SIZE = 16;

export interface RmControlPayload {
  hClient: number;
  hObject: number;
  cmd: number;
  /** RM status: 0 in a request, the firmware's result in the reply. */
  status: number;
  flags: number;
  params: Uint8Array;
}

export interface RmAllocPayload {
  hClient: number;
  hParent: number;
  hObject: number;
  hClass: number;
  status: number;
  flags: number;
  params: Uint8Array;
}

export interface RmFreePayload {
  hRoot: number;
  hObjectParent: number;
  hObjectOld: number;
  status: number;
}

function words(buf: Uint8Array): DataView {
  return new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
}

function tooShort(what: string, got: number, need: number): VgpuError {
  return new VgpuError(ErrorCode.FirmwareRpc, `${what} payload of ${got} bytes is shorter than ${need}`, {
    hint: 'the peer sent a truncated RM payload; check both ends use the same RPC version',
    details: { got, need },
  });
}

export function encodeRmControl(p: Omit<RmControlPayload, 'status' | 'flags'> & { status?: number; flags?: number }): Uint8Array {
  const out = new Uint8Array(RM_CONTROL_HEADER_SIZE + p.params.length);
  const v = words(out);
  v.setUint32(0, p.hClient, true);
  v.setUint32(4, p.hObject, true);
  v.setUint32(8, p.cmd, true);
  v.setUint32(12, p.status ?? 0, true);
  v.setUint32(16, p.params.length, true);
  v.setUint32(20, p.flags ?? 0, true);
  out.set(p.params, RM_CONTROL_HEADER_SIZE);
  return out;
}

/** Decode; `params` is a view into `buf` (copy it to keep it past `buf`'s life). */
export function decodeRmControl(buf: Uint8Array): RmControlPayload {
  if (buf.length < RM_CONTROL_HEADER_SIZE) throw tooShort('RM control', buf.length, RM_CONTROL_HEADER_SIZE);
  const v = words(buf);
  const paramsSize = v.getUint32(16, true);
  if (RM_CONTROL_HEADER_SIZE + paramsSize > buf.length) throw tooShort('RM control', buf.length, RM_CONTROL_HEADER_SIZE + paramsSize);
  return {
    hClient: v.getUint32(0, true),
    hObject: v.getUint32(4, true),
    cmd: v.getUint32(8, true),
    status: v.getUint32(12, true),
    flags: v.getUint32(20, true),
    params: buf.subarray(RM_CONTROL_HEADER_SIZE, RM_CONTROL_HEADER_SIZE + paramsSize),
  };
}

export function encodeRmAlloc(p: Omit<RmAllocPayload, 'status' | 'flags'> & { status?: number; flags?: number }): Uint8Array {
  const out = new Uint8Array(RM_ALLOC_HEADER_SIZE + p.params.length);
  const v = words(out);
  v.setUint32(0, p.hClient, true);
  v.setUint32(4, p.hParent, true);
  v.setUint32(8, p.hObject, true);
  v.setUint32(12, p.hClass, true);
  v.setUint32(16, p.status ?? 0, true);
  v.setUint32(20, p.params.length, true);
  v.setUint32(24, p.flags ?? 0, true);
  // reserved[4] at 28..43 stays zero
  out.set(p.params, RM_ALLOC_HEADER_SIZE);
  return out;
}

export function decodeRmAlloc(buf: Uint8Array): RmAllocPayload {
  if (buf.length < RM_ALLOC_HEADER_SIZE) throw tooShort('RM alloc', buf.length, RM_ALLOC_HEADER_SIZE);
  const v = words(buf);
  const paramsSize = v.getUint32(20, true);
  if (RM_ALLOC_HEADER_SIZE + paramsSize > buf.length) throw tooShort('RM alloc', buf.length, RM_ALLOC_HEADER_SIZE + paramsSize);
  return {
    hClient: v.getUint32(0, true),
    hParent: v.getUint32(4, true),
    hObject: v.getUint32(8, true),
    hClass: v.getUint32(12, true),
    status: v.getUint32(16, true),
    flags: v.getUint32(24, true),
    params: buf.subarray(RM_ALLOC_HEADER_SIZE, RM_ALLOC_HEADER_SIZE + paramsSize),
  };
}

export function encodeRmFree(p: Omit<RmFreePayload, 'status'> & { status?: number }): Uint8Array {
  const out = new Uint8Array(RM_FREE_SIZE);
  const v = words(out);
  v.setUint32(0, p.hRoot, true);
  v.setUint32(4, p.hObjectParent, true);
  v.setUint32(8, p.hObjectOld, true);
  v.setUint32(12, p.status ?? 0, true);
  return out;
}

export function decodeRmFree(buf: Uint8Array): RmFreePayload {
  if (buf.length < RM_FREE_SIZE) throw tooShort('RM free', buf.length, RM_FREE_SIZE);
  const v = words(buf);
  return { hRoot: v.getUint32(0, true), hObjectParent: v.getUint32(4, true), hObjectOld: v.getUint32(8, true), status: v.getUint32(12, true) };
}

/**
 * How many payload bytes an RM control or alloc message holds in all, read from its own header (`head`: at least
 * the first element's payload): its fixed part plus paramsSize. This is how a reader of a split message knows where
 * it ends — GSP-RM must do the same (inferred), and for a reply it is what nouveau passes as the expected size.
 * null for other functions or a head too short to say.
 */
export function declaredRmPayloadBytes(fn: number, head: Uint8Array): number | null {
  const v = words(head);
  if (fn === GspFunction.GSP_RM_CONTROL && head.length >= RM_CONTROL_HEADER_SIZE) return RM_CONTROL_HEADER_SIZE + v.getUint32(16, true);
  if (fn === GspFunction.GSP_RM_ALLOC && head.length >= RM_ALLOC_HEADER_SIZE) return RM_ALLOC_HEADER_SIZE + v.getUint32(20, true);
  return null;
}

/**
 * The typed error for a non-zero RM status or RPC result (nouveau `r535_rpc_status_to_errno`: 0x55 NOT_READY and 0x66 TIMEOUT_RETRY are
 * "busy, retry", 0x51 NO_MEMORY is out of memory; everything else is a firmware RPC failure carrying the status).
 */
export function rmStatusError(status: number, what: string, details: Record<string, unknown> = {}): VgpuError {
  const hex = `0x${(status >>> 0).toString(16)}`;
  const d = { ...details, rmStatus: status >>> 0 };
  switch (status >>> 0) {
    case RmStatus.NOT_READY:
    case RmStatus.TIMEOUT_RETRY:
      return new VgpuError(ErrorCode.Busy, `${what} failed: firmware busy (RM status ${hex})`, {
        hint: 'the firmware asked to retry; try again shortly',
        details: d,
      });
    case RmStatus.NO_MEMORY:
      return new VgpuError(ErrorCode.OutOfMemory, `${what} failed: firmware out of memory (RM status ${hex})`, {
        hint: 'free vGPUs or RM objects, or lower the per-vGPU heap, then retry',
        details: d,
      });
    case RmStatus.SIM_BAD_CHECKSUM:
      return new VgpuError(ErrorCode.Checksum, `${what} failed: firmware saw a bad checksum on the request`, {
        hint: 'the shared queue memory was corrupted in transit; the call may be retried',
        details: d,
      });
    default:
      return new VgpuError(ErrorCode.FirmwareRpc, `${what} failed with RM status ${hex}`, {
        hint: 'see the firmware log for why it refused; the status is in details.rmStatus',
        details: d,
      });
  }
}

/** Anything that can send a raw GSP RPC (the host client; a test double). */
export interface GspRpcCaller {
  call(fn: number, payload: Uint8Array, opts?: RpcOptions & { gfid?: number }): Promise<Uint8Array>;
}

/** Send an RM control; resolves with the params block as the firmware returned it. */
export async function rmControl(
  rpc: GspRpcCaller,
  req: { hClient: number; hObject: number; cmd: number; params: Uint8Array; flags?: number },
  opts?: RpcOptions & { gfid?: number },
): Promise<Uint8Array> {
  const reply = decodeRmControl(await rpc.call(GspFunction.GSP_RM_CONTROL, encodeRmControl(req), opts));
  if (reply.status !== RmStatus.OK) {
    throw rmStatusError(reply.status, `RM control 0x${req.cmd.toString(16)}`, { hClient: req.hClient, hObject: req.hObject, cmd: req.cmd });
  }
  return reply.params.slice();
}

/** Allocate an RM object; resolves with the params block as the firmware returned it. */
export async function rmAlloc(
  rpc: GspRpcCaller,
  req: { hClient: number; hParent: number; hObject: number; hClass: number; params: Uint8Array; flags?: number },
  opts?: RpcOptions & { gfid?: number },
): Promise<Uint8Array> {
  const reply = decodeRmAlloc(await rpc.call(GspFunction.GSP_RM_ALLOC, encodeRmAlloc(req), opts));
  if (reply.status !== RmStatus.OK) {
    throw rmStatusError(reply.status, `RM alloc of class 0x${req.hClass.toString(16)}`, {
      hClient: req.hClient, hParent: req.hParent, hObject: req.hObject, hClass: req.hClass,
    });
  }
  return reply.params.slice();
}

/** Free an RM object (and everything under it). */
export async function rmFree(
  rpc: GspRpcCaller,
  req: { hRoot: number; hObjectParent: number; hObjectOld: number },
  opts?: RpcOptions & { gfid?: number },
): Promise<void> {
  const reply = decodeRmFree(await rpc.call(GspFunction.FREE, encodeRmFree(req), opts));
  if (reply.status !== RmStatus.OK) throw rmStatusError(reply.status, `RM free of 0x${req.hObjectOld.toString(16)}`, { ...req });
}

/** Typed error for a non-zero rpc_result in a reply header. */
export function rpcResultError(result: number, fn: number, sequence: number): VgpuError {
  return rmStatusError(result, `GSP RPC ${gspFunctionName(fn)} (seq ${sequence})`, { fn, sequence, rpcResult: result >>> 0 });
}
