// Live-migration benchmark, vGPU LEVEL: a real vGPU on one simulated RTX 6000 Ada (process-mode simulator, sparse
// region file in /dev/shm) migrates to a second simulated GPU owned by another "daemon" process, through
// MigrationService.migrateVgpu(id, {to: <unix socket>}) — what `vgpuctl migrate <id> --to <socket>` runs in the
// daemon — and that daemon's real incoming-migration listener. A guest-writer worker dirties the source FB at
// MIGRATE_RATE MiB/s (random pages, with a dirty log the service reads). The floor, measured in the same run, is
// a plain copy of the same FB bytes over the same kind of socket (created the same way, same write pacing as the
// stream encoder) into a fresh vGPU FB of the same type on the destination GPU.
// Env: MIGRATE_GIB (4: the smallest Q type whose guest FB is ≥ that many GiB; RTX6000-Ada-6Q = 5.8 GiB for 4, as
// the board has no type of exactly 4 GiB — 4Q is 3968 MiB), MIGRATE_TYPE (a type name instead, e.g. 4Q),
// MIGRATE_RATE (256 MiB/s), MIGRATE_DIRTY (log|hash: the guest's dirty log, or page hashes when the guest keeps
// none), MIGRATE_FILL (1 = whole FB holds non-zero data; 0 = fresh FB, only what the guest writes is non-zero),
// MIGRATE_DOWNTIME_MS (100: the downtime limit the migration must keep — issue 15's target; the daemon's own default
// is QEMU's 300 ms), MIGRATE_LEVEL=arena for the engine-only benchmark (bench/lib/migrate-arena.ts).
// MIGRATE_TIMEOUT_S (280: the bench gives up, kills its children and removes its /dev/shm dir; SIGINT/SIGTERM do
// the same).
// Last line: migrate: total_s=… downtime_ms=… precopy_passes=… ratio_total_to_floor=… limit_ms=… fill=1 peak_rss_mib=…
// The fresh-FB case (MIGRATE_FILL=0, or `npm run bench:migrate-fresh`) has its own line: migrate-fresh: total_s=…
// downtime_ms=… passes=… peak_rss_mib=… … dest_prefault=… (how the destination's FB pre-fault ended). Peaks are
// of the migrating (source) process during the migration: all of its RSS, its private part (anon) and the FB pages it maps (shmem: the simulated VRAM it read or the guest wrote).
import { fork, type ChildProcess } from 'node:child_process';
import { createConnection, type Socket } from 'node:net';
import { closeSync, openSync, readFileSync, readdirSync, readSync, rmSync } from 'node:fs';
import { loadNativeOps } from '../native/index.js';
import type { SharedArena } from '../native/native-ops.js';
import { DirtyLogSource, dirtyLogBytes } from '../plugins/migration/dirty-log.js';
import { GuestWriter } from '../plugins/migration/guest-writer.js';
import { fbLocation, migDevice, startSimDaemon, touchFb, type SimDaemon } from './lib/sim-daemon.js';
import { cpuModel, cpuSeconds, loadAverage, rssPeaks } from './lib/proc-stats.js';

const PS = 4096;
const GiB = 1n << 30n;

if (process.env.MIGRATE_LEVEL === 'arena') {
  await (await import('./lib/migrate-arena.js')).runArenaBench();
  process.exit(process.exitCode ?? 0);
}

/** Things to undo at the end, newest first, whatever happened. */
const undo: (() => Promise<void> | void)[] = [];
async function cleanup(): Promise<void> {
  for (const f of undo.splice(0).reverse()) {
    try { await f(); } catch (e) { console.error(`cleanup: ${(e as Error).message}`); }
  }
}

/** Every child process (daemon, simulators) and every path this run made: what a hard stop kills and removes. */
const children = new Set<number>();
const paths: string[] = [];
/** Named in the argv of every process this run starts (the region dir): how a hard stop finds them all. */
const TAG = `vgpud-migbench-${process.pid}`;

/**
 * Processes whose command line names this run's tag: the destination daemon and both simulators, also one whose
 * pid was not reported yet (a timeout during start-up left the destination's simulator running).
 */
function taggedProcesses(): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d) || Number(d) === process.pid) continue;
    try { if (readFileSync(`/proc/${d}/cmdline`, 'latin1').includes(TAG)) out.push(Number(d)); } catch { /* gone */ }
  }
  return out;
}

/**
 * Stop NOW (signal or the bench's own timeout): the graceful undo may wait on a migration in flight, so kill the
 * children by pid and remove the sparse region dir (18 GiB of /dev/shm once left behind by a killed run) first.
 */
function hardStop(why: string, line: string): never {
  for (const pid of new Set([...children, ...taggedProcesses()])) killPid(pid);
  for (const p of paths) rmSync(p, { recursive: true, force: true });
  console.log(`${why}: children killed, ${paths.join(', ') || 'nothing'} removed`);
  console.log(line);
  process.exit(1);
}

function killPid(pid: number | undefined): void {
  if (pid === undefined || pid === process.pid) return;
  try { process.kill(pid, 'SIGKILL'); } catch { /* already gone */ }
}

/** Lines of JSON from a socket. */
function lines(s: Socket): () => Promise<Record<string, unknown>> {
  let buf = '';
  const q: Record<string, unknown>[] = [];
  const w: ((v: Record<string, unknown>) => void)[] = [];
  const push = (v: Record<string, unknown>): void => { const f = w.shift(); if (f) f(v); else q.push(v); };
  s.on('data', (d: Buffer) => {
    buf += d.toString();
    for (let i; (i = buf.indexOf('\n')) >= 0; buf = buf.slice(i + 1)) push(JSON.parse(buf.slice(0, i)) as Record<string, unknown>);
  });
  s.on('close', () => push({ op: 'error', message: 'connection closed' }));
  return () => new Promise((r) => { const v = q.shift(); if (v) r(v); else w.push(r); });
}

/** The destination daemon child; resolves once it listens. */
async function startDestination(args: string[]): Promise<{ child: ChildProcess; simPid: number; hash(vgpu: string): Promise<{ hash: string; base: string }> }> {
  const child = fork(new URL('./lib/migrate-dest-daemon.ts', import.meta.url), args, { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  if (child.pid !== undefined) children.add(child.pid);
  undo.push(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    if (child.connected) child.send({ op: 'stop' });
    const t = setTimeout(() => child.kill('SIGKILL'), 30_000);
    await exited;
    clearTimeout(t);
  });
  const pending = new Map<string, (v: { hash: string; base: string }) => void>();
  const ready = new Promise<number>((resolve, reject) => {
    child.on('message', (m: { op: string; simPid?: number; message?: string; vgpu?: string; hash?: string; base?: string }) => {
      if (m.op === 'ready') resolve(m.simPid!);
      else if (m.op === 'fatal') reject(new Error(`destination daemon failed: ${m.message}`));
      else if (m.op === 'hash') pending.get(m.vgpu!)?.({ hash: m.hash!, base: m.base! });
    });
    child.once('exit', (code) => reject(new Error(`destination daemon exited (${code})`)));
  });
  const simPid = await ready;
  children.add(simPid);
  undo.push(() => killPid(simPid)); // runs after the child's own stop (undo is newest first): only a leftover dies
  return {
    child, simPid,
    hash: (vgpu) => new Promise((r) => { pending.set(vgpu, r); child.send({ op: 'hash', vgpu }); }),
  };
}

/** Per-page hashes of an FB range, folded into one value (equal = page for page equal). */
async function fbDigest(arena: SharedArena, base: bigint, size: bigint): Promise<string> {
  const h = await arena.hashPages(base, size, PS);
  return loadNativeOps().hashBuffers([new Uint8Array(h.buffer, h.byteOffset, h.byteLength)]).toString(16);
}

/**
 * The floor: the FB bytes in 1 MiB writes over a socket made the way MigrationService makes its migration socket,
 * paced the way the stream encoder paces frames (each from a private recycled copy, wait for 'drain' when write()
 * says so, else one event-loop turn while bytes are queued). Timed from the first byte to the destination's
 * "done" (all bytes written into its FB).
 */
async function floorCopy(sockPath: string, typeId: number, read: (off: bigint, into: Buffer) => void, size: bigint, scrub: boolean): Promise<{ s: number; base: string }> {
  const s = createConnection({ path: sockPath, allowHalfOpen: true });
  await new Promise<void>((resolve, reject) => { s.once('connect', resolve); s.once('error', reject); });
  const next = lines(s);
  s.write(`${JSON.stringify({ typeId, scrub })}\n`);
  const r = await next();
  if (r.op !== 'ready') throw new Error(`floor destination: ${JSON.stringify(r)}`);
  const t0 = performance.now();
  const pool: Buffer[] = [];
  for (let off = 0n; off < size; off += 1n << 20n) {
    const n = Number(size - off < 1n << 20n ? size - off : 1n << 20n);
    const buf = pool.pop() ?? Buffer.allocUnsafe(1 << 20);
    const chunk = buf.subarray(0, n);
    read(off, chunk);
    if (!s.write(chunk, (e) => { if (!e && pool.length < 16) pool.push(buf); })) await new Promise((res) => s.once('drain', res));
    else if (s.writableLength > 0) await new Promise((res) => setImmediate(res));
  }
  s.end();
  const done = await next();
  const ms = performance.now() - t0 - Number(done['scrubMs'] ?? 0); // the fresh case's scrub after the copy is not the copy
  s.destroy();
  if (done.op !== 'done' || BigInt(String(done['bytes'])) !== size) throw new Error(`floor copy incomplete: ${JSON.stringify(done)}`);
  return { s: ms / 1000, base: String(r['base']) };
}

async function main(): Promise<void> {
  const ops = loadNativeOps();
  if (ops.kind !== 'native') throw Object.assign(new Error('migrate: needs the native addon (process-mode simulator); run npm run build:native'), { code: 'NO_ADDON' });
  const wantGiB = Number(process.env.MIGRATE_GIB ?? 4);
  const RATE = Number(process.env.MIGRATE_RATE ?? 256);
  const DIRTY = process.env.MIGRATE_DIRTY === 'hash' ? 'hash' : 'log';
  const FILL = Number(process.env.MIGRATE_FILL ?? 1);
  const LIMIT_MS = Number(process.env.MIGRATE_DOWNTIME_MS ?? 100);
  const tag = TAG;
  const dir = `/dev/shm/${tag}`;
  const migSock = `/tmp/${tag}-mig.sock`, floorSock = `/tmp/${tag}-floor.sock`;
  paths.push(dir, migSock, floorSock);
  undo.push(() => { rmSync(dir, { recursive: true, force: true }); rmSync(migSock, { force: true }); rmSync(floorSock, { force: true }); });
  // Sparse: only the vGPUs' pages are ever backed. Big enough for any type up to 16Q.
  const simFb = 24n * GiB;

  const [dst, src] = await Promise.all([
    startDestination(['0000:42:00.0', dir, migSock, floorSock, simFb.toString()]),
    (async (): Promise<SimDaemon> => {
      const d = await startSimDaemon({ bdf: '0000:41:00.0', dir, fbBytes: simFb });
      if (d.dev.descriptor.pid !== undefined) children.add(d.dev.descriptor.pid);
      undo.push(async () => { await d.stop(); killPid(d.dev.descriptor.pid); });
      return d;
    })(),
  ]);
  const bdf = src.gpu.bdf;
  const types = src.svc.types(bdf).filter((t) => t.series === 'Q').sort((a, b) => Number(a.fbBytes - b.fbBytes));
  const type = process.env.MIGRATE_TYPE
    ? types.find((t) => t.name.endsWith(`-${process.env.MIGRATE_TYPE}`) || t.name === process.env.MIGRATE_TYPE)
    : types.find((t) => t.fbBytes >= BigInt(Math.round(wantGiB * 2 ** 30)));
  if (type === undefined) throw new Error(`no vGPU type for MIGRATE_GIB=${wantGiB} MIGRATE_TYPE=${process.env.MIGRATE_TYPE ?? ''}`);
  const info = await src.svc.create({ gpu: bdf, type: type.id });
  await src.svc.setBme(info.id, true);
  const loc = fbLocation(src, info.id);
  const size = loc.size;
  const pages = Number(size / BigInt(PS));
  const arena = ops.openArena(loc.path);
  undo.push(() => arena.close());
  const fibGiB = (Number(size) / 2 ** 30).toFixed(2);
  console.log(`vGPU-level migration: ${type.name} (${fibGiB} GiB guest FB), process-mode simulators, to another daemon over a Unix socket; guest ${RATE} MiB/s random pages, dirty source: ${DIRTY}, non-zero fill ${FILL}, downtime limit ${LIMIT_MS} ms; host ${cpuModel()}, load average ${loadAverage()}`);
  const fillBytes = BigInt(Math.floor(pages * FILL)) * BigInt(PS);
  const region = migDevice(src, info.id).region();
  touchFb(region, fillBytes, 0x5a5aa5a5); // through the FB mapping: no first-read faults in the floor only

  // Twice, the faster counts: the first copy right after the fills ran slower in some runs (the stricter floor).
  // A fresh FB is read with pread, not through a mapping: a read fault on a hole makes shmem back the page, and the
  // floor would have turned the fresh FB into a fully backed one (zeros everywhere) before the migration ran.
  const fd = FILL === 0 ? openSync(loc.path, 'r') : -1;
  undo.push(() => { if (fd >= 0) closeSync(fd); });
  const read = FILL === 0
    ? (off: bigint, into: Buffer): void => { readSync(fd, into, 0, into.length, Number(loc.base + off)); }
    : (off: bigint, into: Buffer): void => { region.window(off, into.length).copy(into); };
  const floors = [];
  for (let i = 0; i < 2; i++) floors.push(await floorCopy(floorSock, type.id, read, size, FILL === 0));
  const floor = floors[0]!.s <= floors[1]!.s ? floors[0]! : floors[1]!;
  const floorS = floor.s;
  console.log(`floor: plain copy of ${fibGiB} GiB over the Unix socket into a ${type.name} FB in ${floors.map((f) => f.s.toFixed(2)).join(' / ')} s, best ${(Number(size) / floorS / 1e9).toFixed(2)} GB/s`);

  const log = ops.createArena({ size: dirtyLogBytes(pages), backing: 'sab' });
  undo.push(() => log.close());
  const writer = await GuestWriter.start({
    arena: { path: loc.path }, base: loc.base, size, rateMiBps: RATE, pattern: 'random', seed: 42, prefault: FILL >= 1, reserveFb: FILL < 1,
    ...(DIRTY === 'log' ? { dirtyLog: { arena: { sab: log.sab! } } } : {}),
  });
  undo.push(async () => { await writer.stop().catch(() => undefined); });
  src.mig.attachGuest(info.id, {
    pause: () => writer.pause(), resume: () => writer.resume(),
    ...(DIRTY === 'log' ? { dirty: () => new DirtyLogSource(log, 0n, pages, PS) } : {}),
  });
  const peaks = rssPeaks([process.pid, ...(dst.child.pid !== undefined ? [dst.child.pid] : [])]);
  sampling = peaks;
  // CPU of the two event-loop threads that move the stream (the source's, the destination daemon's), and of the
  // whole processes (the source's includes the guest writer thread): robust where wall-clock rates follow the load.
  const dpid = dst.child.pid!;
  const cpu0 = [cpuSeconds(process.pid, process.pid), cpuSeconds(dpid, dpid), cpuSeconds(process.pid), cpuSeconds(dpid)];
  let sent = 0;
  const cpuLine = (): { src: number; dst: number } => {
    const cpu1 = [cpuSeconds(process.pid, process.pid), cpuSeconds(dpid, dpid), cpuSeconds(process.pid), cpuSeconds(dpid)];
    const cpuMs = cpu1.map((c, i) => (c - cpu0[i]!) * 1000);
    const perMiB = (ms: number): number => ms / (sent / 2 ** 20);
    console.log(`CPU during the migration: source loop thread ${cpuMs[0]!.toFixed(0)} ms (${perMiB(cpuMs[0]!).toFixed(2)} ms per MiB of stream), destination loop thread ${cpuMs[1]!.toFixed(0)} ms (${perMiB(cpuMs[1]!).toFixed(2)}); whole source process ${cpuMs[2]!.toFixed(0)} ms (with the guest writer), whole destination daemon ${cpuMs[3]!.toFixed(0)} ms; ${(sent / 2 ** 20).toFixed(0)} MiB of stream`);
    return { src: perMiB(cpuMs[0]!), dst: perMiB(cpuMs[1]!) };
  };
  let cpu: { src: number; dst: number };
  let r: Awaited<ReturnType<typeof src.mig.migrateVgpu>>;
  try {
    r = await src.mig.migrateVgpu(info.id, {
      to: migSock, keepSource: true, // keep the (stopped) source to compare FBs; its destroy is not timed anyway
      downtimeMs: LIMIT_MS,
      onProgress: (p) => {
        if (p.sentBytes !== undefined) sent = p.sentBytes;
        if (p.phase === 'precopy') console.log(`pass ${p.pass}: sent ${((p.sentBytes ?? 0) / 2 ** 20).toFixed(0)} MiB so far at ${((p.elapsedMs ?? 0) / 1000).toFixed(2)} s, dirty ${((p.dirtyBytes ?? 0) / 2 ** 20).toFixed(1)} MiB, predicted downtime ${(p.predictedDowntimeMs ?? NaN).toFixed(0)} ms (${p.message ?? ''})`);
        else if (p.phase === 'estimate') console.log(`estimate: ${p.message ?? ''}`);
      },
    });
    sent = Number(r.streamBytes);
  } finally {
    cpu = cpuLine(); // a migration that gave up still says what its passes cost
  }
  const [mine, theirs] = peaks.stop();
  sampling = null;
  const written = writer.bytesWritten();
  const [a, b] = await Promise.all([fbDigest(arena, loc.base, size), dst.hash(r.vgpu)]);
  const same = a === b.hash;
  // Every floor vGPU pre-faults its own FB; the migration's destination is warm only where a floor vGPU sat.
  if (!floors.some((f) => f.base === b.base)) console.log(`WARNING: the destination vGPU sits at FB 0x${BigInt(b.base).toString(16)}, where no floor vGPU warmed the memory: the migration paid first-touch faults the floor did not`);
  console.log(`guest wrote ${(Number(written) / 2 ** 20).toFixed(0)} MiB during the run; stream ${(Number(r.streamBytes) / 2 ** 20).toFixed(0)} MiB; destination identical: ${same}`);
  const st = r.stop;
  if (st) {
    const f = (x: number): string => x.toFixed(1);
    console.log(`downtime ${f(r.downtimeMs)} ms (limit ${st.limitMs}, predicted ${f(st.predictedMs)} with a ${f(st.predictedStopCostMs)} ms stop): pause ${f(st.pauseMs)}, stop-work ${f(st.stopWorkMs)}, final scan ${f(st.finalScanMs)}, final send ${st.finalPages} pages ${f(st.finalSendMs)}, firmware save ${st.firmwareBytes} B ${f(st.firmwareSaveMs)}, trailer ${f(st.trailerMs)}, tail+reply ${f(st.tailMs)}, restore ${f(st.restoreMs)}, resume ${f(st.resumeMs)}; overhead beyond scan+send ${f(st.overheadMs)}${st.overrunMs > 0 ? `; LIMIT EXCEEDED by ${f(st.overrunMs)} ms` : ''}`);
  }
  if (!same) process.exitCode = 1;
  const totalS = r.totalMs / 1000;
  console.log(`load average at the end: ${loadAverage()}`);
  const mib = (b: number): string => (b / 2 ** 20).toFixed(0);
  console.log(`peak resident memory during the migration: source process ${mib(mine!.rss)} MiB (private ${mib(mine!.anon)}, FB pages mapped ${mib(mine!.shmem)}), destination daemon ${mib(theirs?.rss ?? NaN)} MiB (private ${mib(theirs?.anon ?? NaN)}, FB ${mib(theirs?.shmem ?? NaN)})`);
  const pf = r.destinationPrefault;
  console.log(`destination FB pre-fault: ${pf ? `${pf.outcome}, ${mib(pf.reservedBytes)} MiB reserved` : 'not reported'}`);
  const peak = `peak_rss_mib=${mib(mine!.rss)} peak_anon_mib=${mib(mine!.anon)} dest_peak_rss_mib=${mib(theirs?.rss ?? NaN)}`;
  const ratio = `ratio_total_to_floor=${(totalS / floorS).toFixed(2)} limit_ms=${LIMIT_MS}`;
  console.log(FILL === 0
    ? `migrate-fresh: total_s=${totalS.toFixed(2)} downtime_ms=${r.downtimeMs.toFixed(1)} passes=${r.passes.length} ${peak} ${ratio} stream_mib=${mib(Number(r.streamBytes))} src_loop_cpu_ms_per_mib=${cpu.src.toFixed(2)} dst_loop_cpu_ms_per_mib=${cpu.dst.toFixed(2)} dest_prefault=${pf?.outcome ?? 'none'}`
    : `migrate: total_s=${totalS.toFixed(2)} downtime_ms=${r.downtimeMs.toFixed(1)} precopy_passes=${r.passes.length} ${ratio} fill=${FILL} ${peak}`);
}

const FRESH = Number(process.env.MIGRATE_FILL ?? 1) === 0 && process.env.MIGRATE_LEVEL !== 'arena';
/** The RSS sampler while a migration runs: a failed run still reports how much memory it had taken. */
let sampling: ReturnType<typeof rssPeaks> | null = null;
const failedPeak = (): string => {
  const p = sampling?.stop()[0];
  const mib = (b: number | undefined): string => (b === undefined ? NaN : b / 2 ** 20).toFixed(0);
  return `peak_rss_mib=${mib(p?.rss)} peak_anon_mib=${mib(p?.anon)}`;
};
const failedLine = (code: string): string => FRESH
  ? `migrate-fresh: total_s=NaN downtime_ms=NaN passes=NaN ${failedPeak()} failed=${code}`
  : `migrate: total_s=NaN downtime_ms=NaN precopy_passes=NaN ratio_total_to_floor=NaN failed=${code}`;

process.once('SIGINT', () => hardStop('interrupted (SIGINT)', failedLine('SIGINT')));
process.once('SIGTERM', () => hardStop('interrupted (SIGTERM)', failedLine('SIGTERM')));
const TIMEOUT_S = Number(process.env.MIGRATE_TIMEOUT_S ?? 280);
setTimeout(() => hardStop(`timed out after ${TIMEOUT_S} s`, failedLine('TIMEOUT')), TIMEOUT_S * 1000).unref();
try {
  await main();
} catch (e) {
  const code = (e as { code?: string }).code ?? 'error';
  console.log(`${(e as Error).message}`);
  console.log(failedLine(code));
  process.exitCode = 1;
} finally {
  await cleanup();
}
process.exit(process.exitCode ?? 0);
