/**
 * Plugin 'sysfs-fuse': presents the GPUs vgpud drives itself as a sysfs tree through FUSE (sysfs-tree.ts), at
 * `plugins.sysfs-fuse.mount` (or `vgpud --sysfs-mount DIR`). It speaks the FUSE protocol itself (fuse-session.ts)
 * and mounts with util-linux mount (fuse-mount.ts): no libfuse, nothing native — see docs/reference/fuse-protocol.md
 * for why. Without a mount point it does nothing. Stop unmounts; a mount a killed daemon left behind is replaced at
 * the next start.
 */
import { z } from 'zod';
import { ErrorCode, VgpuError } from '../../core/contracts/exceptions.js';
import type { VgpudPlugin } from '../../core/contracts/plugin.js';
import type { VgpuService } from '../../core/contracts/vgpu-service.js';
import { TOKENS } from '../../core/tokens.js';
import { describeIssues } from '../../core/validation/describe-issues.js';
import { mountFuse, unmountFuse, type FuseMount } from './fuse-mount.js';
import { FuseSession } from './fuse-session.js';
import { SysfsTree } from './sysfs-tree.js';

export const SYSFS_FUSE_PLUGIN_NAME = 'sysfs-fuse';

const configSchema = z.strictObject({
  /** Where to mount the tree (an existing directory); absent = do not present it. */
  mount: z.string().min(1).optional(),
}).prefault({});

export function createSysfsFusePlugin(): VgpudPlugin {
  let mount: FuseMount | undefined;
  let session: FuseSession | undefined;
  return {
    manifest: {
      name: SYSFS_FUSE_PLUGIN_NAME, version: '0.1.0',
      description: 'presents the GPUs vgpud drives as a /sys/bus/pci/devices-like tree through FUSE',
      provides: ['sysfs-presenter'], requires: ['vgpu-service'],
    },
    async start(ctx) {
      const parsed = configSchema.safeParse(ctx.config ?? {});
      if (!parsed.success) {
        throw new VgpuError(ErrorCode.Config, `plugins.${SYSFS_FUSE_PLUGIN_NAME}: ${describeIssues(parsed.error.issues, ctx.config).join('; ')}`, {
          hint: 'plugins.sysfs-fuse takes one key, mount: <directory>',
        });
      }
      if (parsed.data.mount === undefined) return;
      const service = ctx.container.get<VgpuService>(TOKENS.VgpuManager);
      mount = await mountFuse(parsed.data.mount);
      const m = mount;
      session = new FuseSession({
        fd: m.fd, tree: new SysfsTree(service), logger: ctx.logger,
        onClosed: (why) => { if (why !== 'unmounted') ctx.logger.error('the sysfs presenter stopped serving', { why, mount: m.dir }); },
      });
      session.start();
      ctx.logger.info('sysfs tree presented', { mount: m.dir, devices: `${m.dir}/bus/pci/devices` });
    },
    async stop(ctx) {
      if (mount === undefined) return;
      const m = mount;
      mount = undefined;
      const how = await unmountFuse(m);
      if (how === 'aborted') ctx.logger.warn('the sysfs mount was busy: unmounted lazily and its connection aborted (open files now fail)', { mount: m.dir });
      if (how === 'lazy') ctx.logger.warn('the sysfs mount was busy: unmounted lazily; its connection could not be aborted', { mount: m.dir });
      await session?.stop(how !== 'lazy');
      session = undefined;
      const { closeSync } = await import('node:fs');
      try { closeSync(m.fd); } catch { /* closed with the session already */ }
      ctx.logger.info('sysfs tree unmounted', { mount: m.dir });
    },
  };
}

export default createSysfsFusePlugin();
