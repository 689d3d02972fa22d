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

export interface Daemon { proc: ChildProcess; out: () => string; exited: Promise<number | null> }

export interface Harness {
  dir: string;
  socket: string;
  state: string;
  config: string;
  sim: SimDeviceHandle;
  daemon: Daemon | undefined;
  start(): Promise<Daemon>;
  ctl(...args: string[]): Promise<{ code: number; out: string; err: string }>;
  http(method: string, path: string, body?: unknown, agent?: Agent): Promise<{ status: number; body: string }>;
  /** Wait for the first bus event on /v1/events that matches; resolves with it (the stream is closed). */
  waitEvent(match: (e: { event: string; data: Record<string, unknown> }) => boolean, timeoutMs?: number): Promise<{ ready: Promise<void>; event: Promise<Record<string, unknown>> }>;
  close(): Promise<void>;
}

export async function createHarness(prefix: string): Promise<Harness> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const simDir = join(dir, 'sim');
  const sim = await startSimDevice({ board: 'rtx6000-ada', bdf: GPU, mode: 'process', dir: simDir });
  const socket = join(dir, 'vgpud.sock');
  const state = join(dir, 'state');
  const config = join(dir, 'vgpud.yaml');
  writeFileSync(config, [
    'logging: {format: human, level: info}',
    'plugins:',
    '  hal-ada-lovelace:',
    `    devices: [{board: rtx6000-ada, bdf: "${GPU}", mode: process, dir: "${simDir}"}]`,
    '',
  ].join('\n'));
  const h: Harness = {
    dir, socket, state, config, sim, daemon: undefined,
    async start() {
      h.daemon = await startDaemon(['--config', config, '--socket', socket, '--state-dir', state]);
      return h.daemon;
    },
    ctl: (...args) => ctl(socket, ...args),
    http: (method, path, body, agent) => httpOn(socket, method, path, body, agent),
    waitEvent: (match, timeoutMs) => waitEventOn(socket, match, timeoutMs),
    async close() {
      if (h.daemon !== undefined && h.daemon.proc.exitCode === null && h.daemon.proc.signalCode === null) {
        h.daemon.proc.kill('SIGKILL');
        await h.daemon.exited;
      }
      await sim.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return h;
}

/** One HTTP request to the control API on `socket` (a string body is sent as text/plain, anything else as JSON). */
export function httpOn(socket: string, method: string, path: string, body?: unknown, agent?: Agent): Promise<{ status: number; body: string }> {
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

/** Wait for the first bus event on `socket`'s /v1/events that matches; resolves with it (the stream is closed). */
export async function waitEventOn(socket: string, match: (e: { event: string; data: Record<string, unknown> }) => boolean, timeoutMs = 20_000):
  Promise<{ ready: Promise<void>; event: Promise<Record<string, unknown>> }> {
  let onReady!: () => void;
  const ready = new Promise<void>((r) => { onReady = r; });
  const event = new Promise<Record<string, unknown>>((resolveEvent, reject) => {
    const req = request({ socketPath: socket, path: '/v1/events?events=vgpu:step,vgpu:state', method: 'GET' }, (res) => {
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
}

/** Run the real `vgpuctl` against `socket`; resolves with its exit code and output (never rejects). */
export function ctl(socket: string, ...args: string[]): Promise<{ code: number; out: string; err: string }> {
  return new Promise((r) => {
    execFile(process.execPath, [VGPUCTL, '--socket', socket, ...args], { cwd: root }, (error, stdout, stderr) => {
      r({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, out: stdout, err: stderr });
    });
  });
}

export function startDaemon(args: string[], readyText = 'vgpud ready', timeoutMs = 30_000): Promise<Daemon> {
  const proc = spawn(process.execPath, [VGPUD, ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
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
