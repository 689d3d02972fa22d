/**
 * Plugin 'vfio-user': every vGPU served as a vfio-user PCI device (docs/vfio-user.md) from a per-GPU device front
 * that outlives the daemon. Binds VgpuReleaser (a forced destroy disconnects the VMM first) and VgpuAttachments
 * (sockets, attached VMMs, traffic counters for the metrics). Stop leaves the fronts — and their VMMs — running.
 *
 * Reaches vGPUs only through core contracts: VgpuService, VgpuDeviceAccess, GpuRegistry, MigrationPort (if the
 * migration plugin is loaded) and the bus.
 */
import { ContainerModule } from 'inversify';
import type { VgpudConfig } from '../../core/config/config-schema.js';
import type { EventBus } from '../../core/contracts/events.js';
import type { Logger } from '../../core/contracts/logger.js';
import type { MigrationPort } from '../../core/contracts/migration-port.js';
import type { VgpudPlugin } from '../../core/contracts/plugin.js';
import type { VgpuDeviceAccess } from '../../core/contracts/vgpu-device-access.js';
import type { VgpuService } from '../../core/contracts/vgpu-service.js';
import type { GpuRegistry } from '../../core/gpu-registry.js';
import { TOKENS } from '../../core/tokens.js';
import { fdOpsAvailable } from '../../native/fd-ops.js';
import { parseVfioUserConfig } from './daemon/vfio-user-config.js';
import { VfioUserService } from './daemon/vfio-user-service.js';

export const VFIO_USER_PLUGIN_NAME = 'vfio-user';

export function createVfioUserPlugin(): VgpudPlugin {
  return {
    manifest: {
      name: VFIO_USER_PLUGIN_NAME,
      version: '0.1.0',
      description: 'vGPUs as vfio-user PCI devices for VMMs (QEMU vfio-user-pci, cloud-hypervisor), served by per-GPU device fronts',
      provides: ['vfio-user'],
      requires: ['vgpu-service', 'vgpu-device-access'],
      optional: ['migration'],
    },
    module: new ContainerModule(({ bind }) => {
      bind(VfioUserService).toSelf().inSingletonScope();
      bind(TOKENS.VgpuReleaser).toService(VfioUserService);
      bind(TOKENS.VgpuAttachments).toService(VfioUserService);
    }),
    async start(ctx) {
      const config = parseVfioUserConfig(ctx.config, ctx.container.get<Readonly<VgpudConfig>>(TOKENS.Config).api.socket);
      if (!fdOpsAvailable()) {
        // Not fatal for the daemon: vGPUs still work, they are just not offered to VMMs.
        ctx.logger.warn('vfio-user disabled: descriptor passing needs the native addon (npm run build:native)');
        return;
      }
      const c = ctx.container;
      await c.get(VfioUserService).start({
        svc: c.get<VgpuService>(TOKENS.VgpuManager),
        access: c.get<VgpuDeviceAccess>(TOKENS.VgpuDeviceAccess),
        registry: c.get<GpuRegistry>(TOKENS.GpuRegistry),
        bus: c.get<EventBus>(TOKENS.EventBus),
        migration: c.isBound(TOKENS.MigrationPort) ? c.get<MigrationPort>(TOKENS.MigrationPort) : undefined,
        logger: ctx.logger as Logger,
        config,
      });
      ctx.logger.info('vfio-user serving', { dir: config.dir, mode: config.mode.toString(8) });
    },
    async stop(ctx) {
      await ctx.container.get(VfioUserService).stop();
    },
  };
}

export default createVfioUserPlugin();
