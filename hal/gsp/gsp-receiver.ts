/**
 * Reads every element available in one side's RX ring, checks and reassembles them, and hands out complete
 * messages — one batch per wake-up, so a busy ring is drained without sleeping between elements. The read
 * pointer is published and the peer's space doorbell rung ONCE per batch, not per element.
 *
 * An element that does not wrap is checked where it lies in the ring (no copy); only its payload is copied,
 * once, into the buffer the consumer receives.
 */
import type { VgpuError } from '../../core/contracts/exceptions.js';
import { ElementInfo, ElementStatus, inspectElement, type GspReceiverSink } from './gsp-element.js';
import { GspReassembler } from './gsp-reassembler.js';
import { Element, GSP_MAX_ELEMENT_PAGES, GSP_MAX_ELEMENT_SIZE, GSP_PAGE_SIZE } from './gsp-layout.js';
import type { GspEndpoint } from './gsp-queue.js';

export type { GspReceiverSink } from './gsp-element.js';

const ELEM_COUNT_WORD = Element.ELEM_COUNT >>> 2;

export class GspReceiver {
  private readonly scratch = new Uint8Array(GSP_MAX_ELEMENT_SIZE);
  private readonly scratch32 = new Uint32Array(this.scratch.buffer);
  private readonly asm = new GspReassembler();
  private readonly info = new ElementInfo();
  /** Set once the ring was found unreadable; drain() then does nothing. */
  broken: VgpuError | null = null;
  elements = 0;

  constructor(private readonly ep: GspEndpoint) {}

  /** True when elements wait to be read. */
  hasInput(): boolean {
    return this.broken === null && this.ep.rx.used() > 0;
  }

  /** Read everything available; returns the number of elements consumed. */
  drain(sink: GspReceiverSink): number {
    if (this.broken !== null) return 0;
    const rx = this.ep.rx;
    const view = this.ep.view;
    const info = this.info;
    let n = 0;
    try {
      for (let avail = rx.used(); avail > 0; avail = rx.used()) {
        // Everything up to `avail` is published: take it all before looking at the write pointer again.
        while (avail > 0) {
          const slot = rx.slotOffset();
          let u8: Uint8Array = view.u8;
          let u32 = view.u32;
          let w0 = slot >>> 2;
          // The header page never wraps; a multi-page element may: copy it out to read it in one piece.
          const claim = u32[w0 + ELEM_COUNT_WORD] as number;
          if (claim > 1 && claim <= GSP_MAX_ELEMENT_PAGES && claim <= avail && claim > rx.contiguous()) {
            rx.copyOut(this.scratch, claim * GSP_PAGE_SIZE);
            u8 = this.scratch;
            u32 = this.scratch32;
            w0 = 0;
          }
          const st = inspectElement(u32, w0, avail, info);
          if (st === ElementStatus.Fatal) {
            this.broken = info.error;
            sink.fatal(info.error as VgpuError);
            return n;
          }
          rx.advance(info.pages);
          avail -= info.pages;
          n++;
          if (st === ElementStatus.Drop) {
            const error = info.error as VgpuError;
            sink.drop({ error, sequence: info.sequence, fn: info.fn });
            this.asm.dropped(sink, error);
          } else {
            this.asm.take(u8, u32, w0, info, sink);
          }
        }
      }
    } finally {
      if (n > 0) {
        this.elements += n;
        // Free the slots for the producer; wake it only if it sleeps waiting for space.
        rx.release();
        this.ep.rxSpace.ring();
      }
    }
    return n;
  }
}
