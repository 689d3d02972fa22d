/**
 * Plugin 'hal-ada-lovelace': binds the AdaHal to TOKENS.Hal and the simulator's PCI bus to TOKENS.PciBus, and
 * brings up the simulated GPUs its config section names.
 *
 *   plugins:
 *     hal-ada-lovelace:
 *       dirs: [/dev/shm/vgpud-sim]            # optional: list every vgpu-sim device found there
 *       devices:
 *         - { board: l40s, bdf: "0000:41:00.0", mode: worker }                       # started in this process
 *         - { board: rtx6000-ada, bdf: "0000:42:00.0", mode: process, dir: /dev/shm/vgpud-sim }  # attached to
 *
 * Worker-mode devices live and die with the daemon (stopped in `stop`). Process-mode devices are separate
 * vgpu-sim processes the plugin only attaches to (by listing their directory): they outlive the daemon, which is
 * what makes a daemon restart with running vGPUs possible. A process-mode entry whose device is not running is
 * a start error, so a typo in the config is not silently a missing GPU.
 */
import { ContainerModule } from 'inversify';
import { z } from 'zod';
import { ErrorCode, VgpuError } from '../../core/contracts/exceptions.js';
import type { Hal, PciBus } from '../../core/contracts/hal.js';
import type { PluginContext, VgpudPlugin } from '../../core/contracts/plugin.js';
import { TOKENS } from '../../core/tokens.js';
import { ADA_BOARDS } from './chips.js';
import { AdaHal } from './ada-hal.js';
import { SimPciBus } from './sim/sim-pci-bus.js';
import { startSimDevice, type SimDeviceHandle } from './sim/start-sim-device.js';
import { DEFAULT_SIM_DIR } from './sim/sim-descriptor.js';

const boardKeys = ADA_BOARDS.map((b) => b.key) as [string, ...string[]];

export const AdaHalPluginConfig = z.object({
  dirs: z.array(z.string().min(1)).default([]),
  devices: z.array(z.object({
    board: z.enum(boardKeys),
    bdf: z.string().regex(/^[0-9a-fA-F]{4}:[0-9a-fA-F]{2}:[0-1][0-9a-fA-F]\.[0-7]$/, 'a PCI address like 0000:41:00.0'),
    mode: z.enum(['worker', 'process']).default('worker'),
    dir: z.string().min(1).optional(),
    firmwareVersion: z.string().optional(),
    fbBytes: z.union([z.string().regex(/^\d+$/), z.number().int().positive()]).optional(),
  }).strict()).default([]),
}).strict();
export type AdaHalPluginConfig = z.infer<typeof AdaHalPluginConfig>;

export function createAdaHalPlugin(): VgpudPlugin & { readonly bus: SimPciBus; readonly hal: AdaHal; readonly devices: readonly SimDeviceHandle[] } {
  const hal = new AdaHal();
  const bus = new SimPciBus();
  const devices: SimDeviceHandle[] = [];
  const unregister: Array<() => void> = [];
  const stopAll = async (): Promise<void> => {
    for (const u of unregister.splice(0)) u();
    await Promise.allSettled(devices.splice(0).map((x) => x.stop()));
  };
  return {
    hal,
    bus,
    devices,
    manifest: {
      name: 'hal-ada-lovelace',
      version: '0.1.0',
      description: 'Ada Lovelace HAL with the simulated Ada GPU (worker or vgpu-sim process)',
      provides: ['hal', 'pci-bus'],
      requires: [],
    },
    module: new ContainerModule(({ bind }) => {
      bind<Hal>(TOKENS.Hal).toConstantValue(hal);
      bind<PciBus>(TOKENS.PciBus).toConstantValue(bus);
    }),
    async start(ctx: PluginContext) {
      const parsed = AdaHalPluginConfig.safeParse(ctx.config ?? {});
      if (!parsed.success) {
        throw new VgpuError(ErrorCode.Config, `plugins.hal-ada-lovelace: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`, {
          hint: `devices: [{ board: one of ${boardKeys.join('|')}, bdf: "0000:41:00.0", mode: worker|process }]`,
        });
      }
      const cfg = parsed.data;
      for (const d of cfg.dirs) bus.addDir(d);
      try {
        for (const d of cfg.devices) {
          bus.expect(d.bdf);
          if (d.mode === 'worker') {
            ctx.logger.info('starting simulated GPU (worker)', { board: d.board, bdf: d.bdf });
            const dev = await startSimDevice({
              board: d.board, bdf: d.bdf, mode: 'worker',
              ...(d.firmwareVersion !== undefined ? { firmwareVersion: d.firmwareVersion } : {}),
              ...(d.fbBytes !== undefined ? { fbBytes: BigInt(d.fbBytes) } : {}),
            });
            devices.push(dev);
            unregister.push(bus.register(dev.arena));
          } else {
            const dir = d.dir ?? DEFAULT_SIM_DIR;
            bus.addDir(dir);
            const found = (await bus.list()).find((x) => x.bdf === d.bdf);
            if (found === undefined) {
              throw new VgpuError(ErrorCode.NotFound, `no running vgpu-sim for ${d.bdf} in ${dir}`, {
                hint: `start it: node bin/vgpu-sim.mjs --board ${d.board} --bdf ${d.bdf} --dir ${dir}`,
              });
            }
            ctx.logger.info('attached to simulated GPU (process)', { board: d.board, bdf: d.bdf, dir });
          }
        }
      } catch (e) {
        await stopAll();
        throw e;
      }
    },
    async stop() {
      await stopAll();
    },
  };
}

export default createAdaHalPlugin;
