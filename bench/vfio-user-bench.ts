// vfio-user benchmark (issue 11): one simulated RTX 6000 Ada in process mode (region file in /dev/shm), 32 -1Q vGPUs
// served by ONE device front process started the way the daemon starts it (VfioUserService, front: process), and a
// VMM stand-in in this process speaking hand-packed vfio-user (test/helpers/raw-vfio-user.ts).
//
//  1. Trapped MMIO: REGION_READ of NV_PMC_BOOT_0 (32-byte request, 36-byte reply), one at a time, p50/p99. Floor in
//     the same run: a bare Unix-socket ping-pong with the same message sizes against a server process built on the
//     same descriptor primitives with no protocol (bench/lib/echo-server.ts), started detached in a session of its
//     own as the front is. Rounds alternate which side goes first; p50/p99 over all rounds' samples; ratio = floor
//     p50 / ours p50 (target ≥ 0.8). Each round also prints the CPU per round trip of both servers and the client.
//  2. BAR1 write bandwidth through the client's mmap of the region's descriptor vs memcpy into the same kind of
//     memory (a /dev/shm file of the same size, mapped the same way); both pre-faulted, 5 alternating rounds, best
//     of each (target ≥ 0.95).
//  3. Migration over vfio-user of a filled -1Q vGPU to another one (source PRE_COPY passes with MIG_DATA_READ while
//     the guest writes BAR1 pages, STOP_COPY, destination RESUMING with MIG_DATA_WRITE, RUNNING); the front moves the FB
//     pages itself, the device state goes through the daemon. Floor = a bare copier process (bench/lib/copy-server.ts)
//     answering the same MIG_DATA_READ/WRITE messages from the same client code: the FB once, source slice to
//     destination slice, through the same kind of socket. Total, downtime (source STOP_COPY sent → destination RUNNING
//     answered), passes, ratio total/floor, and CPU per MiB moved of the front against the copier's.
//  4. RSS, idle CPU and wake-ups of the front process (all its threads) with 32 clients attached (5 s idle window).
// Env: VFIO_BENCH_N (MMIO round trips per round, default 20000), VFIO_BENCH_BAR1_MIB (256), VFIO_BENCH_RATE
// (guest writes during pre-copy, MiB/s, default 32), VFIO_BENCH_VGPUS (32, at least 3), VFIO_BENCH_MIGRATE=0 (skip 3).
// The migration also prints its own line as bench:migrate does: vfio-user-migrate: total_s=… downtime_ms=… precopy_passes=…
// ratio_total_to_floor=… floor_s=… front_cpu_ms_per_mib=… copier_cpu_ms_per_mib=… load=…
// Last line: vfio-user: mmio_p50_us=… mmio_p99_us=… floor_p50_us=… ratio_mmio=… bar1_gbps=… memcpy_gbps=…
//            ratio_bar1=… mig_total_s=… mig_downtime_ms=… mig_passes=… mig_floor_s=… ratio_mig_total_to_floor=…
//            front_rss_mib=… front_anon_mib=… front_idle_cpu_pct=… front_idle_wakeups_per_s=… load_start=… load_end=…
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { GpuRegistryImpl } from '../core/gpu-registry.js';
import { loadFdOps, type FdMap } from '../native/fd-ops.js';
import { LifecycleDeviceAccess } from '../plugins/lifecycle/lifecycle-device-access.js';
import { VfioMigrationPort } from '../plugins/migration/vfio-migration-port.js';
import { VfioUserService } from '../plugins/vfio-user/daemon/vfio-user-service.js';
import { ERROR, RawPeer, regionAccess, u32s, u64 } from '../test/helpers/raw-vfio-user.js';
import { loadNativeOps } from '../native/index.js';
import { alternate, cpuLine, kernelReport, load } from './lib/host.js';
import { startSimDaemon, type SimDaemon } from './lib/sim-daemon.js';
import { fmt } from './lib/timing.js';

const N = Number(process.env.VFIO_BENCH_N ?? 20_000);
const BAR1_BYTES = Number(process.env.VFIO_BENCH_BAR1_MIB ?? 256) << 20;
const RATE = Number(process.env.VFIO_BENCH_RATE ?? 32) << 20;
const GPU = '0000:8a:00.0';
const VGPUS = Math.max(3, Number(process.env.VFIO_BENCH_VGPUS ?? 32));
const ROUNDS = 5;
const EXT = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
const ops = loadFdOps();
const dir = mkdtempSync('/dev/shm/vgpud-vfio-user-bench-');
const undo: Array<[string, () => Promise<void> | void]> = [];
const pct = (xs: number[], p: number): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))]!;

/**
 * Undo everything, newest first. A ref'd timer per step keeps the process alive while the step's promise is
 * pending (a promise waiting on nothing would otherwise end the process mid-cleanup and leave the GB-sized region
 * in /dev/shm) and bounds it, saying which step did not finish.
 */
async function cleanup(): Promise<void> {
  for (const [name, f] of undo.splice(0).reverse()) {
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([f(), new Promise<void>((r) => { timer = setTimeout(() => { console.error(`cleanup: ${name} did not finish within 60 s`); r(); }, 60_000); })]);
    } catch (e) {
      console.error(`cleanup: ${name}: ${(e as Error).message}`);
    } finally {
      clearTimeout(timer);
    }
  }
  rmSync(dir, { recursive: true, force: true });
}

/** Sequential round trips; latencies in µs. */
async function pingPong(c: RawPeer, n: number): Promise<number[]> {
  const out = new Array<number>(n);
  const req = regionAccess(0, 0, 4);
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    await c.call(9, req);
    out[i] = Number(process.hrtime.bigint() - t0) / 1000;
  }
  return out;
}

/**
 * The floor's server, placed as the front is: the daemon starts the front detached, in a session of its own (it must
 * outlive the daemon), and with the kernel's autogroup scheduling (on by default) a session is a group of its own
 * that competes for a core as one. An echo server left in this process's session would be woken inside the client's
 * group instead — on a loaded host its wake-ups waited 2–7 µs on the run queue against the front's 10–40 µs, which
 * measured the scheduler, not the protocol. It exits when this process goes (its stdin closes).
 */
async function startEcho(path: string): Promise<number> {
  const child = spawn(process.execPath, [...(EXT === '.ts' ? ['--import', 'tsx'] : []), new URL(`./lib/echo-server${EXT}`, import.meta.url).pathname, path],
    { stdio: ['pipe', 'pipe', 'inherit'], detached: true });
  undo.push(['echo server', () => { child.kill('SIGKILL'); }]);
  await new Promise<void>((r, j) => {
    child.stdout!.once('data', () => r());
    child.once('exit', (code) => j(new Error(`echo server exited (${code})`)));
  });
  return child.pid!;
}

function bar1Map(c: RawPeer): Promise<FdMap> {
  return bar1Where(c).then((w) => w.map);
}

/** BAR1's mapping, and where its descriptor points: the FB file and the slice's offset in it (for the floor's copier). */
function bar1Where(c: RawPeer): Promise<{ map: FdMap; file: string; offset: number }> {
  return c.call(5, Buffer.concat([u32s(128, 0, 1, 0), u64(0), u64(0)])).then((ri) => {
    const fd = ri.fds[0];
    if (fd === undefined) throw new Error('BAR1 came without a descriptor');
    const offset = Number(ri.payload.readBigUInt64LE(24));
    const file = readlinkSync(`/proc/self/fd/${fd}`);
    const map = ops.mapFd(fd, offset, Number(ri.payload.readBigUInt64LE(56)), true);
    ops.closeFd(fd);
    return { map, file, offset };
  });
}

/** One pass copying `src` over the first bytes of `m`, in 64 MiB windows. */
function copyInto(m: FdMap, src: Buffer): void {
  const chunk = 64 << 20;
  for (let off = 0; off < src.length; off += chunk) src.copy(m.window(off, Math.min(chunk, src.length - off)), 0, off, Math.min(src.length, off + chunk));
}

/**
 * GB/s through the BAR1 mapping and into the floor's mapping: one untimed pass each (pre-fault), then 5 rounds
 * alternating which goes first (bench/lib/host.ts alternate), so a burst of host load hits both alike; best of each.
 */
async function copyRates(bar1: FdMap, floor: FdMap, src: Buffer): Promise<{ bar1: number; floor: number }> {
  copyInto(bar1, src);
  copyInto(floor, src);
  const r = await alternate(5, () => copyInto(floor, src), () => copyInto(bar1, src));
  return { bar1: src.length / Math.min(...r.subject) / 1e9, floor: src.length / Math.min(...r.floor) / 1e9 };
}

/**
 * RSS of a process, split: anonymous (its own heap — what the process costs), shared memory (pages of the device's
 * region file it touched, FB included — the device's memory, counted in every process that touches it).
 */
function procStat(pid: number): { rssMiB: number; anonMiB: number; shmemMiB: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string): number => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0) / 1024;
  return { rssMiB: kb('VmRSS'), anonMiB: kb('RssAnon'), shmemMiB: kb('RssShmem') };
}

/**
 * What a process's threads have had of the CPUs so far (/proc/PID/task/TID/schedstat): run time in ns and the
 * number of times a thread was put on a CPU (each wake-up is one). Sampled around a round, the first says what each
 * round trip costs the serving process — the figure that holds on a loaded host, where wall-clock latency is mostly
 * waiting for a core; sampled around an idle window, the second says whether anything in it still wakes up.
 */
function schedstat(pid: number): { ns: number; runs: number } {
  let ns = 0;
  let runs = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const f = readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ');
      ns += Number(f[0]);
      runs += Number(f[2]);
    } catch {
      // the thread ended between the listing and the read
    }
  }
  return { ns, runs };
}

const cpuNs = (pid: number): number => schedstat(pid).ns;

/** The front at rest: RSS now; CPU and wake-ups (all threads) over `ms` of wall time. */
async function atRest(pid: number, ms: number): Promise<{ rssMiB: number; anonMiB: number; shmemMiB: number; cpuPct: number; wakeupsPerS: number }> {
  const a = schedstat(pid);
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, ms));
  const b = schedstat(pid);
  const s = (performance.now() - t0) / 1000;
  return { ...procStat(pid), cpuPct: (b.ns - a.ns) / 1e9 / s * 100, wakeupsPerS: (b.runs - a.runs) / s };
}

const MIG_CHUNK = 1 << 20;

/**
 * MIG_DATA_READ `chunk`-byte pieces from `src` and MIG_DATA_WRITE each to `dst`, until a short answer (PRE_COPY: "no
 * more for now"), an empty one (STOP_COPY: the end) or `limit` bytes; the floor's copier answers the same messages.
 */
async function pump(src: RawPeer, dst: RawPeer, untilEmpty: boolean, limit = Infinity, chunk = MIG_CHUNK): Promise<number> {
  let total = 0;
  for (;;) {
    const want = Math.min(chunk, limit - total);
    const r = await src.call(17, u32s(8 + want, want));
    if ((r.flags & ERROR) !== 0) throw new Error(`MIG_DATA_READ errno ${r.errorNo}`);
    const n = r.payload.readUInt32LE(4);
    if (n > 0) {
      const w = await dst.call(18, Buffer.concat([u32s(8 + n, n), r.payload.subarray(8, 8 + n)]));
      if ((w.flags & ERROR) !== 0) throw new Error(`MIG_DATA_WRITE errno ${w.errorNo}`);
      total += n;
    }
    if (n === 0 || total >= limit || (!untilEmpty && n < want)) return total;
  }
}

async function migrate(src: RawPeer, dst: RawPeer, srcMap: FdMap): Promise<{ totalS: number; downtimeMs: number; passes: number; bytes: number }> {
  const set = async (c: RawPeer, state: number): Promise<void> => {
    const r = await c.call(16, u32s(16, (1 << 17) | 2, state, 0xffffffff));
    if ((r.flags & ERROR) !== 0) throw new Error(`MIG_DEVICE_STATE ${state}: errno ${r.errorNo}`);
  };
  let bytes = 0;
  // The guest keeps writing random BAR1 pages at RATE while pre-copy runs.
  const page = randomBytes(4096);
  const fbPages = Math.floor(srcMap.size / 4096);
  let writing = true;
  const writer = setInterval(() => {
    if (!writing) return;
    for (let i = 0; i < RATE / 4096 / 100; i++) page.copy(srcMap.window(4096 * Math.floor(Math.random() * fbPages), 4096));
  }, 10);
  src.keepReplies = dst.keepReplies = false;
  const t0 = performance.now();
  let passes = 0;
  await set(dst, 4);
  await set(src, 6);
  for (;;) {
    const p0 = performance.now();
    const n = await pump(src, dst, false);
    bytes += n;
    passes++;
    const ms = performance.now() - p0;
    console.log(`  pass ${passes}: ${fmt(n / 2 ** 20)} MiB in ${fmt(ms)} ms (${fmt(n / 2 ** 20 / (ms / 1000))} MiB/s)`);
    // The VMM's stop rule (QEMU's is "the rest fits the downtime limit"): a pass that carried less than 8 MiB.
    if (n < 8 << 20 || passes >= 8) break;
  }
  writing = false;
  clearInterval(writer);
  const stop0 = performance.now();
  await set(src, 3);
  const stop1 = performance.now();
  const last = await pump(src, dst, true);
  bytes += last;
  const stop2 = performance.now();
  await set(src, 1);
  const stop3 = performance.now();
  await set(dst, 2);
  const end = performance.now();
  console.log(`  stop: source STOP_COPY answered ${fmt(stop1 - stop0)} ms, the rest (${fmt(last / 2 ** 20)} MiB) read and written ${fmt(stop2 - stop1)} ms, ` +
    `source STOP ${fmt(stop3 - stop2)} ms, destination RUNNING (stream checked, firmware restored) ${fmt(end - stop3)} ms`);
  return { totalS: (end - t0) / 1000, downtimeMs: end - stop0, passes, bytes };
}

/**
 * The floor: the same FB bytes through the same kind of sockets by a bare copier process (bench/lib/copy-server.ts)
 * answering the same MIG_DATA_READ/WRITE messages from the same client code, two connections (source, destination)
 * as the subject has. Seconds.
 */
async function copyFloor(file: string, srcOffset: number, dstOffset: number, size: number): Promise<{ s: number; cpuS: number }> {
  const sock = join(dir, 'copier.sock');
  const child = spawn(process.execPath, [...(EXT === '.ts' ? ['--import', 'tsx'] : []), new URL(`./lib/copy-server${EXT}`, import.meta.url).pathname,
    sock, file, String(srcOffset), String(dstOffset), String(size)], { stdio: ['ignore', 'pipe', 'inherit'] });
  undo.push(['copier', () => { child.kill('SIGKILL'); }]);
  await new Promise<void>((r, j) => {
    child.stdout!.once('data', () => r());
    child.once('exit', (code) => j(new Error(`copier exited (${code})`)));
  });
  const src = RawPeer.connect(sock);
  const dst = RawPeer.connect(sock);
  src.keepReplies = dst.keepReplies = false;
  const t0 = performance.now();
  const c0 = cpuNs(child.pid!);
  const moved = await pump(src, dst, true, size);
  const s = (performance.now() - t0) / 1000;
  const cpuS = (cpuNs(child.pid!) - c0) / 1e9;
  console.log(`floor: ${size >> 20} MiB in ${fmt(s)} s; the copier used ${fmt(cpuS)} s of CPU`);
  src.close();
  dst.close();
  child.kill('SIGKILL');
  if (moved !== size) throw new Error(`the copier moved ${moved} of ${size} bytes`);
  return { s, cpuS };
}

let d: SimDaemon | undefined;
try {
  const loadStart = load();
  const report = kernelReport(loadNativeOps());
  console.log(`cpu: ${typeof report === 'string' ? report : cpuLine(report)}`);
  console.log(`host: load avg at start ${loadStart}`);
  // 32 × 1Q is an equal-size configuration: NVIDIA's mixed-size mode allows 16 of a 1 GiB type on a 48 GB board.
  d = await startSimDaemon({ bdf: GPU, dir: join(dir, 'sim'), fbBytes: 48n << 30n, policy: 'homogeneous' });
  const simPid = d.dev.descriptor.pid;
  undo.push(['simulated GPU', () => { try { process.kill(simPid, 'SIGKILL'); } catch { /* gone */ } }]);
  undo.push(['sim daemon', () => d!.stop()]);
  const registry = new GpuRegistryImpl();
  registry.add(d.gpu);
  const vfu = new VfioUserService();
  await vfu.start({
    svc: d.svc, access: new LifecycleDeviceAccess(d.svc), registry, bus: d.bus, migration: new VfioMigrationPort(d.mig), logger: d.logger,
    config: { dir: join(dir, 'sockets'), mode: 0o600, front: 'process' },
  });
  undo.push(['device fronts', () => vfu.shutdownFronts()]);
  const ids: string[] = [];
  for (let i = 0; i < VGPUS; i++) ids.push((await d.svc.create({ gpu: GPU, type: '1Q' })).id);
  const sockets: string[] = [];
  for (const id of ids) {
    for (;;) {
      const s = d.svc.get(id).vfioUser?.socket;
      if (s !== undefined) { sockets.push(s); break; }
      await new Promise((r) => setImmediate(r));
    }
  }
  const frontPid = vfu.frontPid(GPU)!;
  const clients: RawPeer[] = [];
  for (const s of sockets) {
    for (;;) {
      try {
        const c = RawPeer.connect(s);
        await c.version();
        clients.push(c);
        break;
      } catch {
        await new Promise((r) => setImmediate(r)); // the front is still creating the socket
      }
    }
  }
  undo.push(['clients', () => { for (const c of clients) c.close(); }]);
  console.log(`setup: ${VGPUS} × RTX6000-Ada-1Q served by one front process (pid ${frontPid}), ${clients.length} clients attached`);

  // 4 (first, before the runs touch FB through the front). The front at rest with 32 clients attached.
  const rest = await atRest(frontPid, 5000);
  console.log(`front at rest: ${clients.length} clients, RSS ${fmt(rest.rssMiB)} MiB (anonymous ${fmt(rest.anonMiB)}, device memory touched ${fmt(rest.shmemMiB)}), CPU ${fmt(rest.cpuPct)} % over 5 s, ${fmt(rest.wakeupsPerS)} wake-ups/s`);

  // 1. MMIO round trip vs bare ping-pong.
  const echoPath = join(dir, 'echo.sock');
  const echoPid = await startEcho(echoPath);
  const echo = RawPeer.connect(echoPath);
  undo.push(['echo client', () => echo.close()]);
  await pingPong(clients[0]!, 2000);
  await pingPong(echo, 2000);
  // Rounds alternate which side goes first; the figures pool every round's samples (no best-round picking). Next to
  // the latencies: CPU per round trip of the serving process (the front, the echo server) and of this client.
  const ours: number[] = [];
  const floor: number[] = [];
  const cpu = { ours: 0, floor: 0, oursClient: 0, floorClient: 0 };
  const measure = async (c: RawPeer, pid: number): Promise<{ lat: number[]; server: number; client: number }> => {
    const s0 = cpuNs(pid);
    const c0 = cpuNs(process.pid);
    const lat = await pingPong(c, N);
    return { lat, server: cpuNs(pid) - s0, client: cpuNs(process.pid) - c0 };
  };
  for (let r = 0; r < ROUNDS; r++) {
    let o: Awaited<ReturnType<typeof measure>>;
    let f: Awaited<ReturnType<typeof measure>>;
    if (r % 2 === 0) { o = await measure(clients[0]!, frontPid); f = await measure(echo, echoPid); }
    else { f = await measure(echo, echoPid); o = await measure(clients[0]!, frontPid); }
    console.log(`mmio round ${r + 1}: ours p50 ${fmt(pct(o.lat, 0.5))} µs p99 ${fmt(pct(o.lat, 0.99))} µs; floor p50 ${fmt(pct(f.lat, 0.5))} µs p99 ${fmt(pct(f.lat, 0.99))} µs; ratio ${fmt(pct(f.lat, 0.5) / pct(o.lat, 0.5))}; ` +
      `CPU per round trip: front ${fmt(o.server / N / 1000)} µs, echo server ${fmt(f.server / N / 1000)} µs (client ${fmt(o.client / N / 1000)} / ${fmt(f.client / N / 1000)} µs)`);
    ours.push(...o.lat);
    floor.push(...f.lat);
    cpu.ours += o.server;
    cpu.floor += f.server;
    cpu.oursClient += o.client;
    cpu.floorClient += f.client;
  }
  const per = (ns: number): number => ns / (N * ROUNDS) / 1000;
  console.log(`mmio CPU per round trip (all rounds): front ${fmt(per(cpu.ours))} µs vs echo server ${fmt(per(cpu.floor))} µs; ` +
    `client ${fmt(per(cpu.oursClient))} vs ${fmt(per(cpu.floorClient))} µs; ratio (floor total / ours total) ${fmt((cpu.floor + cpu.floorClient) / (cpu.ours + cpu.oursClient))}`);
  const mmioRatio = pct(floor, 0.5) / pct(ours, 0.5);

  // 2. BAR1 through the mmap vs memcpy into the same kind of memory.
  const src = randomBytes(Math.min(BAR1_BYTES, 1 << 30));
  const bar1 = await bar1Map(clients[2]!);
  undo.push(['BAR1 mapping', () => bar1.close()]);
  const shm = join(dir, 'memcpy-floor');
  writeFileSync(shm, '');
  const shmFd = ops.openFile(shm, true);
  (await import('node:fs')).ftruncateSync(shmFd, bar1.size);
  const floorMap = ops.mapFd(shmFd, 0, src.length, true);
  ops.closeFd(shmFd);
  undo.push(['memcpy floor mapping', () => floorMap.close()]);
  const { bar1: barRate, floor: memRate } = await copyRates(bar1, floorMap, src);
  console.log(`bar1: ${src.length >> 20} MiB through the BAR1 mmap ${fmt(barRate)} GB/s; memcpy into a /dev/shm mapping ${fmt(memRate)} GB/s; ratio ${fmt(barRate / memRate)}`);

  // 3. Migration over vfio-user, and its floor.
  let m = { totalS: NaN, downtimeMs: NaN, passes: 0, bytes: 0 };
  let floorS = NaN;
  let migCpu = { front: NaN, copier: NaN };
  if (process.env.VFIO_BENCH_MIGRATE !== '0') {
    const srcAt = await bar1Where(clients[0]!);
    const srcMap = srcAt.map;
    undo.push(['source BAR1 mapping', () => srcMap.close()]);
    const dstAt = await bar1Where(clients[1]!);
    dstAt.map.close();
    const fill = randomBytes(1 << 20);
    for (let off = 0; off + fill.length <= srcMap.size; off += fill.length) fill.copy(srcMap.window(off, fill.length));
    // The floor writes the destination slice too (as the migration will): both runs find its pages allocated.
    const floor = await copyFloor(srcAt.file, srcAt.offset, dstAt.offset, srcMap.size);
    floorS = floor.s;
    const c0 = cpuNs(frontPid);
    m = await migrate(clients[0]!, clients[1]!, srcMap);
    const frontCpuS = (cpuNs(frontPid) - c0) / 1e9;
    console.log(`migration: the front (both ends) used ${fmt(frontCpuS)} s of CPU`);
    // CPU per MiB moved, the front (both ends of the stream) against the copier (both ends of the plain copy): what a
    // busy host cannot blur the way it blurs wall time.
    migCpu = { front: frontCpuS * 1000 / (m.bytes / 2 ** 20), copier: floor.cpuS * 1000 / (srcMap.size / 2 ** 20) };
    const dstMap = await bar1Map(clients[1]!);
    let same = true;
    for (let off = 0; off < srcMap.size && same; off += 64 << 20) {
      const n = Math.min(64 << 20, srcMap.size - off);
      same = srcMap.window(off, n).equals(dstMap.window(off, n));
    }
    dstMap.close();
    console.log(`migration: ${srcMap.size >> 20} MiB FB, ${m.passes} pre-copy passes, ${fmt(m.bytes / 2 ** 20)} MiB of stream, total ${fmt(m.totalS)} s, downtime ${fmt(m.downtimeMs)} ms; floor (the FB by a bare copier answering the same MIG_DATA_READ/WRITE messages) ${fmt(floorS)} s; destination FB ${same ? 'identical' : 'DIFFERENT'}`);
    console.log(`vfio-user-migrate: total_s=${fmt(m.totalS)} downtime_ms=${fmt(m.downtimeMs)} precopy_passes=${m.passes} ratio_total_to_floor=${fmt(m.totalS / floorS)} floor_s=${fmt(floorS)} ` +
      `fb_mib=${srcMap.size >> 20} stream_mib=${fmt(m.bytes / 2 ** 20)} rate_mib_s=${RATE >> 20} front_cpu_ms_per_mib=${fmt(migCpu.front)} copier_cpu_ms_per_mib=${fmt(migCpu.copier)} ` +
      `identical=${same ? 1 : 0} load="${load()}"`);
    if (!same) process.exitCode = 1;
    await clients[0]!.call(16, u32s(16, (1 << 17) | 2, 2, 0xffffffff)); // the source runs again (for the idle figure)
  }

  const rest2 = await atRest(frontPid, 5000);
  console.log(`front at rest after the runs: RSS ${fmt(rest2.rssMiB)} MiB (anonymous ${fmt(rest2.anonMiB)}, device memory touched ${fmt(rest2.shmemMiB)}), CPU ${fmt(rest2.cpuPct)} % over 5 s, ${fmt(rest2.wakeupsPerS)} wake-ups/s`);

  console.log(`vfio-user: mmio_p50_us=${fmt(pct(ours, 0.5))} mmio_p99_us=${fmt(pct(ours, 0.99))} floor_p50_us=${fmt(pct(floor, 0.5))} ratio_mmio=${fmt(mmioRatio)} floor_p99_us=${fmt(pct(floor, 0.99))} ` +
    `mmio_front_cpu_us=${fmt(per(cpu.ours))} floor_server_cpu_us=${fmt(per(cpu.floor))} ratio_mmio_cpu=${fmt((cpu.floor + cpu.floorClient) / (cpu.ours + cpu.oursClient))} ` +
    `bar1_gbps=${fmt(barRate)} memcpy_gbps=${fmt(memRate)} ratio_bar1=${fmt(barRate / memRate)} ` +
    `mig_total_s=${fmt(m.totalS)} mig_downtime_ms=${fmt(m.downtimeMs)} mig_passes=${m.passes} mig_floor_s=${fmt(floorS)} ratio_mig_total_to_floor=${fmt(m.totalS / floorS)} ` +
    `front_rss_mib=${fmt(rest.rssMiB)} front_anon_mib=${fmt(rest.anonMiB)} front_idle_cpu_pct=${fmt(rest.cpuPct)} front_idle_wakeups_per_s=${fmt(rest.wakeupsPerS)} load_start="${loadStart}" load_end="${load()}"`);
} finally {
  await cleanup();
}
