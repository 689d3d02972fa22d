/**
 * `vgpud --spawn-sim` (what `npm start` runs): before the daemon starts, make sure every process-mode simulated
 * device of the config has its `vgpu-sim` running. A missing one is spawned DETACHED, in its own session, with
 * its output in `<dir>/<bdf>.log`: it must survive the daemon — that is the whole point of a separate process (a
 * daemon restart re-attaches the vGPUs on it, and their guests' FB is still there).
 */
import { spawn } from 'node:child_process';
import { mkdirSync, openSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { nodeArgsFor } from '../../core/runtime/module-entry.js';
import type { VgpudConfig } from '../../core/config/config-schema.js';
import type { EventBus } from '../../core/contracts/events.js';
import { ErrorCode, VgpuError } from '../../core/contracts/exceptions.js';
import type { Logger } from '../../core/contracts/logger.js';
import type { VgpudPlugin } from '../../core/contracts/plugin.js';
import type { SimProcessSpec } from '../../hal/gsp-gpu/sim-gpu-hal-plugin.js';
import { listDescriptors } from '../../hal/sim/device/sim-descriptor.js';

export type SimToEnsure = SimProcessSpec;

/** A plugin that may need simulator processes (every GSP HAL plugin: hal/gsp-gpu/sim-gpu-hal-plugin.ts). */
interface SimProcessProvider {
  simProcesses(section: unknown): SimProcessSpec[];
}

function providesSims(p: VgpudPlugin): p is VgpudPlugin & SimProcessProvider {
  return typeof (p as Partial<SimProcessProvider>).simProcesses === 'function';
}

/**
 * The process-mode devices of every HAL plugin's config section, each with the vgpu-sim entry of its generation:
 * each HAL plugin says which of its devices need a simulator process, so this code knows no generation.
 */
export function processModeSims(config: Readonly<VgpudConfig>, plugins: readonly VgpudPlugin[]): SimToEnsure[] {
  const sections = config.plugins as Record<string, unknown>;
  return plugins.filter(providesSims).flatMap((p) => p.simProcesses(sections[p.manifest.name]));
}

/** Spawn the missing simulators and wait (bounded) until each has published its descriptor. */
export async function ensureSims(sims: SimToEnsure[], log: Logger, timeoutMs = 30_000): Promise<void> {
  for (const s of sims) {
    const alive = listDescriptors(s.dir).live.find((d) => d.bdf === s.bdf);
    if (alive !== undefined) {
      log.info('simulated GPU already running', { bdf: s.bdf, pid: alive.pid, dir: s.dir });
      continue;
    }
    mkdirSync(s.dir, { recursive: true });
    const logPath = join(s.dir, `${s.bdf}.log`);
    const out = openSync(logPath, 'a');
    const args = [...nodeArgsFor(s.script), '--board', s.board, '--bdf', s.bdf, '--dir', s.dir];
    if (s.fbBytes !== undefined) args.push('--fb-bytes', s.fbBytes);
    if (s.firmwareVersion !== undefined) args.push('--firmware-version', s.firmwareVersion);
    const child = spawn(process.execPath, args, { detached: true, stdio: ['ignore', out, out] });
    closeSync(out);
    child.unref();
    log.info('started simulated GPU (vgpu-sim, detached)', { bdf: s.bdf, board: s.board, pid: child.pid, dir: s.dir, log: logPath });
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (listDescriptors(s.dir).live.some((d) => d.bdf === s.bdf)) break;
      if (child.exitCode !== null || Date.now() > deadline) {
        throw new VgpuError(ErrorCode.FirmwareBoot, `vgpu-sim for ${s.bdf} did not come up${child.exitCode !== null ? ` (exit ${child.exitCode})` : ''}`, {
          hint: `read ${logPath}; process mode needs the native addon (npm run build:native)`,
        });
      }
      await new Promise((r) => setTimeout(r, 100)); // bounded poll of the descriptor file, with a deadline
    }
  }
}

/**
 * With --spawn-sim the daemon started the simulators, so it also restarts one that dies — the simulator's
 * equivalent of a slot power cycle: the GPU's reset waits for its device (gpu:reset 'waiting'), and a new vgpu-sim
 * on the same device file (FB kept) is what it waits for. Returns unsubscribe.
 */
export function respawnSims(sims: SimToEnsure[], bus: EventBus, log: Logger): () => void {
  const byBdf = new Map(sims.map((s) => [s.bdf.toLowerCase(), s]));
  let chain: Promise<void> = Promise.resolve();
  return bus.on('gpu:reset', (e) => {
    if (e.phase !== 'waiting') return;
    const sim = byBdf.get(e.gpu.toLowerCase());
    if (sim === undefined) return;
    log.warn('the simulated GPU is gone: starting its vgpu-sim again (same device file, FB kept)', { bdf: sim.bdf, dir: sim.dir });
    chain = chain.then(() => ensureSims([sim], log)).catch((error: unknown) => {
      log.error('could not restart the simulated GPU; start it by hand', { bdf: sim.bdf, error });
    });
  });
}
