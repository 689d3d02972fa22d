/**
 * The mock HAL as a plugin: binds a MockHal to TOKENS.Hal and its bus to TOKENS.PciBus (both multi-bindings, so it
 * can sit next to other HALs), and the same instance to the MockHal class so a test can reach the controls:
 * `container.get(MockHal).faults.inject(...)`.
 *
 * Config (`plugins.hal-mock`): `{ devices?: [{ bdf, deviceId?, fbGiB?, channels?, totalVfs?, firmwareVersion? }] }`
 * creates devices on the bus at start, so the daemon can run against the mock from a config file alone.
 */
import { ContainerModule } from 'inversify';
import { z } from 'zod';
import { ErrorCode, VgpuError } from '../../core/contracts/exceptions.js';
import type { VgpudPlugin } from '../../core/contracts/plugin.js';
import { TOKENS } from '../../core/tokens.js';
import { MockHal, type MockHalOptions } from './mock-hal.js';
import { MockPciBus } from './mock-pci-bus.js';

const ConfigSchema = z.object({
  devices: z.array(z.object({
    bdf: z.string(),
    deviceId: z.number().int().optional(),
    fbGiB: z.number().positive().optional(),
    channels: z.number().int().positive().optional(),
    totalVfs: z.number().int().nonnegative().optional(),
    firmwareVersion: z.string().optional(),
  })).default([]),
}).default({ devices: [] });

export const MOCK_HAL_PLUGIN_NAME = 'hal-mock';

/** A plugin around `hal` (default: a new MockHal built from `opts`). */
export function createMockHalPlugin(hal: MockHal | MockHalOptions = {}): VgpudPlugin & { hal: MockHal } {
  const mock = hal instanceof MockHal ? hal : new MockHal(hal);
  return {
    hal: mock,
    manifest: {
      name: MOCK_HAL_PLUGIN_NAME,
      version: '0.1.0',
      description: 'In-memory mock HAL and PCI bus with test controls (fault injection, call log, books)',
      provides: ['hal', 'pci-bus'],
      requires: [],
    },
    module: new ContainerModule(({ bind }) => {
      bind(TOKENS.Hal).toConstantValue(mock);
      bind(TOKENS.PciBus).toConstantValue(mock.bus);
      bind(MockHal).toConstantValue(mock);
      bind(MockPciBus).toConstantValue(mock.bus);
    }),
    start(ctx) {
      const parsed = ConfigSchema.safeParse(ctx.config ?? undefined);
      if (!parsed.success) {
        throw new VgpuError(ErrorCode.Config, `plugins.${MOCK_HAL_PLUGIN_NAME}: ${z.prettifyError(parsed.error)}`, {
          hint: 'fix the mock HAL section of the config',
        });
      }
      for (const d of parsed.data.devices) {
        if (mock.bus.device(d.bdf) !== undefined) continue; // a test may have created it already
        mock.bus.createDevice({
          bdf: d.bdf,
          ...(d.deviceId !== undefined ? { deviceId: d.deviceId } : {}),
          ...(d.fbGiB !== undefined ? { fbBytes: BigInt(Math.round(d.fbGiB * 1024)) << 20n } : {}),
          ...(d.channels !== undefined ? { channels: d.channels } : {}),
          ...(d.totalVfs !== undefined ? { totalVfs: d.totalVfs } : {}),
          ...(d.firmwareVersion !== undefined ? { firmwareVersion: d.firmwareVersion } : {}),
        });
      }
      ctx.logger.debug('mock HAL ready', { devices: parsed.data.devices.length });
    },
  };
}
