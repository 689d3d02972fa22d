// Fleet scale (issue 15 item 6): the REAL daemon (bin/vgpud.mjs, every built-in plugin, default logging) over 8
// simulated RTX 6000 Ada in process mode (8 vgpu-sim processes, each the board's full 48 GiB FB as a sparse file in a
// private /dev/shm directory — sparse, so nothing is committed until written), 32 vGPUs on each: the -1Q type, the
// only RTX 6000 Ada type with 32 instances per GPU.
//
// Measured, in order:
//  1. idle CPU (% of one core) and RSS of the daemon and of each vgpu-sim with 0 vGPUs, over IDLE_SECONDS (default 30)
//     after SETTLE_SECONDS (default 15) of quiet;
//  2. 256 creates through the API (POST /v1/vgpus, one vGPU per request; the 8 GPUs in parallel, one request at a
//     time per GPU): total time and per-create p50/p99 as the client saw them;
//  3. GET /v1/vgpus (256 entries) p50/p99 over GET_N requests (default 200), one at a time;
//  4. idle CPU and RSS again with the 256 vGPUs, after SETTLE_SECONDS, over IDLE_SECONDS — the acceptance figures;
//  5. kill -9 of the daemon, and a restart until `GET /v1/vgpus` lists all 256 ready again (time).
// /proc gives the CPU times and RSS; the host's load average and CPU model are printed, because these machines are
// shared: the same-run 0-vGPU figures are the reference a reader compares with (what 256 vGPUs add).
// Last line: scale: create_total_s=… create_p50_ms=… create_p99_ms=… list_p50_ms=… list_p99_ms=…
//   daemon_idle_cpu_pct=… daemon_rss_mib=… sim_idle_cpu_pct_max=… sim_rss_mib_max=… restart_to_ready_s=…
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Agent } from 'node:http';
import { join, resolve } from 'node:path';
import { startSimDevice, type SimDeviceHandle } from '../hal/ada-lovelace/sim/start-sim-device.js';
import { socketHttp } from '../test/e2e/helpers/daemon-harness.js';
import { cpuModel, idleWindow, loadAverage, percentile } from './lib/proc-stats.js';

const GPUS = Number(process.env['SCALE_GPUS'] ?? 8);
const PER_GPU = Number(process.env['SCALE_VGPUS_PER_GPU'] ?? 32);
const IDLE_SECONDS = Number(process.env['IDLE_SECONDS'] ?? 30);
/**
 * Quiet time before each idle window: right after a burst V8's memory reducer runs a few GCs over several seconds
 * (that is what gives the burst's memory back); idle is what follows. A periodic cost would show in the window anyway.
 */
const SETTLE_SECONDS = Number(process.env['SETTLE_SECONDS'] ?? 15);
const GET_N = Number(process.env['GET_N'] ?? 200);
const TYPE = process.env['SCALE_TYPE'] ?? '1Q';
const root = resolve(import.meta.dirname, '..');
const VGPUD = join(root, 'bin/vgpud.mjs');
/**
 * Node flags the daemon runs with (SCALE_NODE_FLAGS, space-separated): by default those of docs/vgpud.service
 * (`--max-semi-space-size=1`; bin/vgpud.mjs also sets it at run time, less thoroughly — `SCALE_NODE_FLAGS=` measures that).
 */
const DAEMON_NODE_FLAGS = (process.env['SCALE_NODE_FLAGS'] ?? '--max-semi-space-size=1').split(' ').filter((f) => f !== '');
const bdfOf = (i: number): string => `0000:${(0x41 + i).toString(16)}:00.0`;
const fmt = (x: number, d = 2): string => x.toFixed(d);
const mib = (b: number): number => b / 2 ** 20;

interface Daemon { proc: ChildProcess; exited: Promise<void> }

function startDaemon(args: string[], logFile: string): Promise<Daemon> {
  const proc = spawn(process.execPath, [...DAEMON_NODE_FLAGS, VGPUD, ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  const log = createWriteStream(logFile, { flags: 'a' });
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  return new Promise((resolvePromise, reject) => {
    let tail = '';
    const onData = (c: Buffer): void => {
      log.write(c);
      tail = (tail + c.toString()).slice(-4096);
      if (tail.includes('vgpud ready')) resolvePromise({ proc, exited });
    };
    proc.stdout!.on('data', onData);
    proc.stderr!.on('data', onData);
    void exited.then(() => reject(new Error(`vgpud exited before it was ready; see ${logFile}`)));
  });
}

const http = (socket: string, agent: Agent, method: string, path: string, body?: unknown): Promise<{ status: number; body: string }> =>
  socketHttp(socket, method, path, body, agent);

const settle = (): Promise<void> => new Promise((r) => setTimeout(r, SETTLE_SECONDS * 1000));

async function main(): Promise<void> {
  const dir = mkdtempSync('/dev/shm/vgpud-scale-');
  const simDir = join(dir, 'sim');
  const socket = join(dir, 'vgpud.sock');
  const state = join(dir, 'state');
  const config = join(dir, 'vgpud.yaml');
  const logFile = join(dir, 'vgpud.log');
  const sims: SimDeviceHandle[] = [];
  let daemon: Daemon | undefined;
  const agent = new Agent({ keepAlive: true, maxSockets: GPUS });
  try {
    console.log(`scale: ${GPUS} simulated RTX 6000 Ada (process mode, 48 GiB sparse FB each) × ${PER_GPU} × -${TYPE}; daemon node flags: ${DAEMON_NODE_FLAGS.join(' ') || '(none)'}; CPU ${cpuModel()}; load ${loadAverage()}`);
    for (let i = 0; i < GPUS; i++) sims.push(await startSimDevice({ board: 'rtx6000-ada', bdf: bdfOf(i), mode: 'process', dir: simDir }));
    writeFileSync(config, [
      'logging: {format: json, level: info}',
      'plugins:',
      '  hal-ada-lovelace:',
      '    devices:',
      ...sims.map((s) => `      - {board: rtx6000-ada, bdf: "${s.descriptor.bdf}", mode: process, dir: "${simDir}"}`),
      '',
    ].join('\n'));
    const args = ['--config', config, '--socket', socket, '--state-dir', state];
    daemon = await startDaemon(args, logFile);
    const simPids = sims.map((s) => s.descriptor.pid);

    await settle();
    const idle0 = await idleWindow([daemon.proc.pid!, ...simPids], IDLE_SECONDS);
    console.log(`idle, 0 vGPUs (${IDLE_SECONDS} s after ${SETTLE_SECONDS} s quiet): daemon ${fmt(idle0[0]!.cpuPct)} % of a core, RSS ${fmt(mib(idle0[0]!.rss), 1)} MiB; `
      + `vgpu-sim max ${fmt(Math.max(...idle0.slice(1).map((x) => x.cpuPct)))} %, RSS max ${fmt(mib(Math.max(...idle0.slice(1).map((x) => x.rss))), 1)} MiB; load ${loadAverage()}`);

    // 2. creates
    const lat: number[] = [];
    const t0 = performance.now();
    await Promise.all(sims.map(async (s) => {
      for (let k = 0; k < PER_GPU; k++) {
        const a = performance.now();
        const r = await http(socket, agent, 'POST', '/v1/vgpus', { gpu: s.descriptor.bdf, type: TYPE });
        lat.push(performance.now() - a);
        if (r.status !== 200 && r.status !== 201) throw new Error(`create on ${s.descriptor.bdf} failed (${r.status}): ${r.body}`);
      }
    }));
    const createTotal = (performance.now() - t0) / 1000;
    console.log(`creates: ${lat.length} in ${fmt(createTotal)} s (${fmt(lat.length / createTotal, 1)}/s), per create p50 ${fmt(percentile(lat, 50))} ms p99 ${fmt(percentile(lat, 99))} ms; load ${loadAverage()}`);

    // 3. list
    const listLat: number[] = [];
    for (let i = 0; i < GET_N; i++) {
      const a = performance.now();
      const r = await http(socket, agent, 'GET', '/v1/vgpus');
      listLat.push(performance.now() - a);
      if (r.status !== 200) throw new Error(`GET /v1/vgpus failed (${r.status})`);
      if (i === 0) {
        const n = (JSON.parse(r.body) as { vgpus: { state: string }[] }).vgpus.filter((v) => v.state === 'ready').length;
        if (n !== GPUS * PER_GPU) throw new Error(`expected ${GPUS * PER_GPU} ready vGPUs, the daemon lists ${n}`);
      }
    }
    console.log(`GET /v1/vgpus (${GPUS * PER_GPU} vGPUs): p50 ${fmt(percentile(listLat, 50))} ms p99 ${fmt(percentile(listLat, 99))} ms over ${GET_N}`);
    agent.destroy(); // idle means idle: no keep-alive connection either

    // 4. idle with every vGPU
    await settle();
    const idle = await idleWindow([daemon.proc.pid!, ...simPids], IDLE_SECONDS);
    const d = idle[0]!;
    const simCpuMax = Math.max(...idle.slice(1).map((x) => x.cpuPct));
    const simRssMax = Math.max(...idle.slice(1).map((x) => x.rss));
    console.log(`idle, ${GPUS * PER_GPU} vGPUs (${IDLE_SECONDS} s after ${SETTLE_SECONDS} s quiet): daemon ${fmt(d.cpuPct)} % of a core (target ≤ 1), RSS ${fmt(mib(d.rss), 1)} MiB (target ≤ 150; `
      + `${fmt(mib(d.rss - idle0[0]!.rss), 1)} MiB more than with 0 vGPUs); vgpu-sim: ${idle.slice(1).map((x) => `${fmt(x.cpuPct)}%/${fmt(mib(x.rss), 0)}MiB`).join(' ')}; load ${loadAverage()}`);

    // 5. kill -9 and restart until all are ready again
    daemon.proc.kill('SIGKILL');
    await daemon.exited;
    const r0 = performance.now();
    daemon = await startDaemon(args, logFile);
    const check = new Agent({ keepAlive: false });
    const list = await http(socket, check, 'GET', '/v1/vgpus');
    const ready = (JSON.parse(list.body) as { vgpus: { state: string }[] }).vgpus.filter((v) => v.state === 'ready').length;
    const restart = (performance.now() - r0) / 1000;
    if (ready !== GPUS * PER_GPU) throw new Error(`after the restart ${ready} of ${GPUS * PER_GPU} vGPUs are ready; see ${logFile}`);
    console.log(`kill -9 + restart: all ${ready} vGPUs ready again after ${fmt(restart)} s; load ${loadAverage()}`);
    console.log(`scale: create_total_s=${fmt(createTotal)} create_p50_ms=${fmt(percentile(lat, 50))} create_p99_ms=${fmt(percentile(lat, 99))} `
      + `list_p50_ms=${fmt(percentile(listLat, 50))} list_p99_ms=${fmt(percentile(listLat, 99))} daemon_idle_cpu_pct=${fmt(d.cpuPct)} `
      + `daemon_rss_mib=${fmt(mib(d.rss), 1)} daemon_idle_cpu_pct_0vgpu=${fmt(idle0[0]!.cpuPct)} daemon_rss_mib_0vgpu=${fmt(mib(idle0[0]!.rss), 1)} `
      + `sim_idle_cpu_pct_max=${fmt(simCpuMax)} sim_rss_mib_max=${fmt(mib(simRssMax), 1)} restart_to_ready_s=${fmt(restart)} `
      + `met=${d.cpuPct <= 1 && mib(d.rss) <= 150 ? 'yes' : 'no'}`);
  } finally {
    if (daemon !== undefined && daemon.proc.exitCode === null && daemon.proc.signalCode === null) {
      daemon.proc.kill('SIGKILL');
      await daemon.exited;
    }
    for (const s of sims) await s.stop().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
