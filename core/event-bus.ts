/**
 * The one typed bus of the daemon, on eventemitter3.
 *
 * Each listener is wrapped so that a throw (or a rejected promise from an async listener) is logged with the
 * event name and the error, and the other listeners still run. eventemitter3 on its own stops an emit at the
 * first throw and hands the error to whoever emitted — usually a hardware or firmware path that must not fail
 * because a subscriber is broken. The upstream driver's event chains stop at the first non-zero return
 * (docs/reference/core-driver-interface.md, events); here every subscriber always sees every event.
 */
import { EventEmitter } from 'eventemitter3';
import { inject, injectable } from 'inversify';
import type { BusEventName, BusListener, EventBus } from './contracts/events.js';
import type { Logger } from './contracts/logger.js';
import { TOKENS } from './tokens.js';

type AnyListener = (...args: unknown[]) => unknown;

@injectable()
export class EventBusImpl implements EventBus {
  private readonly ee = new EventEmitter();
  /** One failure counter per emit in progress; a listener that emits again gets its own frame. */
  private readonly frames: { threw: number }[] = [];

  constructor(@inject(TOKENS.Logger) private readonly logger: Logger) {}

  on<K extends BusEventName>(event: K, listener: BusListener<K>): () => void {
    const wrapped = this.wrap(event, listener as AnyListener);
    this.ee.on(event, wrapped);
    return () => { this.ee.off(event, wrapped); };
  }

  once<K extends BusEventName>(event: K, listener: BusListener<K>): () => void {
    const wrapped = this.wrap(event, listener as AnyListener);
    this.ee.once(event, wrapped);
    return () => { this.ee.off(event, wrapped, undefined, true); };
  }

  emit<K extends BusEventName>(event: K, ...args: Parameters<BusListener<K>>): number {
    const frame = { threw: 0 };
    this.frames.push(frame);
    try {
      this.ee.emit(event, ...args);
    } finally {
      this.frames.pop();
    }
    return frame.threw;
  }

  listenerCount(event: BusEventName): number {
    return this.ee.listenerCount(event);
  }

  private wrap(event: string, listener: AnyListener): AnyListener {
    return (...args: unknown[]) => {
      try {
        const r = listener(...args);
        if (r !== null && typeof r === 'object' && typeof (r as Promise<unknown>).then === 'function') {
          // An async listener's rejection would otherwise be an unhandled rejection that kills the daemon.
          (r as Promise<unknown>).then(undefined, (error: unknown) => {
            this.logger.error('event listener rejected', { event, error });
          });
        }
      } catch (error) {
        const frame = this.frames[this.frames.length - 1];
        if (frame) frame.threw += 1;
        this.logger.error('event listener threw', { event, error });
      }
    };
  }
}
