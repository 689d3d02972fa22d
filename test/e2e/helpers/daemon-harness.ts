/**
 * E2E harness: a process-mode simulated RTX 6000 Ada in a temp dir (its own `vgpu-sim` process, test controls over
 * IPC), the REAL `bin/vgpud.mjs` on a temp socket and state dir attached to it, and the REAL `bin/vgpuctl.mjs`.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request, Agent } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startSimDevice, type SimDeviceHandle } from '../../../hal/ada-lovelace/sim/start-sim-device.js';

export const root = resolve(import.meta.dirname, '../../..');
export const VGPUD = join(root, 'bin/vgpud.mjs');
const VGPUCTL = join(root, 'bin/vgpuctl.mjs');
export const GPU = '0000:41:00.0';

/**
 * Which build the real bins run (bin/runtime/launch.mjs): the TypeScript sources through tsx by default, so a test
 * never depends on whether dist/ happens to be fresh; test/e2e/compiled-build.test.ts sets 'dist' (and builds it).
 */
let runFrom: 'source' | 'dist' = 'source';
export function setRunFrom(mode: 'source' | 'dist'): void {
  runFrom = mode;
}
const binEnv = (): NodeJS.ProcessEnv => ({ ...process.env, VGPUD_RUN_FROM: runFrom });

/** A daemon config with one process-mode simulated RTX 6000 Ada whose files live in `simDir`. */
export function writeSimConfig(path: string, simDir: string): void {
  writeFileSync(path, [
    'logging: {format: human, level: info}',
    'plugins:',
    '  hal-ada-lovelace:',
    `    devices: [{board: rtx6000-ada, bdf: "${GPU}", mode: process, dir: "${simDir}"}]`,
    '',
  ].join('\n'));
}

export interface Daemon { proc: ChildProcess; out: () => string; exited: Promise<number | null> }

export interface Harness {
  dir: string;
  /** Directory of the simulated GPU's device file and descriptor. */
  simDir: string;
  socket: string;
  state: string;
  config: string;
  /** The simulated GPU; a test that restarts it puts the new handle here (close() stops this one). */
  sim: SimDeviceHandle;
  daemon: Daemon | undefined;
  start(): Promise<Daemon>;
  ctl(...args: string[]): Promise<{ code: number; out: string; err: string }>;
  http(method: string, path: string, body?: unknown, agent?: Agent): Promise<{ status: number; body: string }>;
  /**
   * Wait for the first bus event on /v1/events that matches; resolves with it (the stream is closed). `events` is the
   * stream's filter (default vgpu:step,vgpu:state).
   */
  waitEvent(match: (e: { event: string; data: Record<string, unknown> }) => boolean, timeoutMs?: number, events?: string): Promise<{ ready: Promise<void>; event: Promise<Record<string, unknown>> }>;
  close(): Promise<void>;
}

export async function createHarness(prefix: string): Promise<Harness> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const simDir = join(dir, 'sim');
  const sim = await startSimDevice({ board: 'rtx6000-ada', bdf: GPU, mode: 'process', dir: simDir });
  const socket = join(dir, 'vgpud.sock');
  const state = join(dir, 'state');
  const config = join(dir, 'vgpud.yaml');
  writeSimConfig(config, simDir);
  const h: Harness = {
    dir, simDir, socket, state, config, sim, daemon: undefined,
    async start() {
      h.daemon = await startDaemon(['--config', config, '--socket', socket, '--state-dir', state]);
      return h.daemon;
    },
    ctl: (...args) => ctl(socket, ...args),
    http: (method, path, body, agent) => socketHttp(socket, method, path, body, agent),
    async waitEvent(match, timeoutMs = 20_000, events = 'vgpu:step,vgpu:state') {
      let onReady!: () => void;
      const ready = new Promise<void>((r) => { onReady = r; });
      const event = new Promise<Record<string, unknown>>((resolveEvent, reject) => {
        const req = request({ socketPath: socket, path: `/v1/events?events=${events}`, method: 'GET' }, (res) => {
          let buf = '';
          const timer = setTimeout(() => { req.destroy(); reject(new Error('no matching event in time')); }, timeoutMs);
          res.on('data', (c: Buffer) => {
            buf += c.toString();
            let nl;
            while ((nl = buf.indexOf('\n')) >= 0) {
              const line = buf.slice(0, nl);
              buf = buf.slice(nl + 1);
              if (line.trim() === '') continue;
              const e = JSON.parse(line) as { event: string; data: Record<string, unknown> };
              if (e.event === 'stream:open') { onReady(); continue; }
              if (match(e)) { clearTimeout(timer); req.destroy(); resolveEvent(e.data); return; }
            }
          });
          res.on('error', () => {});
        });
        req.on('error', () => {});
        req.end();
      });
      return { ready, event };
    },
    async close() {
      if (h.daemon !== undefined && h.daemon.proc.exitCode === null && h.daemon.proc.signalCode === null) {
        h.daemon.proc.kill('SIGKILL');
        await h.daemon.exited;
      }
      await h.sim.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return h;
}

/** One HTTP request to the daemon's Unix socket (a string body is sent as text/plain, anything else as JSON). */
export function socketHttp(socket: string, method: string, path: string, body?: unknown, agent?: Agent): Promise<{ status: number; body: string }> {
  return new Promise((r, j) => {
    const data = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
    const req = request({
      socketPath: socket, path, method, ...(agent !== undefined ? { agent } : {}),
      headers: data === undefined ? {} : { 'content-type': typeof body === 'string' ? 'text/plain' : 'application/json', 'content-length': Buffer.byteLength(data) },
    }, (res) => {
      let b = '';
      res.on('data', (c: Buffer) => { b += c.toString(); });
      res.on('end', () => r({ status: res.statusCode ?? 0, body: b }));
    });
    req.on('error', j);
    if (data !== undefined) req.write(data);
    req.end();
  });
}

/** Run the real `vgpuctl` against `socket`; resolves with its exit code and output (never rejects). */
export function ctl(socket: string, ...args: string[]): Promise<{ code: number; out: string; err: string }> {
  return new Promise((r) => {
    execFile(process.execPath, [VGPUCTL, '--socket', socket, ...args], { cwd: root, env: binEnv() }, (error, stdout, stderr) => {
      r({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, out: stdout, err: stderr });
    });
  });
}

export function startDaemon(args: string[], readyText = 'vgpud ready', timeoutMs = 30_000, env: NodeJS.ProcessEnv = {}): Promise<Daemon> {
  const proc = spawn(process.execPath, [VGPUD, ...args], { cwd: root, env: { ...binEnv(), ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let text = '';
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  return new Promise((resolvePromise, reject) => {
    const timer = setTimeout(() => { proc.kill('SIGKILL'); reject(new Error(`daemon not ready in ${timeoutMs} ms:\n${text}`)); }, timeoutMs);
    const onData = (c: Buffer): void => {
      text += c.toString();
      if (text.includes(readyText)) { clearTimeout(timer); resolvePromise({ proc, out: () => text, exited }); }
    };
    proc.stdout!.on('data', onData);
    proc.stderr!.on('data', onData);
    void exited.then((code) => { clearTimeout(timer); reject(new Error(`daemon exited (${code}) before ready:\n${text}`)); });
  });
}
