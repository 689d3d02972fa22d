/**
 * A GSP generation's HAL plugin ('hal-ada-lovelace', 'hal-hopper', …): binds the generation's HAL to TOKENS.Hal and
 * the simulator's PCI bus to TOKENS.PciBus, and brings up the simulated GPUs its config section names. Each
 * generation calls `createSimGpuHalPlugin` with its name, board table and HAL; the config is the same for all:
 *
 *   plugins:
 *     hal-ada-lovelace:                         # or hal-hopper, with its own board keys
 *       dirs: [/dev/shm/vgpud-sim]            # optional: list every vgpu-sim device found there
 *       devices:
 *         - { board: l40s, bdf: "0000:41:00.0", mode: worker }                       # started in this process
 *         - { board: rtx6000-ada, bdf: "0000:42:00.0", mode: process, dir: /dev/shm/vgpud-sim }  # attached to
 *
 * Worker-mode devices live and die with the daemon (stopped in `stop`). Process-mode devices are separate
 * vgpu-sim processes the plugin only attaches to (by listing their directory): they outlive the daemon, which is
 * what makes a daemon restart with running vGPUs possible. A process-mode entry whose device is not running is
 * a start error, so a typo in the config is not silently a missing GPU. `simProcesses(section)` says which
 * devices need a vgpu-sim process (and which entry runs it), for `vgpud --spawn-sim` (bin/daemon/ensure-sim.ts).
 *
 * A plugin's bus lists only its own generation's devices, so two of these plugins side by side (Ada and Hopper
 * GPUs in one daemon) never list one device twice, even when their devices share a vgpu-sim folder.
 */
import { ContainerModule } from 'inversify';
import { z } from 'zod';
import { ErrorCode, VgpuError } from '../../core/contracts/exceptions.js';
import type { Hal, PciBus, PciDeviceInfo } from '../../core/contracts/hal.js';
import type { PluginContext, VgpudPlugin } from '../../core/contracts/plugin.js';
import { TOKENS } from '../../core/tokens.js';
import type { BoardTable } from '../sim/board/board-table.js';
import { SimPciBus } from '../sim/device/sim-pci-bus.js';
import { startSimDevice, type SimDeviceHandle } from '../sim/device/start-sim-device.js';
import { DEFAULT_SIM_DIR } from '../sim/device/sim-descriptor.js';

/** The config section of a GSP HAL plugin whose boards are `boardKeys`. */
export function simGpuHalPluginConfig(boardKeys: readonly string[]) {
  return z.object({
    dirs: z.array(z.string().min(1)).default([]),
    devices: z.array(z.object({
      board: z.enum(boardKeys as [string, ...string[]]),
      bdf: z.string().regex(/^[0-9a-fA-F]{4}:[0-9a-fA-F]{2}:[0-1][0-9a-fA-F]\.[0-7]$/, 'a PCI address like 0000:41:00.0'),
      mode: z.enum(['worker', 'process']).default('worker'),
      dir: z.string().min(1).optional(),
      firmwareVersion: z.string().optional(),
      fbBytes: z.union([z.string().regex(/^\d+$/), z.number().int().positive()]).optional(),
    }).strict()).default([]),
  }).strict();
}
export type SimGpuHalPluginConfig = z.infer<ReturnType<typeof simGpuHalPluginConfig>>;

/** A device of the config that runs as its own vgpu-sim process: what `vgpud --spawn-sim` starts. */
export interface SimProcessSpec {
  board: string;
  bdf: string;
  dir: string;
  /** The generation's vgpu-sim entry (BoardTable.simEntry). */
  script: string;
  fbBytes?: string;
  firmwareVersion?: string;
}

export interface SimGpuHalPlugin<H extends Hal> extends VgpudPlugin {
  readonly bus: PciBus;
  readonly hal: H;
  readonly devices: readonly SimDeviceHandle[];
  /** The process-mode devices of this plugin's config section (an invalid section: none; start() reports it). */
  simProcesses(section: unknown): SimProcessSpec[];
}

export interface SimGpuHalPluginSpec<H extends Hal> {
  /** Plugin name, also the config key: 'hal-ada-lovelace'. */
  name: string;
  description: string;
  table: BoardTable;
  hal: H;
}

export function createSimGpuHalPlugin<H extends Hal>(spec: SimGpuHalPluginSpec<H>): SimGpuHalPlugin<H> {
  const { name, table, hal } = spec;
  const boardKeys = table.boards.map((b) => b.key);
  const schema = simGpuHalPluginConfig(boardKeys);
  const sim = new SimPciBus();
  // Only this generation's devices: a shared vgpu-sim folder may hold another generation's GPUs too.
  const bus: PciBus = { name: `${sim.name} (${table.generation})`, list: async () => (await sim.list()).filter((d: PciDeviceInfo) => hal.supports(d)) };
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
    simProcesses(section: unknown): SimProcessSpec[] {
      const parsed = schema.safeParse(section ?? {});
      if (!parsed.success) return [];
      return parsed.data.devices.filter((d) => d.mode === 'process').map((d) => ({
        board: d.board, bdf: d.bdf, dir: d.dir ?? DEFAULT_SIM_DIR, script: table.simEntry,
        ...(d.fbBytes !== undefined ? { fbBytes: String(d.fbBytes) } : {}),
        ...(d.firmwareVersion !== undefined ? { firmwareVersion: d.firmwareVersion } : {}),
      }));
    },
    manifest: {
      name,
      version: '0.1.0',
      description: spec.description,
      provides: ['hal', 'pci-bus'],
      requires: [],
    },
    module: new ContainerModule(({ bind }) => {
      bind<Hal>(TOKENS.Hal).toConstantValue(hal);
      bind<PciBus>(TOKENS.PciBus).toConstantValue(bus);
    }),
    async start(ctx: PluginContext) {
      const parsed = schema.safeParse(ctx.config ?? {});
      if (!parsed.success) {
        throw new VgpuError(ErrorCode.Config, `plugins.${name}: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`, {
          hint: `devices: [{ board: one of ${boardKeys.join('|')}, bdf: "0000:41:00.0", mode: worker|process }]`,
        });
      }
      const cfg = parsed.data;
      for (const d of cfg.dirs) sim.addDir(d);
      try {
        for (const d of cfg.devices) {
          sim.expect(d.bdf);
          if (d.mode === 'worker') {
            ctx.logger.info('starting simulated GPU (worker)', { board: d.board, bdf: d.bdf });
            const dev = await startSimDevice({
              board: d.board, bdf: d.bdf, mode: 'worker',
              ...(d.firmwareVersion !== undefined ? { firmwareVersion: d.firmwareVersion } : {}),
              ...(d.fbBytes !== undefined ? { fbBytes: BigInt(d.fbBytes) } : {}),
            }, table);
            devices.push(dev);
            unregister.push(sim.register(dev.arena));
          } else {
            const dir = d.dir ?? DEFAULT_SIM_DIR;
            sim.addDir(dir);
            const found = (await sim.list()).find((x) => x.bdf === d.bdf);
            if (found === undefined) {
              throw new VgpuError(ErrorCode.NotFound, `no running vgpu-sim for ${d.bdf} in ${dir}`, {
                hint: `start it: node bin/vgpu-sim.mjs --board ${d.board} --bdf ${d.bdf} --dir ${dir} (or run vgpud with --spawn-sim)`,
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
