/**
 * Writes what the node agent reports about its Node: the `nvidia.com/vgpu.config.state` label (pending, success,
 * failed) and Events. A label write that fails (API server restarting, a network blip) is retried with backoff
 * until it lands — a state label left at "pending" would lie to whoever waits on it — and a newer state replaces
 * one still being retried. Events are best effort: a few tries, then a log line.
 */
import { Backoff } from '../../core/backoff.js';
import type { Logger } from '../../core/contracts/logger.js';
import { LABELS, type ConfigState } from './k8s-config.js';
import type { NodeApi, NodeEvent, NodeObject } from './node-api.js';

const EVENT_TRIES = 4;

export class NodeReporter {
  /** The Node as last seen (watch or patch answer). */
  node: NodeObject | undefined;
  private want: ConfigState | undefined;
  private writing: Promise<void> | undefined;
  private stopped = false;
  /** Pending retry delays, ended early by stop(). */
  private readonly sleepers = new Set<{ timer: NodeJS.Timeout; wake: () => void }>();
  private readonly backoff: Backoff;
  private readonly eventBackoff: Backoff;

  constructor(private readonly api: NodeApi, private readonly log: Logger, backoff: { initialMs: number; maxMs: number }) {
    this.backoff = new Backoff(backoff);
    this.eventBackoff = new Backoff(backoff);
  }

  /** Set the state label; resolves once it (or a newer state) is written, or the reporter stopped. */
  setState(state: ConfigState): Promise<void> {
    this.want = state;
    this.writing ??= this.writeLoop().finally(() => { this.writing = undefined; });
    return this.writing;
  }

  /** Post an Event about the Node (not awaited by callers; failures are logged). */
  async event(ev: NodeEvent): Promise<void> {
    for (let i = 1; i <= EVENT_TRIES && !this.stopped; i++) {
      const node = this.node;
      if (node === undefined) return;
      try {
        await this.api.postEvent(node, ev);
        this.eventBackoff.reset();
        return;
      } catch (error) {
        if (i === EVENT_TRIES) this.log.warn('could not post an Event about the Node; giving up on it', { reason: ev.reason, error });
        else await this.sleep(this.eventBackoff.next());
      }
    }
  }

  stop(): void {
    this.stopped = true;
    for (const s of this.sleepers) {
      clearTimeout(s.timer);
      s.wake();
    }
    this.sleepers.clear();
  }

  private async writeLoop(): Promise<void> {
    let failures = 0;
    while (!this.stopped && this.want !== undefined && this.node?.labels[LABELS.state] !== this.want) {
      const state = this.want;
      try {
        this.node = await this.api.patchLabels({ [LABELS.state]: state });
        this.log.info('set the Node\'s vGPU config state', { label: LABELS.state, state });
        failures = 0;
      } catch (error) {
        failures++;
        const delay = this.backoff.next();
        if ((failures & (failures - 1)) === 0) this.log.warn('could not set the Node\'s vGPU config state; retrying', { state, attempt: failures, retryInMs: delay, error });
        await this.sleep(delay);
      }
    }
    this.backoff.reset();
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const s = { timer: setTimeout(() => { this.sleepers.delete(s); resolve(); }, ms), wake: resolve };
      this.sleepers.add(s);
    });
  }
}
