/**
 * Plugin 'api': the control API (HTTP + JSON under /v1) on a Unix socket, mode 0660 (access is the socket's group:
 * no auth on a local socket, like docker.sock). It also owns the state journal in `api.stateDir`: opens it,
 * reconciles it with the manager, and records every vGPU transition from then on.
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
import type { VgpuService } from '../../core/contracts/vgpu-service.js';
import type { PluginHost } from '../../core/plugin-host.js';
import { attachJournalRecorder } from '../../core/state/journal-recorder.js';
import { reconcile, type ReconcileReport } from '../../core/state/reconcile.js';
import { StateJournal } from '../../core/state/state-journal.js';
import { TOKENS } from '../../core/tokens.js';
import { buildApiApp, type ApiApp, type HttpRouteContribution } from './build-api-app.js';
import { invalidRequest } from './http-errors.js';
import type { HttpServer } from './http-server.js';
import { prepareSocketPath } from './socket-guard.js';

/** `plugins.api` section. */
const apiPluginConfig = z.strictObject({
  /** Re-create journalled vGPUs at start (off: only report and drop half-way ones). */
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
  let offRecorder: (() => void) | undefined;
  let journal: StateJournal | undefined;
  let lastReconcile: ReconcileReport | undefined;

  return {
    manifest: {
      name: 'api', version: '0.1.0', description: 'control API on a Unix socket (/v1), state journal',
      provides: ['api', 'http'], requires: ['vgpu-service', 'events', 'config'],
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
      const host = c.isBound(TOKENS.PluginHost) ? c.get<PluginHost>(TOKENS.PluginHost) : undefined;
      const log: Logger = ctx.logger;

      journal = new StateJournal(config.api.stateDir, log.child({ component: 'journal' }));
      await journal.open();
      if (opts.reconcile) lastReconcile = await reconcile(journal, service, log);
      offRecorder = attachJournalRecorder(journal, bus, service, log);

      const routes = c.isBound(TOKENS.HttpRoutes) ? c.getAll<HttpRouteContribution>(TOKENS.HttpRoutes) : [];
      holder.api = await buildApiApp({
        service, bus, logger: log, routes,
        status: () => ({
          socket: holder.socketPath,
          stateDir: config.api.stateDir,
          plugins: host?.records().map((r) => ({ name: r.manifest.name, version: r.manifest.version, state: r.state })),
          ...(lastReconcile ? { reconcile: lastReconcile } : {}),
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
      offRecorder?.();
      offRecorder = undefined;
      const path = holder.socketPath;
      if (holder.api !== undefined) await holder.api.app.close();
      if (path !== undefined) {
        // Node unlinks a listening Unix socket on close; this covers a close that failed half-way.
        await unlink(path).catch(() => {});
        ctx.logger.info('control API closed', { socket: path });
      }
      holder.socketPath = undefined;
      await journal?.flush();
    },
  };
}
