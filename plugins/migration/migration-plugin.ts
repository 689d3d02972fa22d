/**
 * Plugin 'migration': binds MigrationService to TOKENS.Migration (capability 'migration'), contributes the
 * POST /v1/vgpus/:id/migrate route to the control API when it is loaded, and, with `plugins.migration.listen`
 * (a Unix socket path or host:port), accepts vGPUs migrated from other daemons. It reaches the vGPUs only through
 * core contracts: VgpuService (TOKENS.VgpuManager) and VgpuDeviceAccess (TOKENS.VgpuDeviceAccess).
 */
import { ContainerModule } from 'inversify';
import { z } from 'zod';
import { ErrorCode, VgpuError } from '../../core/contracts/exceptions.js';
import type { VgpudPlugin } from '../../core/contracts/plugin.js';
import { TOKENS } from '../../core/tokens.js';
import { MigrationService } from './migration-service.js';
import { migrateRoute } from './migrate-route.js';
import { IncomingLedger } from './incoming-ledger.js';
import type { VgpudConfig } from '../../core/config/config-schema.js';
import { VfioMigrationPort } from './vfio-migration-port.js';

export const MIGRATION_PLUGIN_NAME = 'migration';

const configSchema = z.strictObject({
  /** Accept incoming migrations here: a Unix socket path or host:port. Off when absent. */
  listen: z.string().min(1).optional(),
  /** Destination GPU for incoming vGPUs (default: the first GPU with room for the type). */
  gpu: z.string().optional(),
}).prefault({});

export function createMigrationPlugin(): VgpudPlugin {
  return {
    manifest: {
      name: MIGRATION_PLUGIN_NAME,
      version: '0.1.0',
      description: 'vGPU live migration: VFIO v2 device states, FB pre-copy with dirty tracking, firmware context via the mailbox',
      provides: ['migration'],
      // Capabilities, not the lifecycle plugin: whichever plugin owns the vGPUs binds both contracts.
      requires: ['vgpu-service', 'vgpu-device-access'],
      optional: ['api'],
    },
    module: new ContainerModule(({ bind }) => {
      bind(MigrationService).toSelf().inSingletonScope();
      bind(TOKENS.Migration).toService(MigrationService);
      bind(TOKENS.MigrationPort).toDynamicValue((ctx) => new VfioMigrationPort(ctx.get<MigrationService>(TOKENS.Migration))).inSingletonScope();
      bind(TOKENS.HttpRoutes).toDynamicValue((ctx) => migrateRoute(ctx.get<MigrationService>(TOKENS.Migration)));
    }),
    async start(ctx) {
      const r = configSchema.safeParse(ctx.config ?? undefined);
      if (!r.success) throw new VgpuError(ErrorCode.Config, `plugins.migration: ${z.prettifyError(r.error)}`, { hint: 'fix the migration section of the config' });
      // Before accepting anything new: destroy what incoming migrations a crash interrupted left (incoming-ledger.ts).
      const stateDir = ctx.container.get<Readonly<VgpudConfig>>(TOKENS.Config).api.stateDir;
      const recovered = await ctx.container.get<MigrationService>(TOKENS.Migration).recoverIncoming(IncomingLedger.inStateDir(stateDir, ctx.logger));
      if (recovered.destroyed.length > 0) ctx.logger.warn('interrupted incoming migrations cleaned up', { destroyed: recovered.destroyed });
      if (r.data.listen !== undefined) {
        const at = await ctx.container.get<MigrationService>(TOKENS.Migration).listen(r.data.listen, r.data.gpu !== undefined ? { gpu: r.data.gpu } : {});
        ctx.logger.info('accepting incoming vGPU migrations', { at });
      }
    },
    async stop(ctx) {
      await ctx.container.get<MigrationService>(TOKENS.Migration).close();
    },
  };
}

export default createMigrationPlugin();
