/**
 * Logger contract: a small interface over winston so that components depend on "a logger", tests can capture
 * lines, and the backend could change without touching callers.
 *
 * Metadata keys belong to one level each (winston#2029: precedence between default, child and call metadata is
 * inconsistent): the root owns `service`, a component child owns `component`, device children own `gpu`/`vgpu`.
 */
export type LogLevel = 'error' | 'warn' | 'info' | 'debug';

export interface Logger {
  error(message: string, meta?: Record<string, unknown>): void;
  warn(message: string, meta?: Record<string, unknown>): void;
  info(message: string, meta?: Record<string, unknown>): void;
  debug(message: string, meta?: Record<string, unknown>): void;
  /** A logger whose lines carry `bindings` too (`{component}`, `{gpu}`, `{gpu, vgpu}`). */
  child(bindings: Record<string, unknown>): Logger;
}
