#!/usr/bin/env node
/**
 * vgpud-front: the device front of ONE physical GPU as its own process (started detached by the daemon's vfio-user
 * plugin, like vgpu-sim): every VF's vfio-user socket, the VMMs' connections and their descriptors live here, so a
 * daemon restart, crash or upgrade does not disconnect a VMM. It prints one JSON line `{"ready": …}` on stdout when
 * it serves, writes its descriptor (front-descriptor.ts) and logs to stderr; SIGTERM (or the daemon's 'shutdown')
 * stops serving — the VMMs are disconnected — and removes the descriptor.
 *
 * It exits by itself once no daemon is connected and no VMM is attached (the daemon stopped with no VMM, or the last
 * VMM left while the daemon was away): nothing it serves would be lost, and a daemon that starts later starts a
 * new front. While a VMM is attached it stays, daemon or not.
 *
 *   node [--import tsx] plugins/vfio-user/front/front-main.ts --gpu 0000:41:00.0 --dir /run/vgpud/vfio-user \
 *        --locator '{"module":"…/vf-guest-port.ts","options":{…}}' [--mode 660] [--owner UID] [--group GID] [--max-dma-maps N]
 */
import { Command } from 'commander';
import { createLogger } from '../../../core/logging/create-logger.js';
import { isVgpuError } from '../../../core/contracts/exceptions.js';
import type { GuestPortLocator } from '../../../core/contracts/guest-port.js';
import { loadFdOps } from '../../../native/fd-ops.js';
import { DeviceFront } from './device-front.js';
import { frontPaths, removeFrontDescriptor, writeFrontDescriptor } from './front-descriptor.js';
import { ChannelManager, FrontControlServer } from './front-control-server.js';

async function main(): Promise<void> {
  const o = new Command('vgpud-front')
    .requiredOption('--gpu <bdf>', 'PCI address of the physical GPU')
    .requiredOption('--dir <dir>', 'socket directory')
    .requiredOption('--locator <json>', "the HAL's guest-port locator (module and options)")
    .option('--mode <octal>', 'socket mode', '660')
    .option('--owner <uid>', 'socket owner uid')
    .option('--group <gid>', 'socket group gid')
    .option('--max-dma-maps <n>', 'DMA map windows per client')
    .option('--log-level <level>', 'log level', 'info')
    .parse(process.argv)
    .opts<{ gpu: string; dir: string; locator: string; mode: string; owner?: string; group?: string; maxDmaMaps?: string; logLevel: string }>();
  const logger = createLogger({ level: o.logLevel as 'info', format: 'json', stream: process.stderr }).child({ component: 'vfio-user-front', gpu: o.gpu });
  // Sockets are created group-writable and no wider from the first instant (chmod follows for the exact mode).
  process.umask(0o117);
  const ops = loadFdOps();
  const manager = new ChannelManager();
  const front = new DeviceFront({
    gpu: o.gpu, locator: JSON.parse(o.locator) as GuestPortLocator, dir: o.dir, ops, manager, logger,
    access: {
      mode: parseInt(o.mode, 8),
      ...(o.owner !== undefined ? { owner: Number(o.owner) } : {}),
      ...(o.group !== undefined ? { group: Number(o.group) } : {}),
    },
    ...(o.maxDmaMaps !== undefined ? { caps: { maxDmaMaps: Number(o.maxDmaMaps) } } : {}),
    onClientChange: () => exitIfIdle(),
  });
  await front.open();
  const paths = frontPaths(o.dir, o.gpu);
  let stopping = false;
  const stop = async (why: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    logger.info('device front stopping', { why });
    // Gone from the daemon's view first: a daemon starting now spawns a new front instead of connecting here.
    removeFrontDescriptor(o.dir, o.gpu, process.pid);
    control.close();
    await front.close(`device front stopped (${why})`);
    process.exit(0);
  };
  function exitIfIdle(): void {
    if (manager.channel === null && !front.hasClients()) void stop('no vgpud connected and no VMM attached');
  }
  const control = new FrontControlServer(front, manager, paths.control, logger, () => void stop('asked by vgpud'), exitIfIdle);
  await control.start();
  writeFrontDescriptor({ kind: 'vgpud-front', gpu: o.gpu, pid: process.pid, control: paths.control, dir: o.dir, startedAt: new Date().toISOString() });
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
  // The daemon reads this line and lets the pipe go; the front keeps running without it.
  process.stdout.on('error', () => undefined);
  process.stdout.write(`${JSON.stringify({ ready: true, gpu: o.gpu, pid: process.pid, control: paths.control })}\n`);
  logger.info('device front ready', { pid: process.pid, control: paths.control });
}

main().catch((e: unknown) => {
  process.stderr.write(`vgpud-front: ${(e as Error).message}${isVgpuError(e) ? `\n  hint: ${e.hint}` : ''}\n`);
  process.exit(1);
});
