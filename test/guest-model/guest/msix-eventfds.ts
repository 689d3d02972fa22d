/**
 * The eventfds a VMM hands the server with SET_IRQS, one per vector, and a way to wait for one to fire: an
 * event-loop watcher on the eventfd, started only while someone waits (an idle guest costs nothing), and a read
 * that takes the counter (eventfd(2): a read returns the count and resets it to 0).
 */
import { loadFdOps, WATCH_READABLE, type FdWatcher } from '../wire/fd-ops.js';

export class IrqEventfds {
  readonly fds: number[];
  /** Signals taken so far, per vector. */
  readonly counts: number[];

  constructor(count: number) {
    const ops = loadFdOps();
    this.fds = [];
    try {
      for (let i = 0; i < count; i++) this.fds.push(ops.eventfd(0));
    } catch (e) {
      for (const fd of this.fds) ops.closeFd(fd);
      throw e;
    }
    this.counts = this.fds.map(() => 0);
  }

  /** Take whatever is pending on `vector` now (0 when nothing). */
  take(vector: number): number {
    const n = loadFdOps().eventfdRead(this.fds[vector]!);
    const v = n === null ? 0 : Number(n);
    this.counts[vector]! += v;
    return v;
  }

  /** Resolve with the count once `vector` has fired (at once when it already has); rejects after the guard. */
  wait(vector: number, guardMs = 60_000): Promise<number> {
    const now = this.take(vector);
    if (now > 0) return Promise.resolve(now);
    const ops = loadFdOps();
    return new Promise((resolve, reject) => {
      let w: FdWatcher | undefined;
      const timer = setTimeout(() => {
        w?.close();
        reject(new Error(`MSI-X vector ${vector} did not fire within the ${guardMs} ms anti-hang guard`));
      }, guardMs);
      w = ops.watch(this.fds[vector]!, (flags) => {
        if ((flags & WATCH_READABLE) === 0) return;
        const n = this.take(vector);
        if (n === 0) return;
        clearTimeout(timer);
        w!.close();
        resolve(n);
      });
      w.start(true, false);
    });
  }

  close(): void {
    const ops = loadFdOps();
    for (const fd of this.fds) ops.closeFd(fd);
    this.fds.length = 0;
  }
}
