/**
 * Exponential backoff with jitter for retrying a call to a peer that may be restarting (the kubelet, the API
 * server). A timer exists only while something is failing: an idle, healthy daemon arms none.
 *
 * Jitter spreads the retries of many nodes that lost the same peer at once (the k8s client-go backoffs do the same:
 * k8s.io/apimachinery/pkg/util/wait Backoff.Jitter). The first delay is `initialMs`, each next one `factor` times the
 * last, capped at `maxMs`; `reset()` after a success.
 */
export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
  factor?: number;
  /** Fraction of the delay added at random, 0..1 (default 0.1). */
  jitter?: number;
  /** Source of randomness in [0, 1) (tests pass a constant). */
  random?: () => number;
}

export class Backoff {
  private attempt = 0;
  constructor(private readonly o: BackoffOptions) {}

  /** Failures since the last reset. */
  get failures(): number {
    return this.attempt;
  }

  /** The delay before the next try (ms), counting this failure. */
  next(): number {
    const base = Math.min(this.o.maxMs, this.o.initialMs * (this.o.factor ?? 2) ** this.attempt);
    this.attempt++;
    const jitter = (this.o.jitter ?? 0.1) * (this.o.random ?? Math.random)();
    return Math.round(Math.min(this.o.maxMs, base * (1 + jitter)));
  }

  reset(): void {
    this.attempt = 0;
  }
}
