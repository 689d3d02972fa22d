/** Public surface of the core: contracts, tokens and the services plugins and HALs build on. */
export * from './contracts/exceptions.js';
export * from './contracts/events.js';
export type * from './contracts/firmware.js';
export type * from './contracts/memory.js';
export type * from './contracts/channels.js';
export type * from './contracts/hal.js';
export type * from './contracts/plugin.js';
export type * from './contracts/logger.js';
export { TOKENS } from './tokens.js';
