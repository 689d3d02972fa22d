/**
 * The core's own bindings: what every plugin may inject without declaring a capability for it
 * (CORE_CAPABILITIES in plugin-order.ts).
 */
import { ContainerModule } from 'inversify';
import type { Logger } from './contracts/logger.js';
import type { VgpudConfig } from './config/config-schema.js';
import { EventBusImpl } from './event-bus.js';
import { ExceptionRelayImpl } from './exception-relay.js';
import { HalRegistryImpl } from './hal-registry.js';
import { GpuRegistryImpl } from './gpu-registry.js';
import { monotonicClock, type Clock } from './clock.js';
import type { PluginHost } from './plugin-host.js';
import { RequestServiceImpl } from './requests/request-service.js';
import { TOKENS } from './tokens.js';

export interface CoreModuleOptions {
  config: Readonly<VgpudConfig>;
  logger: Logger;
  host: PluginHost;
  clock?: Clock;
}

export function createCoreModule(opts: CoreModuleOptions): ContainerModule {
  return new ContainerModule(({ bind }) => {
    bind(TOKENS.Logger).toConstantValue(opts.logger);
    bind(TOKENS.Config).toConstantValue(opts.config);
    bind(TOKENS.Clock).toConstantValue(opts.clock ?? monotonicClock);
    bind(TOKENS.PluginHost).toConstantValue(opts.host);
    bind(TOKENS.EventBus).to(EventBusImpl).inSingletonScope();
    bind(TOKENS.ExceptionRelay).to(ExceptionRelayImpl).inSingletonScope();
    bind(TOKENS.HalRegistry).to(HalRegistryImpl).inSingletonScope();
    bind(TOKENS.GpuRegistry).to(GpuRegistryImpl).inSingletonScope();
    // Needs TOKENS.VgpuManager (the lifecycle plugin): resolve it only in start hooks or later.
    bind(TOKENS.Requests).to(RequestServiceImpl).inSingletonScope();
  });
}
