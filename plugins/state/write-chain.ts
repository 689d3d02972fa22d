/**
 * Per-key write ordering for journal files: writes to one key run one after the other (so the last write always
 * wins on disk), writes to different keys run in parallel. A failed write does not block the next one.
 */
export class WriteChains {
  private readonly chains = new Map<string, Promise<void>>();

  run(key: string, fn: () => Promise<void>): Promise<void> {
    const prev = this.chains.get(key) ?? Promise.resolve();
    const next = prev.catch(() => {}).then(fn);
    this.chains.set(key, next);
    void next.finally(() => { if (this.chains.get(key) === next) this.chains.delete(key); }).catch(() => {});
    return next;
  }

  /** Resolves once every write queued so far has settled. */
  async flush(): Promise<void> {
    await Promise.allSettled([...this.chains.values()]);
  }
}
