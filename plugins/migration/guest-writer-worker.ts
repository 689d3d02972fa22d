/**
 * Worker thread: a "guest" that writes its vGPU's FB at a set rate, so pre-copy really races a running workload.
 * Each write fills one page with a value unique to (page, write number) — never all zero — then marks the page in
 * the dirty log if one was given (after the write: see dirty-log.ts for why that order).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { loadNativeOps } from '../../native/index.js';
import type { SharedArena } from '../../native/native-ops.js';
import { DirtyLogWriter } from './dirty-log.js';
import { CTL_BYTES_INDEX, CTL_CMD, CTL_STATE, Cmd, State, type ArenaRef, type GuestWriterInit } from './guest-writer-protocol.js';

const init = workerData as GuestWriterInit;
const ops = loadNativeOps();
const attach = (ref: ArenaRef): SharedArena => ('sab' in ref ? ops.attachSab(ref.sab) : ops.openArena(ref.path));

const arena = attach(init.arena);
const base = BigInt(init.base);
const size = BigInt(init.size);
const ps = init.pageSize;
const pages = Number(size / BigInt(ps));
const VIEW = 1 << 30;
const pagesPerView = VIEW / ps;
const views: Uint32Array[] = [];
for (let off = 0n; off < size; off += BigInt(VIEW)) {
  const len = Number(size - off < BigInt(VIEW) ? size - off : BigInt(VIEW));
  const w = arena.window(base + off, len);
  views.push(new Uint32Array(w.buffer, w.byteOffset, w.length / 4));
}
const log = init.dirtyLog ? new DirtyLogWriter(attach(init.dirtyLog.arena), BigInt(init.dirtyLog.offset), pages) : null;
const ctl = new Int32Array(init.control);
const bytes = new BigInt64Array(init.control);

// xorshift32: deterministic per seed, no allocation.
let rng = (init.seed >>> 0) || 0x9e3779b9;
const rand = (): number => {
  rng ^= rng << 13; rng >>>= 0;
  rng ^= rng >>> 17;
  rng ^= rng << 5; rng >>>= 0;
  return rng;
};
const hotPages = Math.max(1, Math.floor(pages * init.hotFraction));
let cursor = 0;
const nextPage = (): number => {
  switch (init.pattern) {
    case 'sequential': { const p = cursor; cursor = (cursor + 1) % pages; return p; }
    case 'hot': return rand() % 10 === 0 ? rand() % pages : rand() % hotPages;
    default: return rand() % pages;
  }
};

let writes = 0;
const wordsPerPage = ps / 4;
function writePage(page: number): void {
  const v = views[Math.floor(page / pagesPerView)]!;
  const start = (page % pagesPerView) * wordsPerPage;
  writes++;
  const value = (Math.imul(writes, 0x9e3779b1) | 1) >>> 0;
  v.fill(value, start, start + wordsPerPage);
  v[start] = page;
  v[start + 1] = writes;
  log?.mark(page);
}

if (init.reserveFb === true && arena.reserve !== undefined) {
  // Best effort: without room the guest writes into holes as before (each first store allocates its page).
  await arena.reserve(base, size, 1n << 30n).catch(() => undefined);
}

if (init.prefault === true) {
  // Same value back: the page's contents do not change (the guest is the only writer of its FB while it runs).
  for (let p = 0; p < pages; p++) {
    const v = views[Math.floor(p / pagesPerView)]!;
    const at = (p % pagesPerView) * wordsPerPage;
    v[at] = v[at]!;
  }
}

const bytesPerMs = (init.rateMiBps * 2 ** 20) / 1000;
let t0 = performance.now();
let sinceResume = 0;
let total = 0n;
Atomics.store(ctl, CTL_STATE, State.RUNNING);
Atomics.notify(ctl, CTL_STATE);
parentPort?.postMessage({ op: 'ready' });

for (;;) {
  const cmd = Atomics.load(ctl, CTL_CMD);
  if (cmd === Cmd.STOP) break;
  if (cmd === Cmd.PAUSE) {
    Atomics.store(ctl, CTL_STATE, State.PAUSED);
    Atomics.notify(ctl, CTL_STATE);
    Atomics.wait(ctl, CTL_CMD, Cmd.PAUSE);
    t0 = performance.now();
    sinceResume = 0;
    Atomics.store(ctl, CTL_STATE, State.RUNNING);
    Atomics.notify(ctl, CTL_STATE);
    continue;
  }
  const due = (performance.now() - t0) * bytesPerMs - sinceResume;
  if (due < ps) {
    Atomics.wait(ctl, CTL_CMD, cmd, 1); // sleep ~1 ms, or until the parent changes the command
    continue;
  }
  // Do not "catch up" more than 50 ms of writes after a stall: a guest starved of CPU writes less, not in bursts.
  if (due > bytesPerMs * 50) { sinceResume += due - bytesPerMs * 50; }
  const n = Math.min(64, Math.floor(Math.min(due, bytesPerMs * 50) / ps));
  for (let i = 0; i < n; i++) writePage(nextPage());
  sinceResume += n * ps;
  total += BigInt(n * ps);
  Atomics.store(bytes, CTL_BYTES_INDEX, total);
}
Atomics.store(ctl, CTL_STATE, State.STOPPED);
Atomics.notify(ctl, CTL_STATE);
arena.close();
