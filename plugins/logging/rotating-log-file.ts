/**
 * One append-only log file with size-based rotation: `name` → `name.1` → … → `name.<maxFiles>` (the oldest is
 * dropped). Writes are synchronous: a drain writes a few lines every poll, keeping them in order across rotations
 * without a queue; a write error is reported to the caller, never thrown into the event loop.
 */
import { appendFileSync, existsSync, mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname } from 'node:path';

export class RotatingLogFile {
  private size: number;

  constructor(readonly path: string, private readonly maxBytes: number, private readonly maxFiles: number) {
    mkdirSync(dirname(path), { recursive: true });
    this.size = existsSync(path) ? statSync(path).size : 0;
  }

  append(lines: readonly string[]): void {
    if (lines.length === 0) return;
    let chunk = '';
    for (const l of lines) {
      const add = `${l}\n`;
      const bytes = Buffer.byteLength(chunk) + Buffer.byteLength(add);
      if (this.size + bytes > this.maxBytes && this.size + Buffer.byteLength(chunk) > 0) {
        this.write(chunk);
        chunk = '';
        this.rotate();
      }
      chunk += add;
    }
    this.write(chunk);
  }

  private write(s: string): void {
    if (s.length === 0) return;
    appendFileSync(this.path, s);
    this.size += Buffer.byteLength(s);
  }

  private rotate(): void {
    if (this.maxFiles === 0) {
      rmSync(this.path, { force: true });
    } else {
      rmSync(`${this.path}.${this.maxFiles}`, { force: true });
      for (let i = this.maxFiles - 1; i >= 1; i--) {
        if (existsSync(`${this.path}.${i}`)) renameSync(`${this.path}.${i}`, `${this.path}.${i + 1}`);
      }
      if (existsSync(this.path)) renameSync(this.path, `${this.path}.1`);
    }
    this.size = 0;
  }
}
