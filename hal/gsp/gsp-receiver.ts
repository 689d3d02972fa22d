/**
 * Reads every element available in one side's RX ring, checks and reassembles them, and hands out complete
 * messages — one batch per wake-up, so a busy ring is drained without sleeping between elements.
 */
import type { VgpuError } from '../../core/contracts/exceptions.js';
import { GspReassembler, checkElement, type GspDrop, type GspMessage } from './gsp-element.js';
import { Element, GSP_MAX_ELEMENT_PAGES, GSP_MAX_ELEMENT_SIZE, GSP_PAGE_SIZE } from './gsp-layout.js';
import type { GspEndpoint } from './gsp-queue.js';

export interface GspReceiverSink {
  /** A complete, checked message. `payload` is a fresh copy the sink may keep. */
  message(m: GspMessage): void;
  /** An element (and the message it belonged to) was dropped. */
  drop(d: GspDrop): void;
  /** The ring cannot be read any further (desynchronised). */
  fatal(e: VgpuError): void;
}

const ELEM_COUNT_WORD = Element.ELEM_COUNT >>> 2;

export class GspReceiver {
  private readonly scratch = new Uint8Array(GSP_MAX_ELEMENT_SIZE);
  private readonly scratch32 = new Uint32Array(this.scratch.buffer);
  private readonly asm = new GspReassembler();
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
    let n = 0;
    for (;;) {
      const avail = rx.used();
      if (avail === 0) break;
      const slot = rx.slotOffset();
      let u8: Uint8Array = view.u8;
      let u32 = view.u32;
      let w0 = slot >>> 2;
      // The header page never wraps; a multi-page element may: copy it out to read it in one piece.
      const claim = view.u32[w0 + ELEM_COUNT_WORD] as number;
      if (claim >= 1 && claim <= GSP_MAX_ELEMENT_PAGES && claim <= avail && claim > rx.contiguous()) {
        rx.copyOut(this.scratch, claim * GSP_PAGE_SIZE);
        u8 = this.scratch;
        u32 = this.scratch32;
        w0 = 0;
      }
      const c = checkElement(u32, w0, avail);
      if (!c.ok) {
        if ('fatal' in c) {
          this.broken = c.fatal;
          if (n > 0) this.ep.rxSpace.ring();
          sink.fatal(c.fatal);
          return n;
        }
        this.asm.dropCurrent(c.drop.sequence);
        rx.advance(c.pages);
        n++;
        sink.drop(c.drop);
        continue;
      }
      const r = this.asm.take(u8, u32, w0, c.chunk, c.head, c.total);
      rx.advance(c.pages);
      n++;
      if (r !== null) {
        if ('payload' in r) sink.message(r);
        else sink.drop(r);
      }
    }
    if (n > 0) {
      this.elements += n;
      this.ep.rxSpace.ring();
    }
    return n;
  }
}
