/**
 * A Logger that keeps every line in memory: for unit tests (assert that something was logged, with which
 * bindings) and for the mock HAL. Children share the parent's line array and add their bindings, like winston.
 */
import type { Logger, LogLevel } from '../contracts/logger.js';
import { serializeMeta } from './serialize-error.js';

export interface LogLine {
  level: LogLevel;
  message: string;
  /** Bindings of the logger chain, then the call's own meta (call meta wins on a clash). */
  meta: Record<string, unknown>;
}

const RANK: Record<LogLevel, number> = { error: 0, warn: 1, info: 2, debug: 3 };

export class MemoryLogger implements Logger {
  readonly lines: LogLine[];
  private readonly bindings: Record<string, unknown>;
  private readonly level: LogLevel;

  constructor(opts: { level?: LogLevel } = {}, shared?: { lines: LogLine[]; bindings: Record<string, unknown> }) {
    this.level = opts.level ?? 'debug';
    this.lines = shared?.lines ?? [];
    this.bindings = shared?.bindings ?? {};
  }

  error(message: string, meta?: Record<string, unknown>): void { this.record('error', message, meta); }
  warn(message: string, meta?: Record<string, unknown>): void { this.record('warn', message, meta); }
  info(message: string, meta?: Record<string, unknown>): void { this.record('info', message, meta); }
  debug(message: string, meta?: Record<string, unknown>): void { this.record('debug', message, meta); }

  child(bindings: Record<string, unknown>): MemoryLogger {
    return new MemoryLogger({ level: this.level }, { lines: this.lines, bindings: { ...this.bindings, ...bindings } });
  }

  /** Lines at `level` (all lines when omitted). */
  at(level?: LogLevel): LogLine[] {
    return level === undefined ? [...this.lines] : this.lines.filter((l) => l.level === level);
  }

  /** Lines whose message contains `text`. */
  find(text: string): LogLine[] {
    return this.lines.filter((l) => l.message.includes(text));
  }

  /** Empty the shared line array (parent and children alike). */
  clear(): void {
    this.lines.length = 0;
  }

  private record(level: LogLevel, message: string, meta?: Record<string, unknown>): void {
    if (RANK[level] > RANK[this.level]) return;
    this.lines.push({ level, message, meta: { ...this.bindings, ...serializeMeta(meta) } });
  }
}
