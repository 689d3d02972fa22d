// Live-migration benchmark, ARENA LEVEL (`MIGRATE_LEVEL=arena npm run bench:migrate`): two file arenas standing for
// the source and destination vGPU FB, the pre-copy engine driven directly (no vGPU, no migration service). Kept to
// measure the engine and the stream alone; bench/migrate-bench.ts measures the real vGPU path. A guest writer worker dirties the
// source FB at MIGRATE_RATE MiB/s while pre-copy runs; the destination runs in its own worker thread behind a Unix
// socket. The floor is a plain copy of the same FB bytes over the same socket into the same destination, measured
// in the same run.
// Env: MIGRATE_GIB (4), MIGRATE_RATE (256 MiB/s), MIGRATE_DIRTY (log|hash), MIGRATE_FILL (1 = whole FB holds
// non-zero data; 0 = freshly scrubbed FB, only what the guest writes is non-zero), MIGRATE_RUN (pages per frame,
// default DEFAULT_RUN_PAGES).
// Last line: migrate: total_s=… downtime_ms=… precopy_passes=… ratio_total_to_floor=…
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { rmSync } from 'node:fs';
import { loadNativeOps } from '../../native/index.js';
import { arenaRegion } from '../../plugins/migration/fb-region.js';
import { HashDirtyTracker } from '../../plugins/migration/dirty-tracker.js';
import { DirtyLogSource, dirtyLogBytes } from '../../plugins/migration/dirty-log.js';
import { GuestWriter } from '../../plugins/migration/guest-writer.js';
import { connectTransport, listenTransport } from '../../plugins/migration/transport.js';
import { migrateSource, receiveMigration } from '../../plugins/migration/precopy-engine.js';
import type { MigrationCompat } from '../../plugins/migration/stream/compat.js';
import { spawnTsWorker } from '../../hal/sim/gsp/spawn-ts-worker.js';

const PS = 4096;
const now = (): number => performance.timeOrigin + performance.now();

interface DestInit { path: string; sock: string; compat: MigrationCompat & { fbBytes: bigint } }

async function destination(): Promise<void> {
  const d = workerData as { path: string; sock: string; compat: Record<string, unknown> };
  const compat = { ...d.compat, fbBytes: BigInt(d.compat.fbBytes as string) } as MigrationCompat;
  const arena = loadNativeOps().openArena(d.path);
  const region = arenaRegion(arena);
  const l = await listenTransport({ kind: 'unix', path: d.sock });
  parentPort!.postMessage({ op: 'listening' });
  // 1) floor: raw bytes into the FB, in order.
  {
    const s = await l.accept();
    let off = 0n;
    for await (const c of s) {
      const b = c as Buffer;
      let i = 0;
      while (i < b.length) {
        const n = Math.min(b.length - i, Number(1n << 20n) - Number(off % (1n << 20n)));
        b.copy(region.window(off, n), 0, i, i + n);
        off += BigInt(n); i += n;
      }
    }
    parentPort!.postMessage({ op: 'floor-done', at: now(), bytes: off.toString() });
  }
  // 2) migration.
  {
    const s = await l.accept();
    const r = await receiveMigration({ source: s, region, expect: compat });
    parentPort!.postMessage({ op: 'migrate-done', at: now(), passes: r.passes });
  }
  await l.close();
  arena.close();
}

async function main(): Promise<void> {
  const ops = loadNativeOps();
  if (ops.kind !== 'native') { console.log('migrate: needs the native addon (file arenas); run npm run build:native'); process.exit(1); }
  const GiB = Number(process.env.MIGRATE_GIB ?? 4);
  const RATE = Number(process.env.MIGRATE_RATE ?? 256);
  const DIRTY = process.env.MIGRATE_DIRTY === 'hash' ? 'hash' : 'log';
  const FILL = Number(process.env.MIGRATE_FILL ?? 1);
  const RUN = process.env.MIGRATE_RUN ? Number(process.env.MIGRATE_RUN) : undefined;
  const size = BigInt(Math.round(GiB * 2 ** 30 / PS)) * BigInt(PS);
  const pages = Number(size / BigInt(PS));
  const dir = '/dev/shm';
  const tag = `vgpud-migbench-${process.pid}`;
  const srcPath = `${dir}/${tag}-src`, dstPath = `${dir}/${tag}-dst`, sock = `/tmp/${tag}.sock`;
  const compat: MigrationCompat = { vgpuTypeId: 1, vgpuTypeName: 'bench', fbBytes: size, chidCount: 64, firmwareVersion: '570.144', pciVdevId: 0x26b5, pageSize: PS };
  const src = ops.createArena({ size, path: srcPath });
  const dst = ops.createArena({ size, path: dstPath });
  const log = ops.createArena({ size: dirtyLogBytes(pages), backing: 'sab' });
  try {
    console.log(`arena-level migration of ${GiB} GiB (engine only, no vGPU), guest ${RATE} MiB/s random pages, dirty source: ${DIRTY}, non-zero fill ${FILL}`);
    const fillBytes = BigInt(Math.floor(Number(size / BigInt(PS)) * FILL)) * BigInt(PS);
    if (fillBytes > 0n) await src.fill(0n, fillBytes, 0x5a5aa5a5, { release: false });
    await dst.fill(0n, size, 0x11111111, { release: false }); // pre-fault: both runs write warm memory
    const worker = spawnTsWorker(new URL(import.meta.url), { workerData: { path: dstPath, sock, compat: { ...compat, fbBytes: size.toString() } } });
    const msgs: { op: string; at?: number; passes?: number }[] = [];
    const waiters: (() => void)[] = [];
    worker.on('message', (m: { op: string }) => { msgs.push(m); waiters.splice(0).forEach((w) => w()); });
    worker.on('error', (e) => { console.error(e); process.exit(1); });
    const next = async (op: string): Promise<{ op: string; at?: number }> => {
      for (;;) {
        const i = msgs.findIndex((m) => m.op === op || m.op === 'fatal');
        if (i >= 0) { const m = msgs.splice(i, 1)[0]!; if (m.op === 'fatal') throw new Error(JSON.stringify(m)); return m; }
        await new Promise<void>((r) => waiters.push(r));
      }
    };
    await next('listening');

    // Floor: plain copy of the FB over the same socket (same transport settings as the migration), 1 MiB writes
    // with backpressure, each from a private copy (recycled once the kernel has it, as the pre-copy engine does).
    const fs = await connectTransport({ kind: 'unix', path: sock });
    const tf0 = now();
    const region = arenaRegion(src);
    const pool: Buffer[] = [];
    for (let off = 0n; off < size; off += 1n << 20n) {
      const n = Number(size - off < 1n << 20n ? size - off : 1n << 20n);
      const buf = pool.pop() ?? Buffer.allocUnsafe(1 << 20);
      const chunk = buf.subarray(0, n);
      region.window(off, n).copy(chunk);
      if (!fs.write(chunk, (e) => { if (!e && pool.length < 16) pool.push(buf); })) await new Promise((r) => fs.once('drain', r));
      else if (fs.writableLength > 0) await new Promise((r) => setImmediate(r)); // let libuv send: same as the encoder
    }
    fs.end();
    const floorEnd = (await next('floor-done')).at!;
    const floorS = (floorEnd - tf0) / 1000;
    console.log(`floor: plain copy ${GiB} GiB over the Unix socket in ${floorS.toFixed(2)} s (${(Number(size) / floorS / 1e9).toFixed(2)} GB/s)`);

    const writer = await GuestWriter.start({
      arena: { path: srcPath }, size, rateMiBps: RATE, pattern: 'random', seed: 42,
      ...(DIRTY === 'log' ? { dirtyLog: { arena: { sab: log.sab! } } } : {}),
    });
    const dirty = DIRTY === 'log' ? new DirtyLogSource(log, 0n, pages, PS) : new HashDirtyTracker(region, PS);
    const ms = await connectTransport({ kind: 'unix', path: sock });
    let stopAt = 0;
    const t0 = now();
    const res = await migrateSource({
      region, dirty, sink: ms, compat, ...(RUN ? { runPages: RUN } : {}),
      device: { stop: () => writer.pause(), resume: () => writer.resume() },
      firmware: { async *save() { yield Buffer.alloc(64 << 10, 7); } },
      onStopCopy: () => { stopAt = now(); },
      onPass: (r, d) => console.log(`pass ${r.pass}: ${r.pages} pages ${(r.bytes / 2 ** 20).toFixed(1)} MiB in ${r.ms.toFixed(0)} ms, dirty after ${(r.dirtyAfter / 2 ** 20).toFixed(1)} MiB → ${d.action} (predicted downtime ${d.predictedDowntimeMs.toFixed(0)} ms)`),
    });
    const done = (await next('migrate-done')).at!;
    const written = await writer.stop();
    const totalS = (done - t0) / 1000;
    const downtimeMs = done - stopAt;
    // Correctness check of the run: destination pages equal source pages.
    const [a, b] = await Promise.all([src.hashPages(0n, size, PS), dst.hashPages(0n, size, PS)]);
    const same = Buffer.from(a.buffer).equals(Buffer.from(b.buffer));
    console.log(`guest wrote ${(Number(written) / 2 ** 20).toFixed(0)} MiB during the run; stream ${(Number(res.totals.streamBytes) / 2 ** 20).toFixed(0)} MiB; destination identical: ${same}`);
    await worker.terminate();
    if (!same) process.exitCode = 1;
    console.log(`migrate: total_s=${totalS.toFixed(2)} downtime_ms=${downtimeMs.toFixed(1)} precopy_passes=${res.passes.length} ratio_total_to_floor=${(totalS / floorS).toFixed(2)}`);
  } finally {
    src.close(); dst.close(); log.close();
    rmSync(srcPath, { force: true }); rmSync(dstPath, { force: true }); rmSync(sock, { force: true });
  }
}

if (!isMainThread) await destination().catch((e: unknown) => parentPort!.postMessage({ op: 'fatal', message: String((e as Error).stack ?? e) }));

/** Entry for bench/migrate-bench.ts (main thread only). */
export async function runArenaBench(): Promise<void> {
  await main().catch((e: unknown) => {
    const code = (e as { code?: string }).code ?? 'error';
    console.log(`${(e as Error).message}`);
    console.log(`migrate: total_s=NaN downtime_ms=NaN precopy_passes=NaN ratio_total_to_floor=NaN failed=${code}`);
    process.exit(1);
  });
}
export type { DestInit };
