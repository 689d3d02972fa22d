/** Public surface of the lifecycle plugin. */
export { createLifecyclePlugin, LIFECYCLE_PLUGIN_NAME, type LifecyclePluginOptions } from './lifecycle-plugin.js';
export { VgpuServiceImpl, type ServiceInitOptions } from './vgpu-service-impl.js';
export { LifecycleDeviceAccess, type LifecycleLookup } from './lifecycle-device-access.js';
export { GpuLifecycle, type GpuLifecycleOptions, type GpuLifecycleState } from './gpu-lifecycle.js';
export { HostRpcChannel, type HostRpcChannelOptions, type RpcCallOptions } from './host-rpc-channel.js';
export { CREATE_STEPS, STEP_UNITS, chidsPerVgpu, prevPow2, type CreateStep, type LifecycleTimeouts, type UndoMode } from './create-steps.js';
export { VgpuRecord } from './vgpu-record.js';
export { canTransition } from './vgpu-state.js';
export { KeyedQueue } from './vf-queue.js';
export { pollUntil } from './poll-until.js';
export { resolveType, typeDisplay } from './type-catalog.js';
export { parseLifecycleConfig, lifecycleConfigSchema, type LifecycleConfig } from './lifecycle-config.js';
