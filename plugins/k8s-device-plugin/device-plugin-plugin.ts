/**
 * Plugin 'k8s-device-plugin': vgpud as a kubelet device plugin (API v1beta1). Each vGPU type present on the node is
 * an extended resource (`<resourcePrefix>/<type name>`, e.g. nvidia.com/NVIDIA_RTX6000-Ada-24Q) whose devices are the
 * vGPUs of that type; Allocate hands KubeVirt the VF addresses (PCI_RESOURCE_*) and, where the vfio-user face serves a
 * vGPU, its socket. Settings: `plugins.k8s.devicePlugin` (device-plugin-config.ts); docs/kubernetes.md.
 *
 * It talks to the rest of the daemon only through the VgpuService and the bus: a re-layout by the node agent
 * ('layout:begin'/'layout:end') takes its devices out of service, and every Allocate is announced
 * ('device:allocated') so the holder cache knows to look again.
 */
import type { VgpudConfig } from '../../core/config/config-schema.js';
import type { EventBus } from '../../core/contracts/events.js';
import type { PluginContext, VgpudPlugin } from '../../core/contracts/plugin.js';
import type { VgpuService } from '../../core/contracts/vgpu-service.js';
import { TOKENS } from '../../core/tokens.js';
import { parseConfigSection } from '../../core/validation/parse-section.js';
import { DeviceInventory } from './device-inventory.js';
import { devicePluginConfigSchema } from './device-plugin-config.js';
// Type-only: the manager (and gRPC with it, ~11 MiB resident) is loaded when the device plugin starts, so a daemon
// with no Kubernetes configuration never carries it (bench:scale's idle RSS).
import type { DevicePluginManager, ResourceStatus } from './device-plugin-manager.js';

export interface DevicePluginHandle {
  /** The resources served now (undefined before start or when disabled). */
  status(): ResourceStatus[] | undefined;
  /** Resolves once every change seen so far has reached the servers. */
  settled(): Promise<void>;
}

export function createDevicePluginPlugin(): VgpudPlugin & { handle: DevicePluginHandle } {
  let manager: DevicePluginManager | undefined;
  return {
    manifest: {
      name: 'k8s-device-plugin', version: '0.1.0', description: 'kubelet device plugin: one extended resource per vGPU type',
      provides: ['k8s-device-plugin'], requires: ['vgpu-service', 'events', 'config'],
    },
    handle: {
      status: () => manager?.status(),
      settled: async () => { await manager?.settled(); },
    },
    async start(ctx: PluginContext) {
      const config = ctx.container.get<Readonly<VgpudConfig>>(TOKENS.Config);
      const k8s = (config.plugins as Record<string, unknown>)['k8s'] as { devicePlugin?: unknown } | undefined;
      // Like the 'k8s' plugin: nothing Kubernetes-related runs on a host whose config has no plugins.k8s section
      // (docs/kubernetes.md, docs/operations.md).
      if (k8s === undefined) return;
      const cfg = parseConfigSection(devicePluginConfigSchema, k8s?.devicePlugin, 'plugins.k8s.devicePlugin');
      if (!cfg.enabled) {
        ctx.logger.info('device plugin disabled (plugins.k8s.devicePlugin.enabled: false)');
        return;
      }
      const service = ctx.container.get<VgpuService>(TOKENS.VgpuManager);
      const bus = ctx.container.get<EventBus>(TOKENS.EventBus);
      const { DevicePluginManager: Manager } = await import('./device-plugin-manager.js');
      manager = new Manager(cfg, new DeviceInventory(service, cfg.resourcePrefix, ctx.logger), bus, ctx.logger);
      await manager.start();
      ctx.logger.info('device plugin started', { dir: cfg.devicePluginDir, resources: manager.status().map((s) => s.resource) });
    },
    async stop() {
      await manager?.stop();
      manager = undefined;
    },
  };
}
