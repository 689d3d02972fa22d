/**
 * Plugin 'state': opens the write-ahead vGPU journal in `api.stateDir` and binds it to TOKENS.VgpuJournal
 * (capability 'state'), the request journal (`requests/` in the same dir) to TOKENS.RequestJournal, and the sysfs
 * backend's host VF journal (`host-vfs/`) to TOKENS.HostVfJournal. The backends list 'state' as optional, so all
 * are open before they start and reconcile them with the devices; without this plugin the daemon runs with no
 * persistence at all.
 */
import { join } from 'node:path';
import { ContainerModule } from 'inversify';
import type { VgpudConfig } from '../../core/config/config-schema.js';
import type { VgpudPlugin } from '../../core/contracts/plugin.js';
import type { VgpuJournal } from '../../core/contracts/vgpu-journal.js';
import { TOKENS } from '../../core/tokens.js';
import type { RequestJournal } from '../../core/contracts/request-journal.js';
import type { HostVfJournal } from '../../core/contracts/host-vf-journal.js';
import { FileHostVfJournal } from './file-host-vf-journal.js';
import { FileRequestJournal } from './file-request-journal.js';
import { FileVgpuJournal } from './file-vgpu-journal.js';

export const STATE_PLUGIN_NAME = 'state';

export function createStatePlugin(): VgpudPlugin {
  let journal: FileVgpuJournal | undefined;
  let requests: FileRequestJournal | undefined;
  let hostVfs: FileHostVfJournal | undefined;
  return {
    manifest: {
      name: STATE_PLUGIN_NAME, version: '0.1.0', description: 'write-ahead vGPU journal in the state dir',
      provides: ['state'], requires: ['config'],
    },
    module: new ContainerModule(({ bind }) => {
      bind<VgpuJournal>(TOKENS.VgpuJournal).toDynamicValue((ctx) => {
        journal ??= new FileVgpuJournal(ctx.get<Readonly<VgpudConfig>>(TOKENS.Config).api.stateDir);
        return journal;
      }).inSingletonScope();
      // Multi-step requests as a whole (core/contracts/request-journal.ts), in requests/ of the same dir.
      bind<RequestJournal>(TOKENS.RequestJournal).toDynamicValue((ctx) => {
        requests ??= new FileRequestJournal(join(ctx.get<Readonly<VgpudConfig>>(TOKENS.Config).api.stateDir, 'requests'));
        return requests;
      }).inSingletonScope();
      // What the sysfs backend set on a real host (core/contracts/host-vf-journal.ts), in host-vfs/ of the same dir.
      bind<HostVfJournal>(TOKENS.HostVfJournal).toDynamicValue((ctx) => {
        hostVfs ??= new FileHostVfJournal(join(ctx.get<Readonly<VgpudConfig>>(TOKENS.Config).api.stateDir, 'host-vfs'));
        return hostVfs;
      }).inSingletonScope();
    }),
    async start(ctx) {
      const j = ctx.container.get<VgpuJournal>(TOKENS.VgpuJournal) as FileVgpuJournal;
      // The plugin's logger is only known here; the journal logs torn temp files, damaged and refused files. A state
      // dir that is not the daemon's own (or others can write) fails the start here, naming the fix.
      j.setLogger(ctx.logger);
      await j.open();
      const r = ctx.container.get<RequestJournal>(TOKENS.RequestJournal) as FileRequestJournal;
      r.setLogger(ctx.logger);
      await r.open();
      const h = ctx.container.get<HostVfJournal>(TOKENS.HostVfJournal) as FileHostVfJournal;
      h.setLogger(ctx.logger);
      await h.open();
      ctx.logger.info('state journal open', {
        dir: j.dir, vgpus: j.vgpus().length, quarantined: j.quarantined().length, damaged: j.damaged().length,
        unfinishedRequests: r.list().filter((x) => x.state === 'running' || x.state === 'rolling-back').length,
      });
    },
    async stop() {
      await journal?.flush();
      await requests?.flush();
      await hostVfs?.flush();
    },
  };
}
