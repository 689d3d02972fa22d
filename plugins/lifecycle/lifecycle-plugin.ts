/**
 * The lifecycle plugin: binds the vGPU manager (VgpuServiceImpl) as the 'manager' backend (TOKENS.VgpuBackend; the
 * router presents it as TOKENS.VgpuManager) and the per-vGPU device access (LifecycleDeviceAccess) to
 * TOKENS.VgpuDeviceAccess, probes the GPUs and brings up their managers at start. Stop leaves the vGPUs as they
 * are: a daemon restart must not destroy running VMs' GPUs. `detachAll()` on the service is the daemon's explicit
 * "let go of everything" call.
 */
import { ContainerModule } from 'inversify';
import type { VgpudPlugin } from '../../core/contracts/plugin.js';
import { TOKENS } from '../../core/tokens.js';
import { parseLifecycleConfig } from './lifecycle-config.js';
import { LifecycleDeviceAccess } from './lifecycle-device-access.js';
import { VgpuServiceImpl, type ServiceInitOptions } from './vgpu-service-impl.js';

export const LIFECYCLE_PLUGIN_NAME = 'lifecycle';

export interface LifecyclePluginOptions {
  /** Extra init options (tests: metadata reader, manager overrides). Merged over `plugins.lifecycle`. */
  init?: ServiceInitOptions;
}

export function createLifecyclePlugin(opts: LifecyclePluginOptions = {}): VgpudPlugin {
  return {
    manifest: {
      name: LIFECYCLE_PLUGIN_NAME,
      version: '0.1.0',
      description: 'vGPU lifecycle: create/destroy in the upstream order with exact unwinding, host events, exceptions',
      provides: ['vgpu-backend', 'vgpu-device-access', 'lifecycle'],
      requires: ['hal', 'pci-bus'],
      optional: ['scrub', 'logging', 'state'],
    },
    module: new ContainerModule(({ bind }) => {
      bind(VgpuServiceImpl).toSelf().inSingletonScope();
      bind(TOKENS.VgpuBackend).toService(VgpuServiceImpl);
      bind(TOKENS.VgpuDeviceAccess).to(LifecycleDeviceAccess).inSingletonScope();
    }),
    async start(ctx) {
      const config = parseLifecycleConfig(ctx.config);
      const service = ctx.container.get(VgpuServiceImpl);
      await service.init({ ...config, ...opts.init });
      const gpus = service.gpus();
      ctx.logger.info('lifecycle ready', { gpus: gpus.map((g) => g.bdf), failed: service.probeFailures.map((f) => f.device.bdf) });
      // Interrupted requests are recovered by the router plugin once every backend has started.
    },
    stop(ctx) {
      // Leave vGPUs running; only stop listening to their GPUs.
      ctx.container.get(VgpuServiceImpl).detachAll();
    },
  };
}

export default createLifecyclePlugin();
