/** Public surface of the logging plugin. */
export { createLoggingPlugin, LOGGING_PLUGIN_NAME, LOG_DRAINER } from './logging-plugin.js';
export { VgpuLogStoreImpl, type VgpuLogStore, type VgpuLogLine } from './vgpu-log-store.js';
export { FirmwareLogDrainer } from './firmware-log-drainer.js';
export { LogAreaReader } from './log-area-reader.js';
export { RotatingLogFile } from './rotating-log-file.js';
export { parseLoggingConfig, loggingConfigSchema, type LoggingSettings } from './logging-config.js';
