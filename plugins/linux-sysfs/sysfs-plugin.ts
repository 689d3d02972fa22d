/**
 * Plugin 'linux-sysfs': the Linux sysfs backend (sysfs-vgpu-service.ts) bound as a VgpuBackend (capability
 * 'vgpu-backend'), for hosts where NVIDIA's kernel driver owns the GPUs. It discovers the NVIDIA PFs bound to
 * `nvidia` with SR-IOV under `plugins.linux-sysfs.root` (default /sys) and settles its journal against them at start.
 * On a machine without such GPUs it finds none and costs nothing (no timers, no watches).
 */
import { resolve, sep } from 'node:path';
import { ContainerModule } from 'inversify';
import { ErrorCode, VgpuError } from '../../core/contracts/exceptions.js';
import { JournalSequenceBlock } from '../../core/alloc/journal-sequence-block.js';
import type { VgpudConfig } from '../../core/config/config-schema.js';
import type { EventBus } from '../../core/contracts/events.js';
import type { HostVfJournal } from '../../core/contracts/host-vf-journal.js';
import type { VgpudPlugin } from '../../core/contracts/plugin.js';
import type { VgpuJournal } from '../../core/contracts/vgpu-journal.js';
import { MemoryHostVfJournal } from '../../core/journal/memory-host-vf-journal.js';
import { TOKENS } from '../../core/tokens.js';
import { parseSysfsConfig } from './sysfs-config.js';
import type { SysfsIo } from './sysfs-io.js';
import { SysfsVgpuService, SYSFS_BACKEND } from './sysfs-vgpu-service.js';

export interface SysfsPluginOptions {
  /** Replace the sysfs I/O (tests play the kernel's refusals with it). */
  io?: SysfsIo;
}

export function createSysfsPlugin(opts: SysfsPluginOptions = {}): VgpudPlugin {
  let service: SysfsVgpuService | undefined;
  return {
    manifest: {
      name: SYSFS_BACKEND, version: '0.1.0',
      description: 'vGPUs on hosts where NVIDIA\'s kernel driver owns the GPU: the per-VF sysfs type ABI and sriov_numvfs',
      provides: ['vgpu-backend'], requires: ['config', 'logger', 'events'], optional: ['state'],
    },
    module: new ContainerModule(({ bind }) => {
      bind(TOKENS.VgpuBackend).toDynamicValue(() => {
        if (service === undefined) throw new Error('the linux-sysfs plugin has not started yet');
        return service;
      }).inSingletonScope();
    }),
    async start(ctx) {
      const c = ctx.container;
      const config = c.get<Readonly<VgpudConfig>>(TOKENS.Config);
      const vgpuJournal = c.isBound(TOKENS.VgpuJournal) ? c.get<VgpuJournal>(TOKENS.VgpuJournal) : undefined;
      const journal = c.isBound(TOKENS.HostVfJournal) ? c.get<HostVfJournal>(TOKENS.HostVfJournal) : new MemoryHostVfJournal();
      // Ids come from the daemon's one never-repeating sequence, shared with the userspace manager.
      const ids = vgpuJournal !== undefined ? await JournalSequenceBlock.create(vgpuJournal, 'vgpu-id', 16) : undefined;
      let next = 1;
      const sysfsConfig = parseSysfsConfig(ctx.config);
      refuseOwnMount(sysfsConfig.root, config);
      service = new SysfsVgpuService({
        config: sysfsConfig, logger: ctx.logger, journal, bus: c.get<EventBus>(TOKENS.EventBus),
        newId: async () => `vgpu-${ids !== undefined ? await ids.takeAsync() : next++}`,
        policy: (bdf) => (config.gpus.find((g) => g.bdf?.toLowerCase() === bdf) ?? config.gpus.find((g) => g.bdf === undefined))?.policy ?? 'homogeneous',
        ...(opts.io !== undefined ? { io: opts.io } : {}),
      });
      await service.init();
    },
  };
}

/**
 * The backend reads sysfs synchronously (as the contract's queries are); a root served by this same process's FUSE
 * presenter would wait for an answer only this process can give. Refuse that up front.
 */
function refuseOwnMount(root: string, config: Readonly<VgpudConfig>): void {
  const section = (config.plugins as Record<string, unknown>)['sysfs-fuse'] as { mount?: unknown } | undefined;
  if (typeof section?.mount !== 'string') return;
  const mount = resolve(section.mount);
  const r = resolve(root);
  if (r === mount || r.startsWith(`${mount}${sep}`)) {
    throw new VgpuError(ErrorCode.Config, `plugins.linux-sysfs.root ${r} is inside this daemon's own sysfs mount ${mount}`, {
      hint: 'point the sysfs backend of a SECOND vgpud at the mount (docs/real-hosts.md), or leave the root at /sys',
      details: { root: r, mount },
    });
  }
}

export default createSysfsPlugin();
