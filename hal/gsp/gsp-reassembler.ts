/**
 * Turns checked elements, read in queue order, back into messages (facts: docs/reference/gsp-queues.md).
 *
 * Where a message ends. A writer splits only a payload larger than one element holds, and every element but the
 * last is full (nouveau `r535_gsp_rpc_push`, nova-core `SplitState`). So a short element always ends its message.
 * A full one may or may not be followed by CONTINUATION_RECORD elements, and its RPC `length` does not say (it
 * counts that element's bytes only). Readers therefore learn the total elsewhere:
 *   - nouveau's host passes the reply size it expects (`r535_gsp_msg_recv(gsp, fn, gsp_rpc_len)`) and reads
 *     continuation records until it has that many bytes. It applies that size to whatever message comes first,
 *     so an event arriving ahead of a large reply makes it read the reply's first element as a "continuation"
 *     and fail with -EIO. Here the expected size is asked per message (sink.expectedBytes with the message's own
 *     function and sequence), so only the reply it belongs to gets it;
 *   - GSP-RM must read the total from the payload (inferred: an RM control carries paramsSize; the real registry
 *     table its size).
 * When nobody knows the total, every continuation record that follows is taken, up to the first short one; a
 * message of unknown size that ends on a full element is complete when the next message begins.
 *
 * Malformed sequences, each reported once through sink.drop (the owner fails the call it belongs to) and then
 * left behind — the next first element resynchronises the reader:
 *   - a new message begins before a known total was reached (continuation records missing);
 *   - a continuation record with no message in progress, or whose RPC sequence is neither the next one (nouveau
 *     numbers every record), nor its first element's, nor 0 (older nouveau and nova-core never set it);
 *   - continuation records carrying more bytes than the known total, or a short one before it was reached;
 *   - an element of the message that was dropped (checksum, bad length): the rest of it is skipped quietly.
 */
import { ErrorCode, VgpuError } from '../../core/contracts/exceptions.js';
import { copyBytes, type ElementInfo, type GspDrop, type GspReceiverSink } from './gsp-element.js';
import { Element, GSP_ELEMENT_PAYLOAD_OFFSET, GSP_MAX_ELEMENT_PAYLOAD, GspFunction, gspFunctionName } from './gsp-layout.js';

const RES = Element.RPC_RESULT >>> 2;
const RESP = Element.RPC_RESULT_PRIVATE >>> 2;
const GFID = Element.RPC_GFID >>> 2;

/**
 * Largest message reassembled (our bound, no public one: 32 MiB is 500 elements, far beyond any RM control vgpud
 * sends). A peer that declares or sends more gets its message dropped instead of making us allocate it.
 */
export const GSP_MAX_MESSAGE_BYTES = 32 << 20;

function tooLarge(fn: number, sequence: number, bytes: number): GspDrop {
  return {
    error: new VgpuError(ErrorCode.FirmwareRpc, `GSP message ${gspFunctionName(fn)} (seq ${sequence}) of ${bytes} bytes exceeds ${GSP_MAX_MESSAGE_BYTES}`, {
      hint: 'the peer declared or sent an implausible size; the message was dropped',
      details: { fn, sequence, bytes, max: GSP_MAX_MESSAGE_BYTES },
    }),
    sequence,
    fn,
  };
}

/** A message whose first element was full and whose continuation records are being collected. */
interface Partial {
  fn: number;
  sequence: number;
  result: number;
  resultPrivate: number;
  gfid: number;
  /** Known total payload bytes, or null (open: ends at a short element or at the next message). */
  total: number | null;
  /** Known total: the whole payload, filled in place. */
  payload: Uint8Array | null;
  /** Open: the chunks so far. */
  parts: Uint8Array[] | null;
  filled: number;
  /** RPC sequence of the last element taken. */
  lastSeq: number;
}

export class GspReassembler {
  private cur: Partial | null = null;
  /** Continuation records of a dropped message follow; skip them quietly until the next first element. */
  private skipping = false;

  /** Take the element at `u8/u32` word `w0` (already checked into `info`); deliver what it completes to `sink`. */
  take(u8: Uint8Array, u32: Uint32Array, w0: number, info: ElementInfo, sink: GspReceiverSink): void {
    const chunk = info.chunk;
    const b0 = (w0 << 2) + GSP_ELEMENT_PAYLOAD_OFFSET;
    if (info.head) {
      const cur = this.cur;
      if (cur !== null) {
        this.cur = null;
        if (cur.total === null) this.deliver(cur, sink); // an open message ends where the next one begins
        else sink.drop(this.broken(cur, `a new message (${gspFunctionName(info.fn)}) began after ${cur.filled} of ${cur.total} bytes`));
      }
      this.skipping = false;
      const fn = info.fn;
      const sequence = info.sequence;
      let total: number | null = null;
      if (chunk === GSP_MAX_ELEMENT_PAYLOAD && sink.expectedBytes !== undefined) {
        total = sink.expectedBytes(fn, sequence, u8.subarray(b0, b0 + chunk));
      }
      if (total !== null && total > GSP_MAX_MESSAGE_BYTES) {
        this.skipping = true;
        sink.drop(tooLarge(fn, sequence, total));
        return;
      }
      if (chunk < GSP_MAX_ELEMENT_PAYLOAD || (total !== null && total <= chunk)) {
        // The common case: one element, one message, one copy.
        sink.message(fn, sequence, u32[w0 + RES] as number, u32[w0 + RESP] as number, u32[w0 + GFID] as number, copyBytes(u8, b0, chunk));
        return;
      }
      const first = copyBytes(u8, b0, chunk);
      let payload: Uint8Array | null = null;
      if (total !== null) {
        payload = new Uint8Array(total);
        payload.set(first);
      }
      this.cur = {
        fn, sequence,
        result: u32[w0 + RES] as number, resultPrivate: u32[w0 + RESP] as number, gfid: u32[w0 + GFID] as number,
        total, payload, parts: payload === null ? [first] : null, filled: chunk, lastSeq: sequence,
      };
      return;
    }
    if (this.skipping) return;
    const cur = this.cur;
    if (cur === null) {
      this.skipping = true;
      sink.drop({
        error: new VgpuError(ErrorCode.FirmwareRpc, `stray GSP continuation record (seq ${info.sequence}): no split message in progress`, {
          hint: 'the peer broke a split message; the call may be retried',
          details: { sequence: info.sequence, bytes: chunk },
        }),
        sequence: info.sequence,
        fn: GspFunction.CONTINUATION_RECORD,
      });
      return;
    }
    const seq = info.sequence;
    if (seq !== ((cur.lastSeq + 1) >>> 0) && seq !== cur.sequence && seq !== 0) {
      this.abandon(sink, `a continuation record of sequence ${seq} arrived after sequence ${cur.lastSeq}`);
      return;
    }
    cur.lastSeq = seq;
    if (cur.total !== null) {
      if (cur.filled + chunk > cur.total) {
        this.abandon(sink, `continuation records carry more than the ${cur.total} bytes expected`);
        return;
      }
      (cur.payload as Uint8Array).set(u8.subarray(b0, b0 + chunk), cur.filled);
      cur.filled += chunk;
      if (cur.filled === cur.total) {
        this.cur = null;
        this.deliver(cur, sink);
      } else if (chunk < GSP_MAX_ELEMENT_PAYLOAD) {
        this.abandon(sink, `a short continuation record ended it after ${cur.filled} of ${cur.total} bytes`);
      }
      return;
    }
    if (cur.filled + chunk > GSP_MAX_MESSAGE_BYTES) {
      this.cur = null;
      this.skipping = true;
      sink.drop(tooLarge(cur.fn, cur.sequence, cur.filled + chunk));
      return;
    }
    (cur.parts as Uint8Array[]).push(copyBytes(u8, b0, chunk));
    cur.filled += chunk;
    if (chunk < GSP_MAX_ELEMENT_PAYLOAD) {
      this.cur = null;
      this.deliver(cur, sink);
    }
  }

  /**
   * An element was dropped before it could be taken (checksum, bad length: `error`). Its header cannot be trusted
   * to say whether it began a message or continued one, so the message in progress is given up — reported with the
   * element's error code, so its owner learns WHY (a checksum failure stays a Checksum error) — and continuation
   * records that follow are skipped until the next first element.
   */
  dropped(sink: GspReceiverSink, error: VgpuError): void {
    const cur = this.cur;
    this.cur = null;
    this.skipping = true;
    if (cur === null) return;
    sink.drop({
      error: new VgpuError(error.code, `GSP message ${gspFunctionName(cur.fn)} (seq ${cur.sequence}) lost an element: ${error.message}`, {
        hint: error.hint,
        details: { sequence: cur.sequence, fn: cur.fn, received: cur.filled, total: cur.total },
        cause: error,
      }),
      sequence: cur.sequence,
      fn: cur.fn,
    });
  }

  private abandon(sink: GspReceiverSink, why: string): void {
    const cur = this.cur as Partial;
    this.cur = null;
    this.skipping = true;
    sink.drop(this.broken(cur, why));
  }

  private broken(cur: Partial, why: string): GspDrop {
    return {
      error: new VgpuError(ErrorCode.FirmwareRpc, `incomplete GSP message (${gspFunctionName(cur.fn)}, seq ${cur.sequence}): ${why}`, {
        hint: 'the peer broke a split message; the call may be retried',
        details: { sequence: cur.sequence, fn: cur.fn, received: cur.filled, total: cur.total },
      }),
      sequence: cur.sequence,
      fn: cur.fn,
    };
  }

  private deliver(cur: Partial, sink: GspReceiverSink): void {
    let payload = cur.payload;
    if (payload === null) {
      payload = new Uint8Array(cur.filled);
      let at = 0;
      for (const p of cur.parts as Uint8Array[]) {
        payload.set(p, at);
        at += p.length;
      }
    }
    sink.message(cur.fn, cur.sequence, cur.result, cur.resultPrivate, cur.gfid, payload);
  }
}
