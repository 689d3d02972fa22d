/**
 * A one-line progress bar on stderr for create/destroy/apply, fed by the daemon's event stream. It appears only
 * on a TTY, only without --json, and only once the action has taken longer than `delayMs` (a fast create should
 * print its result, not flash a bar).
 */
export class ProgressBar {
  private timer: NodeJS.Timeout | undefined;
  private shown = false;
  private label = '';
  private fraction = 0;

  constructor(private readonly out: NodeJS.WriteStream = process.stderr, private readonly enabled = out.isTTY === true, delayMs = 1000) {
    if (this.enabled) this.timer = setTimeout(() => { this.shown = true; this.draw(); }, delayMs);
  }

  update(label: string, fraction?: number): void {
    this.label = label;
    if (fraction !== undefined) this.fraction = Math.max(0, Math.min(1, fraction));
    if (this.shown) this.draw();
  }

  done(): void {
    if (this.timer) clearTimeout(this.timer);
    if (this.shown) this.out.write('\r\x1b[2K');
    this.shown = false;
  }

  private draw(): void {
    const width = 30;
    const full = Math.round(this.fraction * width);
    const cols = this.out.columns ?? 80;
    const line = `[${'#'.repeat(full)}${'-'.repeat(width - full)}] ${String(Math.round(this.fraction * 100)).padStart(3)}% ${this.label}`;
    this.out.write(`\r\x1b[2K${line.slice(0, cols - 1)}`);
  }
}
