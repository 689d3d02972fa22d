/**
 * Routes hardware and firmware exceptions to the owner of the faulting resource
 * (docs/reference/core-driver-interface.md duty 3).
 *
 * Upstream v2 forwards only FIFO non-stall events and leaves RC errors, MMU faults and error logs unrouted
 * (docs/reference/core-driver-interface.md). Here every exception is resolved to an owner — a vGPU when a resolver
 * claims its gfid (the vGPU manager registers one), else the physical GPU — then delivered to that owner's
 * subscribers and to `'*'`, emitted on the bus as `'exception'`, and logged on the owner's child logger.
 */
import { inject, injectable } from 'inversify';
import type { EventBus } from './contracts/events.js';
import type { ExceptionListener, ExceptionOwner, ExceptionRelay, GpuException } from './contracts/exceptions.js';
import type { Logger } from './contracts/logger.js';
import { TOKENS } from './tokens.js';

type Resolver = (exception: GpuException) => ExceptionOwner | undefined;

/** The subscription key of an owner: the vGPU id, or the GPU's BDF. */
export function ownerId(owner: ExceptionOwner): string {
  return owner.kind === 'vgpu' ? owner.vgpuId : owner.gpu;
}

@injectable()
export class ExceptionRelayImpl implements ExceptionRelay {
  private readonly resolvers: Resolver[] = [];
  private readonly subscribers = new Map<string, Set<ExceptionListener>>();

  constructor(
    @inject(TOKENS.EventBus) private readonly bus: EventBus,
    @inject(TOKENS.Logger) private readonly logger: Logger,
  ) {}

  report(exception: GpuException): ExceptionOwner {
    const owner = this.resolve(exception);
    const log = owner.kind === 'vgpu'
      ? this.logger.child({ gpu: owner.gpu, vgpu: owner.vgpuId })
      : this.logger.child({ gpu: owner.gpu });
    const meta = {
      kind: exception.kind, source: exception.source, fatal: exception.fatal,
      ...(exception.gfid !== undefined ? { gfid: exception.gfid } : {}),
      ...(exception.eventId !== undefined ? { eventId: `0x${exception.eventId.toString(16)}` } : {}),
      ...(exception.data !== undefined ? { data: exception.data } : {}),
    };
    if (exception.fatal) log.error(`exception: ${exception.message}`, meta);
    else log.warn(`exception: ${exception.message}`, meta);

    const id = ownerId(owner);
    // Copy the sets: a listener that unsubscribes (or subscribes) while being called must not skip or repeat one.
    const targets = [...(this.subscribers.get(id) ?? []), ...(id === '*' ? [] : this.subscribers.get('*') ?? [])];
    for (const listener of targets) {
      try {
        listener(exception, owner);
      } catch (error) {
        this.logger.error('exception subscriber threw', { owner: id, kind: exception.kind, error });
      }
    }
    this.bus.emit('exception', exception);
    return owner;
  }

  subscribe(owner: string, listener: ExceptionListener): () => void {
    let set = this.subscribers.get(owner);
    if (set === undefined) {
      set = new Set();
      this.subscribers.set(owner, set);
    }
    // Wrap so the same function can be subscribed twice and each unsubscribe removes exactly one.
    const entry: ExceptionListener = (e, o) => listener(e, o);
    set.add(entry);
    return () => {
      const s = this.subscribers.get(owner);
      if (s === undefined) return;
      s.delete(entry);
      if (s.size === 0) this.subscribers.delete(owner);
    };
  }

  addResolver(resolver: Resolver): () => void {
    const entry: Resolver = (e) => resolver(e);
    this.resolvers.push(entry);
    return () => {
      const i = this.resolvers.indexOf(entry);
      if (i >= 0) this.resolvers.splice(i, 1);
    };
  }

  private resolve(exception: GpuException): ExceptionOwner {
    for (const resolver of [...this.resolvers]) {
      try {
        const owner = resolver(exception);
        if (owner !== undefined) return owner;
      } catch (error) {
        // A broken resolver must not lose the exception: log it and ask the next one.
        this.logger.error('exception resolver threw', { gpu: exception.gpu, kind: exception.kind, error });
      }
    }
    return { kind: 'gpu', gpu: exception.gpu };
  }
}
