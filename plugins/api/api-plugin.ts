/**
 * Plugin 'api': the control API (HTTP + JSON under /v1) on a Unix socket, mode 0660 (access is the socket's group:
 * no auth on a local socket, like docker.sock). The state journal is the 'state' plugin's (plugins/state); the
 * lifecycle writes it ahead of every step and reconciles it at start, and `/v1/status` shows that reconcile.
 *
 * Requires 'vgpu-service' (the lifecycle plugin binds TOKENS.VgpuManager and provides it). Provides 'api' and
 * 'http' (TOKENS.HttpServer). Routes from other plugins come in through TOKENS.HttpRoutes (see tokens.ts).
 */
import { chmod, unlink } from 'node:fs/promises';
import { ContainerModule } from 'inversify';
import { z } from 'zod';
import type { VgpudConfig } from '../../core/config/config-schema.js';
import type { EventBus } from '../../core/contracts/events.js';
import type { Logger } from '../../core/contracts/logger.js';
import type { PluginContext, VgpudPlugin } from '../../core/contracts/plugin.js';
import type { RequestService } from '../../core/contracts/requests.js';
import type { VgpuHolders } from '../../core/contracts/vgpu-holders.js';
import type { VgpuService } from '../../core/contracts/vgpu-service.js';
import type { PluginHost } from '../../core/plugin-host.js';
import type { VgpuJournal } from '../../core/contracts/vgpu-journal.js';
import { TOKENS } from '../../core/tokens.js';
import { buildApiApp, type ApiApp, type HttpRouteContribution } from './build-api-app.js';
import { invalidRequest } from './http-errors.js';
import type { HttpServer } from './http-server.js';
import { prepareSocketPath } from './socket-guard.js';

/** `plugins.api` section. */
const apiPluginConfig = z.strictObject({
  /** Accepted for old configs and ignored: the lifecycle now re-attaches journalled vGPUs itself at start. */
  reconcile: z.boolean().default(true),
  /** Socket file mode (octal string). */
  socketMode: z.string().regex(/^0?[0-7]{3}$/).default('0660'),
}).prefault({});

class HttpServerHolder implements HttpServer {
  api: ApiApp | undefined;
  socketPath: string | undefined;
  get app() {
    if (this.api === undefined) throw new Error('the api plugin has not started yet');
    return this.api.app;
  }
}

export function createApiPlugin(): VgpudPlugin {
  const holder = new HttpServerHolder();

  return {
    manifest: {
      name: 'api', version: '0.1.0', description: 'control API on a Unix socket (/v1), state journal',
      provides: ['api', 'http'], requires: ['vgpu-service', 'events', 'config'], optional: ['state'],
    },
    module: new ContainerModule(({ bind }) => {
      bind(TOKENS.HttpServer).toConstantValue(holder);
    }),
    async start(ctx: PluginContext) {
      const parsed = apiPluginConfig.safeParse(ctx.config ?? {});
      if (!parsed.success) throw invalidRequest('plugins.api config', parsed.error);
      const opts = parsed.data;
      const c = ctx.container;
      const config = c.get<Readonly<VgpudConfig>>(TOKENS.Config);
      const service = c.get<VgpuService>(TOKENS.VgpuManager);
      const bus = c.get<EventBus>(TOKENS.EventBus);
      const journal = c.isBound(TOKENS.VgpuJournal) ? c.get<VgpuJournal>(TOKENS.VgpuJournal) : undefined;
      const host = c.isBound(TOKENS.PluginHost) ? c.get<PluginHost>(TOKENS.PluginHost) : undefined;
      const log: Logger = ctx.logger;

      const routes = c.isBound(TOKENS.HttpRoutes) ? c.getAll<HttpRouteContribution>(TOKENS.HttpRoutes) : [];
      const requests = c.isBound(TOKENS.Requests) ? c.get<RequestService>(TOKENS.Requests) : undefined;
      const holders = c.isBound(TOKENS.VgpuHolders) ? c.get<VgpuHolders>(TOKENS.VgpuHolders) : undefined;
      holder.api = await buildApiApp({
        service, bus, logger: log, routes, ...(requests !== undefined ? { requests } : {}), ...(holders !== undefined ? { holders } : {}),
        status: () => ({
          socket: holder.socketPath,
          stateDir: config.api.stateDir,
          plugins: host?.records().map((r) => ({ name: r.manifest.name, version: r.manifest.version, state: r.state })),
          ...(journal?.lastReconcile() !== undefined ? { reconcile: journal.lastReconcile() } : {}),
        }),
      });
      const path = config.api.socket;
      const { removedStale } = await prepareSocketPath(path);
      if (removedStale) log.warn('removed a stale control socket nobody answered on', { path });
      await holder.api.app.listen({ path });
      await chmod(path, Number.parseInt(opts.socketMode, 8));
      holder.socketPath = path;
      log.info('control API listening', { socket: path });
    },
    async stop(ctx: PluginContext) {
      const path = holder.socketPath;
      if (holder.api !== undefined) await holder.api.app.close();
      if (path !== undefined) {
        // Node unlinks a listening Unix socket on close; this covers a close that failed half-way.
        await unlink(path).catch(() => {});
        ctx.logger.info('control API closed', { socket: path });
      }
      holder.socketPath = undefined;
    },
  };
}
