/**
 * The plugins `vgpud` wires, in preferred order (dependencies decide the rest). ONE place to add a plugin.
 */
import type { VgpudPlugin } from '../core/contracts/plugin.js';
import { createAdaHalPlugin } from '../hal/ada-lovelace/ada-hal-plugin.js';
import { createApiPlugin } from '../plugins/api/api-plugin.js';
import { createK8sPlugin } from '../plugins/k8s/k8s-plugin.js';
import { createDevicePluginPlugin } from '../plugins/k8s-device-plugin/device-plugin-plugin.js';
import { createLifecyclePlugin } from '../plugins/lifecycle/lifecycle-plugin.js';
import { createSysfsPlugin } from '../plugins/linux-sysfs/sysfs-plugin.js';
import { createLoggingPlugin } from '../plugins/logging/logging-plugin.js';
import { createMetricsPlugin } from '../plugins/metrics/metrics-plugin.js';
import { createMigrationPlugin } from '../plugins/migration/migration-plugin.js';
import { createRouterPlugin } from '../plugins/router/router-plugin.js';
import { createScrubPlugin } from '../plugins/scrub/scrub-plugin.js';
import { createStatePlugin } from '../plugins/state/state-plugin.js';
import { createSysfsFusePlugin } from '../plugins/sysfs-fuse/sysfs-fuse-plugin.js';
import { createVfioUserPlugin } from '../plugins/vfio-user/vfio-user-plugin.js';

export function builtinPlugins(): VgpudPlugin[] {
  return [
    createAdaHalPlugin(),
    createStatePlugin(),
    createScrubPlugin(),
    createLoggingPlugin(),
    createLifecyclePlugin(),
    createSysfsPlugin(),
    createRouterPlugin(),
    createApiPlugin(),
    createMetricsPlugin(),
    createMigrationPlugin(),
    createVfioUserPlugin(),
    createSysfsFusePlugin(),
    // Inert unless the config has a plugins.k8s section (docs/kubernetes.md).
    createK8sPlugin(),
    createDevicePluginPlugin(),
  ];
}
