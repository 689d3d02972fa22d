/** The NVIDIA firmware ABI shared by the core (sender) and the simulator (responder). Generation-neutral data. */
export * from './struct-layout.js';
export * from './rm-classes.js';
export * from './rm-controls.js';
export * from './vgpu-mailbox.js';
export { NvStatus } from './nv-status.js';
export { compareVersions } from './firmware-version.js';
