/**
 * One append-only log file with size-based rotation: `name` → `name.1` → … → `name.<maxFiles>` (the oldest is
 * dropped). Writes are synchronous: a drain writes a few lines every poll, keeping them in order across rotations
 * without a queue; a write error is reported to the caller, never thrown into the event loop.
 *
 * Logs are tenant data: the file is created 0600 (an older, looser one is tightened), opened without following a
 * link and checked to be a regular file of ours (core/fs/own-file.ts), so a link planted under its name is never
 * appended to. The descriptor stays open between writes, so the file checked is the file written.
 */
import { closeSync, existsSync, fstatSync, renameSync, rmSync, writeSync } from 'node:fs';
import { openOwnForAppend } from '../../core/fs/own-file.js';

export class RotatingLogFile {
  private fd: number | null = null;
  private size = 0;

  /** The directory must exist and be private already (the logging plugin prepares it at start). */
  constructor(readonly path: string, private readonly maxBytes: number, private readonly maxFiles: number) {}

  append(lines: readonly string[]): void {
    if (lines.length === 0) return;
    this.open();
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

  /** Release the descriptor (the vGPU is gone; the file stays for the retention to judge). */
  close(): void {
    if (this.fd === null) return;
    closeSync(this.fd);
    this.fd = null;
  }

  private open(): number {
    if (this.fd === null) {
      this.fd = openOwnForAppend(this.path);
      this.size = fstatSync(this.fd).size;
    }
    return this.fd;
  }

  private write(s: string): void {
    if (s.length === 0) return;
    const buf = Buffer.from(s);
    const fd = this.open();
    for (let off = 0; off < buf.length;) off += writeSync(fd, buf, off);
    this.size += buf.length;
  }

  private rotate(): void {
    this.close();
    // rename and rm act on a directory entry itself: a planted link among the rotated names is moved or removed,
    // never followed.
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
