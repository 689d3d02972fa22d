/**
 * Plugin 'metrics': GET /metrics (Prometheus text format) on the control API's server.
 *
 * The route is contributed at load time through TOKENS.HttpRoutes (fastify takes no routes once it listens); the
 * bus counters are attached in start, after 'http' and 'vgpu-service' are up.
 *
 * rpc latency: the histogram is fed by the 'rpc:latency' bus event; it stays empty until the GSP RPC client
 * emits that event (hal/gsp owns the emit).
 */
import { ContainerModule } from 'inversify';
import type { FastifyInstance } from 'fastify';
import type { EventBus } from '../../core/contracts/events.js';
import type { PluginContext, VgpudPlugin } from '../../core/contracts/plugin.js';
import type { VgpuHolders } from '../../core/contracts/vgpu-holders.js';
import type { VgpuService } from '../../core/contracts/vgpu-service.js';
import type { VgpuAttachments } from '../../core/contracts/vgpu-attachments.js';
import { TOKENS } from '../../core/tokens.js';
import { createVgpudMetrics, type VgpudMetrics } from './vgpud-metrics.js';

export function createMetricsPlugin(): VgpudPlugin {
  let metrics: VgpudMetrics | undefined;
  let detach: (() => void) | undefined;
  let getService: (() => VgpuService) | undefined;
  let getAttachments: (() => VgpuAttachments | undefined) | undefined;
  let getHolders: (() => VgpuHolders | undefined) | undefined;
  const ensure = (): VgpudMetrics => (metrics ??= createVgpudMetrics(() => {
    if (getService === undefined) throw new Error('metrics: service not wired');
    return getService();
  }, { attachments: () => getAttachments?.(), holders: () => getHolders?.() }));

  return {
    manifest: {
      name: 'metrics', version: '0.1.0', description: 'Prometheus /metrics on the control API server',
      provides: ['metrics'], requires: ['http', 'vgpu-service', 'events'],
    },
    module: new ContainerModule(({ bind }) => {
      bind(TOKENS.HttpRoutes).toDynamicValue((ctx) => {
        getService = () => ctx.get<VgpuService>(TOKENS.VgpuManager);
        // Optional: bound only when the vfio-user plugin runs.
        getAttachments = () => ctx.get<VgpuAttachments>(TOKENS.VgpuAttachments, { optional: true });
        getHolders = () => ctx.get<VgpuHolders>(TOKENS.VgpuHolders, { optional: true });
        return (app: FastifyInstance) => {
          app.get('/metrics', async (_req, reply) => {
            const m = ensure();
            return reply.type(m.registry.contentType).send(await m.registry.metrics());
          });
        };
      }).inSingletonScope();
    }),
    start(ctx: PluginContext) {
      getService ??= () => ctx.container.get<VgpuService>(TOKENS.VgpuManager);
      getHolders ??= () => (ctx.container.isBound(TOKENS.VgpuHolders) ? ctx.container.get<VgpuHolders>(TOKENS.VgpuHolders) : undefined);
      detach = ensure().attach(ctx.container.get<EventBus>(TOKENS.EventBus));
    },
    stop() {
      detach?.();
      detach = undefined;
    },
  };
}
