/**
 * A started container for unit tests: core bindings, the given plugins, a MemoryLogger to assert on, and a
 * `stop()` for `after`/`t.after`. It loads no HAL by itself: pass the mock HAL plugin (hal/mock) in `plugins`
 * when a test needs one.
 */
import 'reflect-metadata';
import type { Container } from 'inversify';
import type { VgpudPlugin } from '../../core/contracts/plugin.js';
import type { LogLevel } from '../../core/contracts/logger.js';
import { createContainer } from '../../core/container.js';
import type { VgpudConfig } from '../../core/config/config-schema.js';
import type { Clock } from '../../core/clock.js';
import type { PluginHost } from '../../core/plugin-host.js';
import { MemoryLogger } from '../../core/logging/memory-logger.js';

export interface TestContainerOptions {
  plugins?: VgpudPlugin[];
  /** Raw config object (defaults applied); `plugins.enabled` defaults to every given plugin. */
  config?: Record<string, unknown>;
  overrides?: (container: Container) => void | Promise<void>;
  clock?: Clock;
  logLevel?: LogLevel;
  /** Set false to get a loaded but not started container (to test start itself). */
  start?: boolean;
  stopTimeoutMs?: number;
  startTimeoutMs?: number;
}

export interface TestContainer {
  container: Container;
  host: PluginHost;
  logger: MemoryLogger;
  config: Readonly<VgpudConfig>;
  /** Stop the plugins (reverse order); safe to call twice. */
  stop(): Promise<{ failed: string[] }>;
}

export async function createTestContainer(opts: TestContainerOptions = {}): Promise<TestContainer> {
  const logger = new MemoryLogger({ level: opts.logLevel ?? 'debug' });
  const created = await createContainer({
    config: opts.config ?? {},
    logger,
    plugins: opts.plugins ?? [],
    ...(opts.clock !== undefined ? { clock: opts.clock } : {}),
    ...(opts.overrides !== undefined ? { overrides: opts.overrides } : {}),
    ...(opts.stopTimeoutMs !== undefined ? { stopTimeoutMs: opts.stopTimeoutMs } : {}),
    ...(opts.startTimeoutMs !== undefined ? { startTimeoutMs: opts.startTimeoutMs } : {}),
  });
  if (opts.start !== false) await created.host.start();
  return {
    container: created.container, host: created.host, logger, config: created.config,
    stop: () => created.host.stop(),
  };
}

/** A plugin for tests: records its start/stop into `journal` and can be told to fail. */
export function fakePlugin(name: string, opts: {
  provides?: string[]; requires?: string[]; optional?: string[]; journal?: string[];
  failStart?: Error; failStop?: Error; hangStop?: boolean;
} = {}): VgpudPlugin {
  const journal = opts.journal;
  return {
    manifest: {
      name, version: '1.0.0', provides: opts.provides ?? [name], requires: opts.requires ?? [],
      ...(opts.optional !== undefined ? { optional: opts.optional } : {}),
    },
    start() {
      journal?.push(`start:${name}`);
      if (opts.failStart) throw opts.failStart;
    },
    async stop() {
      journal?.push(`stop:${name}`);
      if (opts.failStop) throw opts.failStop;
      if (opts.hangStop) await new Promise<never>(() => {});
    },
  };
}
