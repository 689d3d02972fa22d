/**
 * The daemon's root logger: winston underneath, the `Logger` contract on top, so components never touch winston.
 *
 * Metadata keys belong to one level each (winston#2029): the root owns `service`, component children own
 * `component`, device children own `gpu`/`vgpu`. Children are real winston children, so they share transports.
 */
import { Writable } from 'node:stream';
import winston from 'winston';
import type { Logger, LogLevel } from '../contracts/logger.js';
import { roundDurationsIn } from './round-durations.js';
import { serializeMeta } from './serialize-error.js';

export interface CreateLoggerOptions {
  level?: LogLevel;
  /** `json`: one JSON object per line (for journald and log shippers); `human`: aligned text for a terminal. */
  format?: 'json' | 'human';
  /** Where lines go; defaults to stdout. Tests pass a stream to capture lines. */
  stream?: Writable;
}

/** The root logger also owns the transports, so it can be flushed and closed at shutdown. */
export interface RootLogger extends Logger {
  /** Flush pending lines and close the transports. */
  close(): Promise<void>;
}

const HUMAN_KEYS_FIRST = ['component', 'gpu', 'vgpu'] as const;
const WINSTON_KEYS = new Set(['level', 'message', 'timestamp', 'service', 'stack', ...HUMAN_KEYS_FIRST]);

function humanLine(info: winston.Logform.TransformableInfo): string {
  const tags = HUMAN_KEYS_FIRST.filter((k) => info[k] !== undefined).map((k) => `${k}=${String(info[k])}`);
  const rest: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(info)) if (!WINSTON_KEYS.has(k)) rest[k] = v;
  const meta = Object.keys(rest).length > 0 ? ` ${JSON.stringify(rest)}` : '';
  const stack = typeof info.stack === 'string' ? `\n${info.stack}` : '';
  const where = tags.length > 0 ? ` [${tags.join(' ')}]` : '';
  return `${String(info.timestamp)} ${info.level.padEnd(5)}${where} ${String(info.message)}${meta}${stack}`;
}

/** Error values serialized, durations rounded (`durationMs: 2.21`, not 2.2054560000105994). */
const prepare = (meta?: Record<string, unknown>): Record<string, unknown> | undefined => {
  const m = serializeMeta(meta);
  return m === undefined ? undefined : roundDurationsIn(m);
};

/**
 * Each call first asks winston whether its level is on: below the active level nothing is prepared and nothing
 * enters winston. winston itself filters only inside its stream's transform, after the info object was built and
 * written through the stream (~5 µs a call), and a create logs a debug line per step (issue 15 item 4). The level
 * is read at each call (a child reads its root's), so a level changed at run time takes effect at once.
 */
class WinstonLogger implements Logger {
  constructor(protected readonly w: winston.Logger) {}
  error(message: string, meta?: Record<string, unknown>): void { this.write('error', message, meta); }
  warn(message: string, meta?: Record<string, unknown>): void { this.write('warn', message, meta); }
  info(message: string, meta?: Record<string, unknown>): void { this.write('info', message, meta); }
  debug(message: string, meta?: Record<string, unknown>): void { this.write('debug', message, meta); }
  child(bindings: Record<string, unknown>): Logger { return new WinstonLogger(this.w.child(bindings)); }

  private write(level: LogLevel, message: string, meta?: Record<string, unknown>): void {
    if (this.w.isLevelEnabled(level)) this.w.log(level, message, prepare(meta));
  }
}

class WinstonRootLogger extends WinstonLogger implements RootLogger {
  close(): Promise<void> {
    return new Promise((resolve) => {
      this.w.on('finish', () => resolve());
      this.w.end();
    });
  }
}

export function createLogger(opts: CreateLoggerOptions = {}): RootLogger {
  const { format } = winston;
  const output = opts.format === 'human'
    ? format.printf(humanLine)
    : format.json();
  const w = winston.createLogger({
    level: opts.level ?? 'info',
    defaultMeta: { service: 'vgpud' },
    // errors() first so an Error passed as the message keeps its stack.
    format: format.combine(format.errors({ stack: true }), format.timestamp(), output),
    transports: [new winston.transports.Stream({ stream: opts.stream ?? process.stdout })],
    // The daemon owns shutdown; a failing transport must not kill it.
    exitOnError: false,
  });
  return new WinstonRootLogger(w);
}
