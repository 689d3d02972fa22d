/**
 * GSP queue element codec: element header + RPC header + payload, the XOR checksum, and the checks a reader makes
 * before it trusts an element. Splitting and reassembly rules are in gsp-reassembler.ts; the facts and their
 * public sources in docs/reference/gsp-queues.md.
 *
 * Checksum: XOR of the padded element's 64-bit words folded hi32 ^ lo32 (nouveau `r535_gsp_cmdq_push`; nova-core
 * `Cmdq::calculate_checksum` is the byte-wise equivalent). That equals the XOR of all its 32-bit words, so we fold
 * over a Uint32Array (no BigInt in the hot path). The writer zeroes the padding, so the XOR of the used words IS
 * the XOR of the padded element; the reader folds the words covering header + payload (rounded to 8 bytes) — a
 * padding word cannot change what is delivered, and skipping it keeps a 100-byte RPC from costing a 4 KiB checksum.
 *
 * Large RPCs (nouveau `r535_gsp_rpc_push`, nova-core `gsp/cmdq/continuation.rs`): a payload of more than
 * GSP_MAX_ELEMENT_PAYLOAD bytes is cut into full chunks and a last, shorter (or equally full) one. The first
 * element carries the real function, each following one function CONTINUATION_RECORD (71). In EVERY element the
 * RPC `length` is the RPC header plus the bytes THAT element carries — not the whole message — so a reader cannot
 * learn the total from the first element; see gsp-reassembler.ts for how it knows.
 *
 * Two sequence numbers (nouveau commit 90caca3b7264 "use rpc sequence numbers properly": 570 firmware asserts on
 * both being in order): the element header's `sequence` counts every element a side writes; the RPC header's
 * `sequence` counts every RPC the host sends — each continuation record takes the next number, as nouveau sends
 * each through r535_gsp_rpc_send — except the asynchronous boot RPCs, which carry 0 (NVKM_GSP_RPC_REPLY_NOSEQ).
 * encodeElement writes element `index` of a message with RPC sequence `sequence + index` (0 stays 0). A writer
 * emits a message's elements back to back.
 */
import { ErrorCode, VgpuError } from '../../core/contracts/exceptions.js';
import {
  Element,
  GSP_ELEMENT_PAYLOAD_OFFSET,
  GSP_MAX_ELEMENT_PAGES,
  GSP_MAX_ELEMENT_PAYLOAD,
  GSP_MAX_ELEMENT_SIZE,
  GSP_PAGE_SIZE,
  GSP_RPC_HEADER_SIZE,
  GspFunction,
  RPC_HEADER_VERSION,
  RPC_SIGNATURE,
  elementPages,
  gspFunctionName,
} from './gsp-layout.js';

const W = {
  CHECKSUM: Element.CHECKSUM >>> 2,
  SEQUENCE: Element.SEQUENCE >>> 2,
  ELEM_COUNT: Element.ELEM_COUNT >>> 2,
  PAD: Element.PAD >>> 2,
  HV: Element.RPC_HEADER_VERSION >>> 2,
  SIG: Element.RPC_SIGNATURE >>> 2,
  LEN: Element.RPC_LENGTH >>> 2,
  FN: Element.RPC_FUNCTION >>> 2,
  RES: Element.RPC_RESULT >>> 2,
  RESP: Element.RPC_RESULT_PRIVATE >>> 2,
  SEQ: Element.RPC_SEQUENCE >>> 2,
  GFID: Element.RPC_GFID >>> 2,
} as const;

/** XOR of u32 words [from, to). */
export function xorWords(u32: Uint32Array, from: number, to: number): number {
  let x = 0;
  let i = from;
  // Unrolled by 4: the loop runs on every element both ways; this halves its cost in V8.
  for (const end4 = to - ((to - from) & 3); i < end4; i += 4) {
    x ^= (u32[i] as number) ^ (u32[i + 1] as number) ^ (u32[i + 2] as number) ^ (u32[i + 3] as number);
  }
  for (; i < to; i++) x ^= u32[i] as number;
  return x >>> 0;
}

/** Bytes of an element holding `chunk` payload bytes, rounded to whole 64-bit words. */
export function elementUsedBytes(chunk: number): number {
  return (GSP_ELEMENT_PAYLOAD_OFFSET + chunk + 7) & ~7;
}

/** Number of elements a payload of `len` bytes needs. */
export function elementsFor(len: number): number {
  return len <= GSP_MAX_ELEMENT_PAYLOAD ? 1 : Math.ceil(len / GSP_MAX_ELEMENT_PAYLOAD);
}

/** Header fields of one RPC message (shared by all its elements). */
export interface RpcFields {
  fn: number;
  /** RPC-header sequence: the host's call id, echoed by the firmware in the reply. 0 for events. */
  sequence: number;
  result: number;
  resultPrivate: number;
  gfid: number;
}

/**
 * Encodes elements into a reusable 64 KiB scratch page run (no allocation per message).
 */
export class GspElementEncoder {
  readonly scratch = new Uint8Array(GSP_MAX_ELEMENT_SIZE);
  readonly scratch32 = new Uint32Array(this.scratch.buffer);

  /**
   * Encode element `index` of the message (`payload`, `fields`) with element sequence `elemSeq`. Returns the
   * used byte count; pages = elementPages(used). With `corrupt`, the first dword is overwritten with 0xFFFFFFFF
   * AFTER the checksum (OpenRM's message-queue error injection, `message_queue_cpu.c`; docs/reference/gsp-queues.md).
   */
  encode(fields: RpcFields, payload: Uint8Array, index: number, elemSeq: number, corrupt = false): number {
    return encodeElement(this.scratch, this.scratch32, 0, fields.fn, fields.sequence, fields.result, fields.resultPrivate,
      fields.gfid, payload, index, elemSeq, corrupt);
  }
}

/**
 * Encode element `index` of a message at byte `b0` (8-byte aligned) of `u8`/`u32` (two views of one buffer):
 * the scratch run, or straight into a ring slot when the element does not wrap (saves a copy per message).
 * The header fields are positional so that a reply can be written without building a message object first.
 * Returns the used byte count.
 */
export function encodeElement(
  u8: Uint8Array, u32: Uint32Array, b0: number,
  fn: number, sequence: number, result: number, resultPrivate: number, gfid: number,
  payload: Uint8Array, index: number, elemSeq: number, corrupt: boolean,
): number {
  const off = index * GSP_MAX_ELEMENT_PAYLOAD;
  const chunk = Math.min(GSP_MAX_ELEMENT_PAYLOAD, payload.length - off);
  const used = (GSP_ELEMENT_PAYLOAD_OFFSET + chunk + 7) & ~7;
  const w0 = b0 >>> 2;
  // Auth tag + AAD (confidential computing only) stay zero; the checksum word is zero while we fold.
  u32[w0] = 0; u32[w0 + 1] = 0; u32[w0 + 2] = 0; u32[w0 + 3] = 0;
  u32[w0 + 4] = 0; u32[w0 + 5] = 0; u32[w0 + 6] = 0; u32[w0 + 7] = 0;
  u32[w0 + W.CHECKSUM] = 0;
  u32[w0 + W.SEQUENCE] = elemSeq;
  u32[w0 + W.ELEM_COUNT] = (GSP_ELEMENT_PAYLOAD_OFFSET + chunk + GSP_PAGE_SIZE - 1) >>> 12;
  u32[w0 + W.PAD] = 0;
  u32[w0 + W.HV] = RPC_HEADER_VERSION;
  u32[w0 + W.SIG] = RPC_SIGNATURE;
  u32[w0 + W.LEN] = GSP_RPC_HEADER_SIZE + chunk; // nouveau's rule: this element's bytes only
  u32[w0 + W.FN] = index === 0 ? fn : GspFunction.CONTINUATION_RECORD;
  u32[w0 + W.RES] = result;
  u32[w0 + W.RESP] = resultPrivate;
  u32[w0 + W.SEQ] = sequence === 0 ? 0 : (sequence + index) >>> 0;
  u32[w0 + W.GFID] = gfid;
  const p0 = b0 + GSP_ELEMENT_PAYLOAD_OFFSET;
  // TypedArray.set is a memcpy: measured 4× faster than a byte loop even for 64 bytes (Node 20, SAB target).
  u8.set(chunk === payload.length ? payload : payload.subarray(off, off + chunk), p0);
  // Zero the tail up to the 8-byte boundary so it folds as padding.
  for (let b = p0 + chunk; b < b0 + used; b++) u8[b] = 0;
  u32[w0 + W.CHECKSUM] = xorWords(u32, w0, w0 + (used >>> 2));
  if (corrupt) u32[w0] = 0xffffffff;
  return used;
}

/** Why an element or message was dropped. */
export interface GspDrop {
  error: VgpuError;
  /** The RPC sequence if the header was readable, else null. */
  sequence: number | null;
  fn: number | null;
}

/**
 * Where a reader delivers what it read. Positional arguments instead of a message object: a one-element
 * message (nearly all of them) goes from the ring to its consumer with no allocation but its payload copy.
 */
export interface GspReceiverSink {
  /** A complete, checked message. `payload` is a fresh copy the sink may keep. */
  message(fn: number, sequence: number, result: number, resultPrivate: number, gfid: number, payload: Uint8Array): void;
  /** An element (and the message it belonged to) was dropped. */
  drop(d: GspDrop): void;
  /** The ring cannot be read any further (desynchronised). */
  fatal(e: VgpuError): void;
  /**
   * How many payload bytes the message `fn`/`sequence` holds in all, asked when its first element is full (so
   * continuation records may follow). `head` is that element's payload, valid during the call only. null = not
   * known: the reader then takes every continuation record that follows, up to the first short one. The rules
   * come from who reads: nouveau's host passes the size it expects (`r535_gsp_msg_recv` gsp_rpc_len), GSP-RM must
   * read it from the payload (inferred: an RM control carries paramsSize) — see gsp-reassembler.ts.
   */
  expectedBytes?(fn: number, sequence: number, head: Uint8Array): number | null;
}

/** A fresh copy of `len` bytes at `u8[b0…]`: slice() is one allocation + memcpy, 2× faster than new + a byte loop. */
export function copyBytes(u8: Uint8Array, b0: number, len: number): Uint8Array {
  return u8.slice(b0, b0 + len);
}

/**
 * What inspectElement() found, written into a caller-owned object so that checking an element allocates nothing
 * (it runs for every element both ways). `pages` is valid for ok and drop; the rest as documented per field.
 */
export class ElementInfo {
  /** Slots the element occupies (0 after a fatal result). */
  pages = 0;
  /** Payload bytes this element carries. */
  chunk = 0;
  /** First element of a message (not a continuation record). */
  head = false;
  /** The drop or the fatal error; null when ok. */
  error: VgpuError | null = null;
  /** RPC sequence / function read from the header (also for a drop). */
  sequence = 0;
  fn = 0;
}

/** inspectElement() outcomes. */
export const ElementStatus = {
  /** Good element: consume `pages`, deliver it. */
  Ok: 0,
  /** Bad element: consume `pages`, report `error` for `sequence`/`fn`. */
  Drop: 1,
  /** The ring cannot be read past here (bad element count). */
  Fatal: 2,
} as const;
export type ElementStatus = (typeof ElementStatus)[keyof typeof ElementStatus];

/**
 * Validate the element whose words start at `w0` in `u32` (`available` slots in the ring) into `out`. A bad
 * element count is fatal (the reader cannot find the next element); every other defect drops this element only.
 */
export function inspectElement(u32: Uint32Array, w0: number, available: number, out: ElementInfo): ElementStatus {
  const pages = u32[w0 + W.ELEM_COUNT] as number;
  out.error = null;
  if (pages < 1 || pages > GSP_MAX_ELEMENT_PAGES || pages > available) {
    out.pages = 0;
    out.error = new VgpuError(ErrorCode.FirmwareRpc, `GSP queue element claims ${pages} pages (${available} available)`, {
      hint: 'the queue is desynchronised; the GPU must be reset and the firmware rebooted',
      details: { elemCount: pages, available },
    });
    return ElementStatus.Fatal;
  }
  const sequence = u32[w0 + W.SEQ] as number;
  const fn = u32[w0 + W.FN] as number;
  const length = u32[w0 + W.LEN] as number;
  // Every element's length counts its own bytes only (nouveau's rule), continuation or not.
  const chunk = length - GSP_RPC_HEADER_SIZE;
  out.pages = pages;
  out.sequence = sequence;
  out.fn = fn;
  out.head = fn !== GspFunction.CONTINUATION_RECORD;
  out.chunk = chunk;
  if (length < GSP_RPC_HEADER_SIZE || elementPages(GSP_ELEMENT_PAYLOAD_OFFSET + chunk) !== pages) {
    // A length that does not match the page count: if the checksum fails too, report the checksum failure
    // (the more precise diagnosis: the memory was corrupted); otherwise the peer wrote a malformed element.
    const used = Math.min(pages * GSP_PAGE_SIZE, elementUsedBytes(Math.max(0, chunk)));
    if (xorWords(u32, w0, w0 + (used >>> 2)) !== 0) {
      return badElement(out, ErrorCode.Checksum, `GSP element checksum mismatch (${gspFunctionName(fn)}, seq ${sequence})`,
        'the shared queue memory was corrupted; the call may be retried', length);
    }
    return badElement(out, ErrorCode.FirmwareRpc, `GSP element length ${length} does not fit its ${pages} pages`,
      'the peer wrote a malformed element; check both ends run the same protocol build', length);
  }
  if (xorWords(u32, w0, w0 + (((GSP_ELEMENT_PAYLOAD_OFFSET + chunk + 7) & ~7) >>> 2)) !== 0) {
    return badElement(out, ErrorCode.Checksum, `GSP element checksum mismatch (${gspFunctionName(fn)}, seq ${sequence})`,
      'the shared queue memory was corrupted; the call may be retried', length);
  }
  if (u32[w0 + W.HV] !== RPC_HEADER_VERSION || u32[w0 + W.SIG] !== RPC_SIGNATURE) {
    return badElement(out, ErrorCode.FirmwareRpc,
      `GSP RPC header version 0x${(u32[w0 + W.HV] as number).toString(16)} / signature 0x${(u32[w0 + W.SIG] as number).toString(16)} not understood`,
      'the firmware speaks another RPC header version; use a supported firmware', length);
  }
  return ElementStatus.Ok;
}

function badElement(out: ElementInfo, code: ErrorCode, msg: string, hint: string, length: number): ElementStatus {
  out.error = new VgpuError(code, msg, { hint, details: { sequence: out.sequence, fn: out.fn, length, pages: out.pages } });
  return ElementStatus.Drop;
}
