/**
 * Serializes the operations of one VF (create, destroy, reset, BME, host-event teardown) while different VFs run
 * in parallel: a promise chain per key. The upstream driver takes the VF mutex for the same reason; a chain
 * never blocks the event loop and keeps the order the requests came in.
 */
export class KeyedQueue<K> {
  private readonly tails = new Map<K, Promise<unknown>>();
  private readonly depth = new Map<K, number>();

  /** Run `fn` after every earlier operation on `key` has settled; resolves/rejects with `fn`'s outcome. */
  run<T>(key: K, fn: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(key) ?? Promise.resolve();
    this.depth.set(key, (this.depth.get(key) ?? 0) + 1);
    // The count drops before the caller sees the result, so a caller that awaits one operation and immediately
    // starts the next on the same VF never finds the VF "busy" with the operation it just awaited.
    const wrapped = async (): Promise<T> => {
      try {
        return await fn();
      } finally {
        const d = (this.depth.get(key) ?? 1) - 1;
        if (d === 0) {
          this.depth.delete(key);
          this.tails.delete(key);
        } else this.depth.set(key, d);
      }
    };
    const next = prev.then(wrapped, wrapped);
    if (this.depth.has(key)) this.tails.set(key, next.then(() => undefined, () => undefined));
    return next;
  }

  /** True while an operation on `key` is queued or running. */
  busy(key: K): boolean {
    return (this.depth.get(key) ?? 0) > 0;
  }

  /** Resolves when every operation queued so far (on every key) has settled. */
  async idle(): Promise<void> {
    while (this.tails.size > 0) await Promise.all([...this.tails.values()]);
  }
}
