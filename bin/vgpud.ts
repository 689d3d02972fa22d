/**
 * vgpud: the daemon. Reads the config (or runs one simulated RTX 6000 Ada), wires the plugins, serves the control
 * API on a Unix socket, and shuts down gracefully on SIGTERM/SIGINT (vGPUs are left as they are; the journal
 * lets the next start pick them up). SIGHUP reloads what can change safely.
 *
 * Exit codes: 0 clean shutdown, 1 failure at start or a fatal error while running, 2 bad command line or config.
 */
import 'reflect-metadata';
import { Command, CommanderError, Option } from 'commander';
import { createContainer, type CreatedContainer } from '../core/container.js';
import { ErrorCode, isVgpuError } from '../core/contracts/exceptions.js';
import type { EventBus } from '../core/contracts/events.js';
import type { VgpuService } from '../core/contracts/vgpu-service.js';
import { createLogger, type RootLogger } from '../core/logging/create-logger.js';
import { TOKENS } from '../core/tokens.js';
import { builtinPlugins } from './builtin-plugins.js';
import { bytes, table } from './cli/format.js';
import { daemonConfig, type DaemonFlags } from './daemon/daemon-config.js';
import { ensureSims, processModeSims, respawnSims } from './daemon/ensure-sim.js';
import { applyReload } from './daemon/reload-config.js';
import { createNotifier } from './daemon/sd-notify.js';
import { releaseMemoryWhenIdle, type IdleRelease } from './daemon/idle-memory.js';
import { ignoreClosedPipe } from './cli/closed-pipe.js';
import { toJsonValue } from '../plugins/api/to-json.js';
import { SYSTEM_SIM_DIR } from '../hal/sim/device/sim-descriptor.js';

function parseFlags(argv: string[]): DaemonFlags & { spawnSim?: boolean } {
  const program = new Command('vgpud')
    .description('vGPU daemon: splits NVIDIA GPUs into SR-IOV vGPUs. Without --config it runs one simulated RTX 6000 Ada '
      + `and starts its vgpu-sim process when none is running (device files in $VGPUD_SIM_DIR, default ${SYSTEM_SIM_DIR})`)
    .option('--config <file>', 'YAML/JSON config (see docs/vgpud.example.yaml)')
    .option('--socket <path>', 'control socket (default $XDG_RUNTIME_DIR/vgpud.sock or /tmp/vgpud-$UID.sock; /run/vgpud/vgpud.sock as root)')
    .option('--state-dir <dir>', 'journal directory (default ~/.local/state/vgpud; /var/lib/vgpud as root)')
    .addOption(new Option('--log-format <format>', 'log format').choices(['human', 'json']))
    .addOption(new Option('--log-level <level>', 'log level').choices(['error', 'warn', 'info', 'debug']))
    .option('--spawn-sim', 'start a detached vgpu-sim for every process-mode simulated GPU that is not running (the default without --config)')
    .option('--no-spawn-sim', 'never start a simulator: attach only to vgpu-sim processes already running')
    .option('--sysfs-mount <dir>', 'present the GPUs vgpud drives as a /sys-like tree (bus/pci/devices/…) through FUSE at <dir> (root)')
    .option('--sysfs-root <dir>', 'sysfs root of the Linux sysfs backend, for hosts where NVIDIA\'s kernel driver owns the GPUs (default /sys)')
    .addHelpText('after', '\nExample:\n  vgpud --socket /tmp/vgpud.sock --state-dir /tmp/vgpud-state\n\nExit codes: 0 clean shutdown, 1 start failure or fatal error, 2 bad command line or config')
    .exitOverride();
  try {
    program.parse(argv, { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError && (e.code === 'commander.helpDisplayed' || e.code === 'commander.version')) process.exit(0);
    process.exit(2);
  }
  return program.opts<DaemonFlags & { spawnSim?: boolean }>();
}

async function main(): Promise<void> {
  ignoreClosedPipe();
  const flags = parseFlags(process.argv.slice(2));
  let config;
  try {
    config = daemonConfig(flags);
  } catch (e) {
    printFatal(e);
    process.exitCode = 2;
    return;
  }
  const logger: RootLogger = createLogger({ level: config.logging.level, format: config.logging.format });
  const notify = await createNotifier(logger);
  let created: CreatedContainer | undefined;
  let shuttingDown: Promise<void> | undefined;
  let idleMemory: IdleRelease | undefined;

  let logClosed = false;
  const closeLog = async (): Promise<void> => {
    if (logClosed) return;
    logClosed = true;
    await logger.close();
  };
  const fatal = (kind: string) => (error: unknown): void => {
    if (!logClosed) logger.error(`fatal: ${kind}`, { error });
    idleMemory?.close();
    printFatal(error);
    // Let systemd restart us; the journal lets the next start reconcile. Give the log a moment to flush.
    void Promise.race([closeLog(), new Promise((r) => setTimeout(r, 500))]).finally(() => process.exit(1));
  };
  process.on('uncaughtException', fatal('uncaught exception'));
  process.on('unhandledRejection', fatal('unhandled rejection'));

  const shutdown = (signal: string): void => {
    // `on`, not `once`: a second Ctrl-C must not kill the process half-way through teardown.
    if (shuttingDown) {
      if (!logClosed) logger.warn('shutdown already in progress', { signal });
      return;
    }
    shuttingDown = (async () => {
      logger.info('shutting down; vGPUs are left as they are', { signal });
      // The stopping plugins raise vGPU events: no memory release (and its log line) after the log is closed.
      idleMemory?.close();
      notify('STOPPING=1');
      const r = await created?.host.stop();
      if (r && r.failed.length > 0) logger.warn('some plugins failed to stop', { failed: r.failed });
      try {
        await created?.container.unbindAll();
      } catch (error) {
        logger.warn('unbinding the container failed', { error });
      }
      logger.info('stopped');
      await closeLog();
      process.exitCode = 0;
      // Everything is closed; if a stray handle (a timer in a plugin) still holds the loop, do not hang forever.
      setTimeout(() => process.exit(0), 2000).unref();
    })();
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));

  try {
    // The built-in config is one simulated GPU: bare `vgpud` must work like `npm start`, so it starts that GPU's
    // simulator when none runs. With a config file the operator says so (--spawn-sim), or runs vgpu-sim as a service.
    const plugins = builtinPlugins();
    const sims = processModeSims(config, plugins);
    if (flags.spawnSim ?? flags.config === undefined) await ensureSims(sims, logger.child({ component: 'sim' }));
    created = await createContainer({ config, logger, plugins });
    if (flags.spawnSim === true) respawnSims(sims, created.container.get<EventBus>(TOKENS.EventBus), logger.child({ component: 'sim' }));
    await created.host.start();
  } catch (e) {
    logger.error('vgpud failed to start', { error: e });
    printFatal(e);
    await created?.host.stop();
    await closeLog();
    process.exitCode = isVgpuError(e, ErrorCode.Config) || isVgpuError(e, ErrorCode.PluginMissing) ? 2 : 1;
    return;
  }
  if (shuttingDown) return;

  const service = created.container.isBound(TOKENS.VgpuManager) ? created.container.get<VgpuService>(TOKENS.VgpuManager) : undefined;
  process.on('SIGHUP', () => {
    notify(`RELOADING=1\nMONOTONIC_USEC=${BigInt(Math.round(performance.timeOrigin * 1000 + performance.now() * 1000))}`);
    if (flags.config === undefined) {
      logger.info('SIGHUP: running on the built-in config, no config to reload');
    } else {
      try {
        applyReload(created!.config, daemonConfig(flags), service, logger);
      } catch (error) {
        logger.error('config reload failed; keeping the running config', { error });
      }
    }
    // The metadata file too: each GPU takes it only if its running vGPUs' types stay valid (logged either way).
    void (service?.reloadMetadata?.() ?? Promise.resolve([]))
      .catch((error: unknown) => logger.error('metadata reload failed', { error }))
      .finally(() => notify('READY=1'));
  });

  idleMemory = await releaseMemoryWhenIdle(created.container.get<EventBus>(TOKENS.EventBus), logger.child({ component: 'memory' }));
  if (shuttingDown) idleMemory?.close();
  notify('READY=1');
  notify(`STATUS=serving on ${config.api.socket}`);
  if (config.logging.format === 'human') {
    process.stdout.write(`\nvgpud ready (pid ${process.pid})\n  socket:    ${config.api.socket}\n  state dir: ${config.api.stateDir}\n`
      + `  try:       VGPUD_SOCKET=${config.api.socket} npx vgpuctl types\n\n${statusTable(service)}\n\n`);
  } else {
    logger.info('vgpud ready', { socket: config.api.socket, stateDir: config.api.stateDir, pid: process.pid });
  }
}

/** The first status table: GPU, firmware, FB and how many vGPU types can be created now. */
function statusTable(service: VgpuService | undefined): string {
  const gpus = service?.gpus() ?? [];
  if (gpus.length === 0) return 'no GPUs';
  return table(['GPU', 'NAME', 'STATE', 'FIRMWARE', 'VGPUS', 'FB USED', 'FB TOTAL', 'CREATABLE TYPES'], gpus.map((g) => {
    let creatable: number | string = '-';
    try {
      creatable = service!.types(g.bdf).length;
    } catch {
      // a GPU that cannot list types (lost) shows '-'
    }
    const j = toJsonValue(g) as { fb?: { used: string; total: string } };
    return [g.bdf, g.name, g.state, g.firmwareVersion, g.vgpus, j.fb ? bytes(j.fb.used) : '-', j.fb ? bytes(j.fb.total) : '-', creatable];
  }));
}

function printFatal(e: unknown): void {
  // A plugin that failed to start wraps the real error: its hint is the one that says what to do (e.g. the chmod).
  const cause = isVgpuError(e) ? e.cause : undefined;
  if (isVgpuError(e) && isVgpuError(cause)) process.stderr.write(`vgpud: ${e.message}\n  hint: ${cause.hint}\n`);
  else if (isVgpuError(e)) process.stderr.write(`vgpud: ${e.message}\n  hint: ${e.hint}\n`);
  else process.stderr.write(`vgpud: ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
}

await main();
