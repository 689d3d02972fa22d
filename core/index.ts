/** Public surface of the core: contracts, tokens and the services plugins and HALs build on. */
export * from './contracts/exceptions.js';
export * from './contracts/events.js';
export type * from './contracts/firmware.js';
export type * from './contracts/memory.js';
export type * from './contracts/channels.js';
export type * from './contracts/hal.js';
export type * from './contracts/plugin.js';
export type * from './contracts/logger.js';
export type * from './contracts/vgpu-service.js';
export type * from './contracts/scrubber.js';
export type * from './contracts/vgpu-log-store.js';
export { TOKENS } from './tokens.js';
// Foundation: runtime services of the core.
export { EventBusImpl } from './event-bus.js';
export { ExceptionRelayImpl, ownerId } from './exception-relay.js';
export { createLogger, type CreateLoggerOptions, type RootLogger } from './logging/create-logger.js';
export { MemoryLogger, type LogLine } from './logging/memory-logger.js';
export { configSchema, ALL_PLUGINS, type VgpudConfig, type VgpudConfigInput } from './config/config-schema.js';
export { loadConfig, parseConfig } from './config/load-config.js';
export { PluginHost, type PluginHostOptions } from './plugin-host.js';
export { resolvePluginOrder, CORE_CAPABILITIES, MULTI_CAPABILITIES } from './plugin-order.js';
export { validatePlugin, pluginManifestSchema } from './plugin-manifest.js';
export { createContainer, type CreateContainerOptions, type CreatedContainer } from './container.js';
export { createCoreModule, type CoreModuleOptions } from './core-module.js';
export { HalRegistryImpl, type HalRegistry } from './hal-registry.js';
export { monotonicClock, type Clock } from './clock.js';
export { withTimeout } from './with-timeout.js';
export { GpuRegistryImpl, type GpuRegistry } from './gpu-registry.js';
