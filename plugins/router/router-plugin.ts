/**
 * Plugin 'vgpu-router': binds TOKENS.VgpuManager — the one VgpuService the faces (API, metrics, sysfs presenter,
 * node agent) use — to the router (core/router/vgpu-router.ts) over every backend bound to TOKENS.VgpuBackend
 * (capability 'vgpu-backend': the lifecycle's userspace manager, the Linux sysfs backend). It starts after every
 * backend (they are its optional dependencies), so at its start all GPUs are known; that is when the requests a
 * crash interrupted are finished or rolled back, before any face takes a new one.
 */
import { ContainerModule } from 'inversify';
import type { VgpudConfig } from '../../core/config/config-schema.js';
import type { Logger } from '../../core/contracts/logger.js';
import type { VgpudPlugin } from '../../core/contracts/plugin.js';
import type { RequestService } from '../../core/contracts/requests.js';
import type { VgpuBackend } from '../../core/contracts/vgpu-backend.js';
import { VgpuRouter } from '../../core/router/vgpu-router.js';
import { TOKENS } from '../../core/tokens.js';

export const ROUTER_PLUGIN_NAME = 'vgpu-router';

export function createRouterPlugin(): VgpudPlugin {
  return {
    manifest: {
      name: ROUTER_PLUGIN_NAME, version: '0.1.0',
      description: 'one vGPU service over every backend (userspace manager, Linux sysfs): owns the GPU → backend map',
      provides: ['vgpu-service'], requires: ['config', 'logger'], optional: ['vgpu-backend'],
    },
    module: new ContainerModule(({ bind }) => {
      bind(TOKENS.VgpuManager).toDynamicValue((ctx) => {
        const config = ctx.get<Readonly<VgpudConfig>>(TOKENS.Config);
        const backends = ctx.getAll<VgpuBackend>(TOKENS.VgpuBackend, { optional: true });
        const log = ctx.get<Logger>(TOKENS.Logger).child({ component: ROUTER_PLUGIN_NAME });
        return new VgpuRouter(backends, config.gpus.map((g) => ({ ...(g.bdf !== undefined ? { bdf: g.bdf } : {}), ...(g.backend !== undefined ? { backend: g.backend } : {}) })), log);
      }).inSingletonScope();
    }),
    async start(ctx) {
      const router = ctx.container.get<VgpuRouter>(TOKENS.VgpuManager);
      const map = router.assignments();
      ctx.logger.info('vGPU backends', {
        backends: router.backendNames(), gpus: Object.fromEntries([...map].map(([bdf, b]) => [bdf, b.backend])),
      });
      // Requests a crash interrupted are finished or rolled back now: after every backend reconciled its journal
      // (their vGPUs are adopted with their request id), before any face (API, node agent) takes new requests.
      if (ctx.container.isBound(TOKENS.Requests)) await ctx.container.get<RequestService>(TOKENS.Requests).recover();
    },
  };
}

export default createRouterPlugin();
