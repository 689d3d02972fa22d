/**
 * Find, start and connect a GPU's device front process. A front already running (its descriptor names a live pid)
 * is connected to as it is — that is how a restarted daemon re-attaches to the VMMs a previous one served. A missing
 * front is spawned DETACHED, in its own session, output in `<dir>/front-<GPU>.log`: it must survive the daemon. The
 * start is event-driven: the front prints one "ready" line on a pipe the daemon then lets go of.
 */
import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { createConnection } from 'node:net';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { GuestPortLocator } from '../../../core/contracts/guest-port.js';
import { ErrorCode, VgpuError } from '../../../core/contracts/exceptions.js';
import type { Logger } from '../../../core/contracts/logger.js';
import { ControlChannel, type RequestHandler } from '../control/control-channel.js';
import { frontPaths, readFrontDescriptor } from '../front/front-descriptor.js';
import { ProcessFrontClient } from './front-client.js';

const EXT = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
const FRONT_MAIN = fileURLToPath(new URL(`../front/front-main${EXT}`, import.meta.url));
/** The repository (or dist) root: the front runs from there so `--import tsx` resolves. */
const ROOT = resolve(dirname(FRONT_MAIN), '../../..');

export interface LaunchOptions {
  gpu: string;
  locator: GuestPortLocator;
  dir: string;
  mode: number;
  owner?: number;
  group?: number;
  maxDmaMaps?: number;
  logger: Logger;
  /** Answers the front's questions (reset, migration, open…). */
  handler: RequestHandler;
  startTimeoutMs?: number;
}

function connectChannel(path: string, handler: RequestHandler): Promise<ControlChannel> {
  return new Promise((resolvePromise, reject) => {
    const sock = createConnection(path);
    sock.once('connect', () => {
      sock.removeAllListeners('error');
      resolvePromise(new ControlChannel(sock, handler));
    });
    sock.once('error', (e) => reject(e));
  });
}

async function spawnFront(o: LaunchOptions): Promise<void> {
  mkdirSync(o.dir, { recursive: true });
  const { log } = frontPaths(o.dir, o.gpu);
  const out = openSync(log, 'a');
  const args = [
    ...(EXT === '.ts' ? ['--import', 'tsx'] : []), FRONT_MAIN,
    '--gpu', o.gpu, '--dir', o.dir, '--locator', JSON.stringify(o.locator), '--mode', o.mode.toString(8),
    ...(o.owner !== undefined ? ['--owner', String(o.owner)] : []),
    ...(o.group !== undefined ? ['--group', String(o.group)] : []),
    ...(o.maxDmaMaps !== undefined ? ['--max-dma-maps', String(o.maxDmaMaps)] : []),
  ];
  const child = spawn(process.execPath, args, { cwd: ROOT, detached: true, stdio: ['ignore', 'pipe', out] });
  closeSync(out);
  await new Promise<void>((resolvePromise, reject) => {
    let text = '';
    const timer = setTimeout(() => fail(new VgpuError(ErrorCode.Internal, `the device front of ${o.gpu} did not come up in time`, {
      hint: `read ${log}`,
    })), o.startTimeoutMs ?? 30_000);
    const fail = (e: Error): void => {
      clearTimeout(timer);
      child.stdout?.destroy();
      reject(e);
    };
    child.stdout!.on('data', (d: Buffer) => {
      text += d.toString('utf8');
      if (!text.includes('\n')) return;
      clearTimeout(timer);
      child.stdout!.destroy();
      child.unref();
      resolvePromise();
    });
    child.once('exit', (code) => fail(new VgpuError(ErrorCode.Internal, `the device front of ${o.gpu} exited (code ${code}) before it served`, {
      hint: `read ${log}; it needs the native addon (npm run build:native)`,
    })));
    child.once('error', (e) => fail(e));
  });
  o.logger.info('started the device front (detached)', { gpu: o.gpu, pid: child.pid, log });
}

/** Connect to the GPU's running front, or start one and connect. */
export async function launchFront(o: LaunchOptions): Promise<ProcessFrontClient> {
  const running = readFrontDescriptor(o.dir, o.gpu);
  if (running !== null) {
    try {
      const ch = await connectChannel(running.control, o.handler);
      o.logger.info('re-attached to the running device front', { gpu: o.gpu, pid: running.pid });
      return new ProcessFrontClient(o.gpu, running.pid, ch, o.logger);
    } catch (error) {
      // It was stopping (no daemon, no VMM) as we came: start a new one.
      o.logger.info('the device front found was stopping; starting a new one', { gpu: o.gpu, pid: running.pid, error });
    }
  }
  await spawnFront(o);
  const d = readFrontDescriptor(o.dir, o.gpu);
  if (d === null) {
    throw new VgpuError(ErrorCode.Internal, `the device front of ${o.gpu} started but wrote no descriptor`, { hint: `read ${frontPaths(o.dir, o.gpu).log}` });
  }
  const ch = await connectChannel(d.control, o.handler);
  return new ProcessFrontClient(o.gpu, d.pid, ch, o.logger);
}
