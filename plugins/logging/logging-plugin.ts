/**
 * Plugin 'logging': drains each vGPU's firmware log areas into the daemon log, per-vGPU rotating files and
 * 'log:line' events, and keeps the lines (TOKENS.VgpuLogStore) after the vGPU is gone until its VF is reused.
 *
 * Config (`plugins.logging`): `{ dir?, maxBytes?, maxFiles?, maxDelayMs?, keepLines?, keepDestroyed?, keepDestroyedHours? }`
 * (logging-config.ts).
 * Needs only the core (event bus, GPU registry, config); the daemon runs the same without it.
 */
import { ContainerModule } from 'inversify';
import type { VgpudConfig } from '../../core/config/config-schema.js';
import type { EventBus } from '../../core/contracts/events.js';
import type { Logger } from '../../core/contracts/logger.js';
import type { PluginContext, VgpudPlugin } from '../../core/contracts/plugin.js';
import type { GpuRegistry } from '../../core/gpu-registry.js';
import { isVgpuError } from '../../core/contracts/exceptions.js';
import { ensurePrivateDir } from '../../core/fs/private-dir.js';
import { TOKENS } from '../../core/tokens.js';
import { FirmwareLogDrainer } from './firmware-log-drainer.js';
import { parseLoggingConfig, type LoggingSettings } from './logging-config.js';
import { VgpuLogStoreImpl } from './vgpu-log-store.js';

export const LOGGING_PLUGIN_NAME = 'logging';
/** The drainer, for tests that want to drain without waiting for the poll. */
export const LOG_DRAINER = Symbol.for('vgpud.logging.FirmwareLogDrainer');

function settingsOf(config: Readonly<VgpudConfig>): LoggingSettings {
  return parseLoggingConfig((config.plugins as Record<string, unknown>)[LOGGING_PLUGIN_NAME], config.api.stateDir);
}

export function createLoggingPlugin(): VgpudPlugin {
  return {
    manifest: {
      name: LOGGING_PLUGIN_NAME,
      version: '0.1.0',
      description: 'per-vGPU firmware logs: daemon log, rotating files, log:line events, kept after destroy',
      provides: ['logging'],
      requires: ['events', 'config', 'gpu-registry'],
    },
    module: new ContainerModule(({ bind }) => {
      bind(TOKENS.VgpuLogStore).toDynamicValue((ctx) => new VgpuLogStoreImpl(settingsOf(ctx.get(TOKENS.Config)).keepLines)).inSingletonScope();
      bind(LOG_DRAINER).toDynamicValue((ctx) => {
        const config = ctx.get<Readonly<VgpudConfig>>(TOKENS.Config);
        return new FirmwareLogDrainer(
          ctx.get<EventBus>(TOKENS.EventBus),
          ctx.get<GpuRegistry>(TOKENS.GpuRegistry),
          ctx.get<Logger>(TOKENS.Logger),
          ctx.get<VgpuLogStoreImpl>(TOKENS.VgpuLogStore),
          settingsOf(config),
        );
      }).inSingletonScope();
    }),
    async start(ctx: PluginContext) {
      const config = ctx.container.get<Readonly<VgpudConfig>>(TOKENS.Config);
      const s = parseLoggingConfig(ctx.config, config.api.stateDir); // a bad section fails the start, naming the key
      const drainer = ctx.container.get<FirmwareLogDrainer>(LOG_DRAINER);
      try {
        // Logs are tenant data: the dir is 0700 (an older, looser one is tightened) and must be ours, not a link.
        await ensurePrivateDir(s.dir, { what: 'vGPU log dir', setting: 'plugins.logging.dir', noLink: true, tighten: true });
      } catch (error) {
        if (!isVgpuError(error) || error.details['problem'] !== 'create') throw error;
        // A dir that cannot be made (read-only filesystem): files are off, draining goes on.
        drainer.disableFiles();
        ctx.logger.warn('vGPU log files disabled: cannot create the log directory', { dir: s.dir, error: error.message });
      }
      drainer.start();
      await drainer.sweep();
      ctx.logger.debug('logging ready', { dir: s.dir, maxBytes: s.maxBytes, maxFiles: s.maxFiles, keepDestroyed: s.keepDestroyed, keepDestroyedHours: s.keepDestroyedHours });
    },
    stop(ctx: PluginContext) {
      ctx.container.get<FirmwareLogDrainer>(LOG_DRAINER).stop();
    },
  };
}
