/**
 * Builds the daemon's one inversify container: core bindings, then the plugins' modules in dependency order,
 * then test overrides. Plugins are prepared (validated and ordered) before the container exists, so a bad plugin
 * set fails before anything is bound. Starting is the caller's step: `await host.start()`.
 */
import { Container } from 'inversify';
import type { Logger } from './contracts/logger.js';
import type { VgpudPlugin } from './contracts/plugin.js';
import type { VgpudConfig } from './config/config-schema.js';
import { loadConfig } from './config/load-config.js';
import { createLogger } from './logging/create-logger.js';
import type { Clock } from './clock.js';
import { createCoreModule } from './core-module.js';
import { PluginHost } from './plugin-host.js';

export interface CreateContainerOptions {
  /** A validated config (from loadConfig), a raw config object, or a path to a YAML/JSON file. */
  config: Readonly<VgpudConfig> | Record<string, unknown> | string;
  /** Root logger; default: winston per `config.logging`. */
  logger?: Logger;
  /** Built-in plugins; out-of-tree ones come from `config.plugins.paths`. */
  plugins: readonly VgpudPlugin[];
  clock?: Clock;
  /** Directory relative plugin paths are resolved against (default: the cwd). */
  baseDir?: string;
  startTimeoutMs?: number;
  stopTimeoutMs?: number;
  /** Last word on bindings, for tests: `c => c.rebind(TOKENS.Clock).toConstantValue(fake)`. */
  overrides?: (container: Container) => void | Promise<void>;
}

export interface CreatedContainer {
  container: Container;
  host: PluginHost;
  config: Readonly<VgpudConfig>;
  logger: Logger;
}

export async function createContainer(opts: CreateContainerOptions): Promise<CreatedContainer> {
  // Objects are validated even when they came from loadConfig: parsing is idempotent and cheap, and a hand-built
  // object must not skip the defaults.
  const config = loadConfig(opts.config as string | Record<string, unknown>);
  const logger = opts.logger ?? createLogger({ level: config.logging.level, format: config.logging.format });
  const host = new PluginHost({
    plugins: opts.plugins, config, logger, ...(opts.baseDir !== undefined ? { baseDir: opts.baseDir } : {}),
    ...(opts.startTimeoutMs !== undefined ? { startTimeoutMs: opts.startTimeoutMs } : {}),
    ...(opts.stopTimeoutMs !== undefined ? { stopTimeoutMs: opts.stopTimeoutMs } : {}),
  });
  await host.prepare();
  const container = new Container({ defaultScope: 'Singleton' });
  container.load(createCoreModule({ config, logger, host, ...(opts.clock !== undefined ? { clock: opts.clock } : {}) }));
  await host.load(container);
  await opts.overrides?.(container);
  return { container, host, config, logger };
}
