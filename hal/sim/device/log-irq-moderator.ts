/**
 * Moderation of the simulated GSP's log interrupt: the first log line after a quiet spell arms ONE timer, and what
 * every gfid writes until it fires goes out as one interrupt naming them all (sorted). Ours — interrupt moderation
 * as a NIC or GPU holds an interrupt off to batch events; no public source gives GSP-RM's own policy.
 *
 * Why not one interrupt per turn of the GSP thread (as it was): a create writes log lines in four of its firmware
 * calls, and each interrupt cost the host a message, a socket write and a read in the middle of the create
 * (issue 15 item 4). The host's drainer coalesces for its maxDelayMs (≥ 10 ms, 250 ms by default) anyway, so the
 * hold-off delays nothing it would notice. Idle, no timer runs.
 */

/**
 * How long the first line waits for others: far below the drainer's maxDelayMs, well above one create (~1 ms), so a
 * create's lines are one interrupt, raised after the create has answered.
 */
export const LOG_IRQ_HOLDOFF_MS = 5;

export class LogIrqModerator {
  private readonly wrote = new Set<number>();
  private timer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    /** Raise the interrupt naming these gfids (ascending, never empty). */
    private readonly raise: (gfids: number[]) => void,
    private readonly holdoffMs = LOG_IRQ_HOLDOFF_MS,
  ) {}

  /** A plugin task of `gfid` appended log text. */
  written(gfid: number): void {
    this.wrote.add(gfid);
    this.timer ??= setTimeout(() => this.flush(), this.holdoffMs);
  }

  /** True while an interrupt is held off (tests). */
  get pending(): boolean {
    return this.timer !== null;
  }

  private flush(): void {
    this.timer = null;
    const gfids = [...this.wrote].sort((a, b) => a - b);
    this.wrote.clear();
    if (gfids.length > 0) this.raise(gfids);
  }
}
