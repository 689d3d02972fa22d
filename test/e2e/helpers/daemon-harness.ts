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
import { RPC_GUARD_MS } from '../../helpers/guard-timeouts.js';

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

export interface Daemon {
  proc: ChildProcess;
  /** Everything the process wrote so far (stdout and stderr interleaved). */
  out: () => string;
  exited: Promise<number | null>;
  /**
   * Resolves with the first match of `pattern` in the output from character `from` on (default 0; pass
   * `out().length` taken BEFORE the action whose output you wait for). Rejects when the process exits first.
   */
  waitFor(pattern: RegExp, from?: number): Promise<RegExpMatchArray>;
}

export interface StartOptions {
  /** Output that means "ready" (default 'vgpud ready'). */
  readyText?: string | RegExp;
  /** Guard against hanging forever, not a performance bound. */
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  /** Run as this user (tests running as root start an operator's unprivileged daemon). */
  uid?: number;
  gid?: number;
  /** The program and its first arguments instead of `node bin/vgpud.mjs` (e.g. ['npm', 'start', '--']). */
  command?: [string, ...string[]];
}

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
  /** Start the daemon on this harness's socket and state dir with `args` (e.g. another --config). */
  startWith(args: string[], opts?: StartOptions): Promise<Daemon>;
  ctl(...args: string[]): Promise<{ code: number; out: string; err: string }>;
  http(method: string, path: string, body?: unknown, agent?: Agent): Promise<{ status: number; body: string }>;
  /**
   * Wait for the first bus event on /v1/events that matches; resolves with it (the stream is closed). `events` is the
   * stream's filter (default vgpu:step,vgpu:state).
   */
  waitEvent(match: (e: { event: string; data: Record<string, unknown> }) => boolean, timeoutMs?: number, events?: string): Promise<{ ready: Promise<void>; event: Promise<Record<string, unknown>> }>;
  close(): Promise<void>;
}

export interface HarnessOptions {
  /** PCI address of the simulated GPU (default GPU). */
  bdf?: string;
  /** Extra lines under `plugins:` of the config (two-space indented; `dir` is the harness's temp dir). */
  pluginLines?: (dir: string) => string[];
}

export async function createHarness(prefix: string, opts: HarnessOptions = {}): Promise<Harness> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const simDir = join(dir, 'sim');
  const bdf = opts.bdf ?? GPU;
  const sim = await startSimDevice({ board: 'rtx6000-ada', bdf, mode: 'process', dir: simDir, startTimeoutMs: RPC_GUARD_MS });
  const socket = join(dir, 'vgpud.sock');
  const state = join(dir, 'state');
  const config = join(dir, 'vgpud.yaml');
  writeFileSync(config, [
    'logging: {format: human, level: info}',
    // Device-call timeouts as guards only (test/helpers/guard-timeouts.ts): these tests are not about timeouts.
    `timeouts: {rpcMs: ${RPC_GUARD_MS}, bootloadMs: ${RPC_GUARD_MS}, scrubMs: ${RPC_GUARD_MS}}`,
    'plugins:',
    '  hal-ada-lovelace:',
    `    devices: [{board: rtx6000-ada, bdf: "${bdf}", mode: process, dir: "${simDir}"}]`,
    ...(opts.pluginLines?.(dir) ?? []),
    '',
  ].join('\n'));
  const h: Harness = {
    dir, simDir, socket, state, config, sim, daemon: undefined,
    start: () => h.startWith(['--config', config]),
    async startWith(args, opts) {
      h.daemon = await startDaemon([...args, '--socket', socket, '--state-dir', state], opts);
      return h.daemon;
    },
    ctl: (...args) => ctl(socket, ...args),
    http: (method, path, body, agent) => socketHttp(socket, method, path, body, agent),
    waitEvent: (match, timeoutMs, events) => waitEventOn(socket, match, timeoutMs, events),
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

/**
 * Wait for the first bus event of `events` on `socket`'s /v1/events that matches: `ready` once the stream is open
 * (subscribe before acting), `event` with the match's data (the stream is closed then).
 */
export async function waitEventOn(
  socket: string, match: (e: { event: string; data: Record<string, unknown> }) => boolean, timeoutMs = 120_000, events = 'vgpu:step,vgpu:state',
): Promise<{ ready: Promise<void>; event: Promise<Record<string, unknown>> }> {
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
}

/** Run the real `vgpuctl` against `socket`; resolves with its exit code and output (never rejects). */
export function ctl(socket: string, ...args: string[]): Promise<{ code: number; out: string; err: string }> {
  return vgpuctl(['--socket', socket, ...args]);
}

/** Run the real `vgpuctl` with `args` as given (no --socket: it finds the socket as an operator's would). */
export function vgpuctl(args: string[], opts: { env?: NodeJS.ProcessEnv; uid?: number; gid?: number } = {}): Promise<{ code: number; out: string; err: string }> {
  return new Promise((r) => {
    execFile(process.execPath, [VGPUCTL, ...args], { cwd: root, ...opts, env: opts.env !== undefined ? { VGPUD_RUN_FROM: runFrom, ...opts.env } : binEnv() }, (error, stdout, stderr) => {
      r({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, out: stdout, err: stderr });
    });
  });
}

export function startDaemon(args: string[], opts: StartOptions = {}): Promise<Daemon> {
  const [cmd, ...first] = opts.command ?? [process.execPath, VGPUD];
  const proc = spawn(cmd, [...first, ...args], {
    cwd: root, stdio: ['ignore', 'pipe', 'pipe'],
    env: opts.env !== undefined ? { VGPUD_RUN_FROM: runFrom, ...opts.env } : binEnv(), ...(opts.uid !== undefined ? { uid: opts.uid, gid: opts.gid ?? opts.uid } : {}),
  });
  let text = '';
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  const waiters = new Set<() => void>();
  const waitFor = (pattern: RegExp, from = 0): Promise<RegExpMatchArray> => new Promise((resolveWait, rejectWait) => {
    const check = (): void => {
      const m = text.slice(from).match(pattern);
      if (m !== null) { waiters.delete(check); resolveWait(m); }
    };
    waiters.add(check);
    check();
    void exited.then((code) => {
      if (!waiters.has(check)) return;
      waiters.delete(check);
      rejectWait(new Error(`process exited (${code}) before printing ${String(pattern)}:\n${text}`));
    });
  });
  const onData = (c: Buffer): void => {
    text += c.toString();
    for (const w of [...waiters]) w();
  };
  proc.stdout!.on('data', onData);
  proc.stderr!.on('data', onData);
  const ready = opts.readyText ?? 'vgpud ready';
  const timeoutMs = opts.timeoutMs ?? 120_000;
  return new Promise((resolvePromise, reject) => {
    const timer = setTimeout(() => { proc.kill('SIGKILL'); reject(new Error(`daemon not ready in ${timeoutMs} ms:\n${text}`)); }, timeoutMs);
    waitFor(typeof ready === 'string' ? new RegExp(ready.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')) : ready).then(() => {
      clearTimeout(timer);
      resolvePromise({ proc, out: () => text, exited, waitFor });
    }, (e: unknown) => { clearTimeout(timer); reject(e as Error); });
  });
}
