/**
 * NDJSON streams fed by bus events (GET /v1/events, `logs --follow`). Each stream unsubscribes when the client
 * goes away, and all of them are ended before the server closes — an open stream would otherwise hold
 * `fastify.close()` (and daemon shutdown) until the client gave up.
 */
import { PassThrough } from 'node:stream';
import type { FastifyReply } from 'fastify';
import { ndjsonLine } from './to-json.js';

export class StreamSet {
  private readonly open = new Set<{ stream: PassThrough; cleanup: () => void }>();

  /** Start an NDJSON reply; `subscribe` gets a writer and returns its unsubscribe. */
  start(reply: FastifyReply, subscribe: (write: (v: unknown) => void) => () => void): PassThrough {
    const stream = new PassThrough();
    let unsubscribe: (() => void) | undefined;
    const entry = {
      stream,
      cleanup: () => {
        unsubscribe?.();
        unsubscribe = undefined;
        this.open.delete(entry);
      },
    };
    this.open.add(entry);
    const write = (v: unknown): void => {
      if (!stream.writableEnded) stream.write(ndjsonLine(v));
    };
    unsubscribe = subscribe(write);
    reply.raw.on('close', () => { entry.cleanup(); stream.end(); });
    void reply.type('application/x-ndjson').header('cache-control', 'no-store').send(stream);
    return stream;
  }

  /** End every open stream (server shutdown). */
  endAll(): void {
    for (const e of [...this.open]) {
      e.cleanup();
      e.stream.end();
    }
  }

  get size(): number {
    return this.open.size;
  }
}
