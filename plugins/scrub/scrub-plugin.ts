/**
 * Plugin 'scrub': binds TOKENS.FbScrubber to the copy-engine scrubber (docs/reference/copy-engine-scrub.md).
 *
 * Config (`plugins.scrub`): `{ verify?: boolean, timeoutMs?: number, submitMiB?: number, hostFallback?: boolean }`
 * (scrub-config.ts). It is read when the scrubber is first resolved and checked again at start, so a bad section
 * fails the daemon's start with a message naming the key.
 */
import { ContainerModule } from 'inversify';
import type { Clock } from '../../core/clock.js';
import type { VgpudConfig } from '../../core/config/config-schema.js';
import type { EventBus } from '../../core/contracts/events.js';
import type { Logger } from '../../core/contracts/logger.js';
import type { PluginContext, VgpudPlugin } from '../../core/contracts/plugin.js';
import { TOKENS } from '../../core/tokens.js';
import { CeScrubber } from './ce-scrubber.js';
import { parseScrubConfig, type ScrubSettings } from './scrub-config.js';

export const SCRUB_PLUGIN_NAME = 'scrub';

function section(config: Readonly<VgpudConfig>): unknown {
  return (config.plugins as Record<string, unknown>)[SCRUB_PLUGIN_NAME];
}

export function createScrubPlugin(): VgpudPlugin {
  return {
    manifest: {
      name: SCRUB_PLUGIN_NAME,
      version: '0.1.0',
      description: 'FB scrubbing with the copy engine (upstream procedure), with an optional verify pass',
      provides: ['scrub'],
      requires: ['hal', 'events', 'config'],
    },
    module: new ContainerModule(({ bind }) => {
      bind(TOKENS.FbScrubber).toDynamicValue((ctx) => {
        const config = ctx.get<Readonly<VgpudConfig>>(TOKENS.Config);
        let settings: ScrubSettings | undefined;
        return new CeScrubber(
          ctx.get<EventBus>(TOKENS.EventBus),
          ctx.get<Logger>(TOKENS.Logger).child({ component: 'scrub' }),
          ctx.get<Clock>(TOKENS.Clock),
          () => (settings ??= parseScrubConfig(section(config), config.timeouts.scrubMs)),
        );
      }).inSingletonScope();
    }),
    start(ctx: PluginContext) {
      const config = ctx.container.get<Readonly<VgpudConfig>>(TOKENS.Config);
      const s = parseScrubConfig(ctx.config, config.timeouts.scrubMs);
      ctx.logger.debug('scrub ready', { verify: s.verify, timeoutMs: s.timeoutMs, submitBytes: String(s.submitBytes) });
    },
  };
}
