/** The chip-neutral vGPU manager: GPU probe, per-GPU manager, type policy, FB placement, per-VF admin ABI. */
export * from './gpu-probe.js';
export * from './pgpu-manager.js';
export * from './pgpu-init-error.js';
export * from './type-policy.js';
export * from './fb-placement.js';
export * from './fb-size.js';
export * from './heap-room.js';
export * from './vf-type-abi.js';
export * from './vf-abi-error.js';
export * from './region-budget.js';
