// An endless wait32 that does not look on its own (wokenOnly: the device front's wait on the device's kick word) must
// not outlive the thread that asked for it: when a worker thread ends with one pending, the addon wakes the waiter
// (native/src/futex.cc ~InstanceData) and its thread ends. The waiter threads are told apart from V8's and libuv's by the call they are
// blocked in: a shared FUTEX_WAIT (op 0) — the others wait with private futex ops.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { loadAddon, loadNativeOps } from '../../native/index.js';

const skip = loadAddon() instanceof Error || process.env.VGPUD_NO_NATIVE === '1' ? 'the native addon is not in use (npm run build:native)' : false;

/** Threads of this process blocked in a shared FUTEX_WAIT (syscall 202, op 0): the addon's waiters. */
function sharedFutexWaiters(): number {
  let n = 0;
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      const [nr, , op] = readFileSync(`/proc/self/task/${tid}/syscall`, 'utf8').split(' ');
      if (nr === '202' && op === '0x0') n++;
    } catch {
      // the thread ended between the listing and the read
    }
  }
  return n;
}

async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setImmediate(r));
}

describe('wait32 waiters and the end of their thread', { skip }, () => {
  it('a worker that ends with an endless wait32 pending leaves no waiter thread behind', async () => {
    const dir = mkdtempSync('/dev/shm/vgpud-wait-teardown-');
    const path = join(dir, 'arena');
    const arena = loadNativeOps().createArena({ size: 1n << 20n, path });
    try {
      const baseline = sharedFutexWaiters();
      const entry = new URL('./fixtures/endless-wait-worker.ts', import.meta.url).href;
      // Node 20 does not run `--import tsx` hooks for a worker's .ts entry: register tsx inside the worker first.
      const w = new Worker(`import('tsx/esm/api').then((t) => { t.register(); return import(${JSON.stringify(entry)}); })`,
        { eval: true, workerData: path });
      assert.equal((await once(w, 'message'))[0], 'waiting');
      await until(() => sharedFutexWaiters() === baseline + 1); // the worker's waiter is asleep in the kernel
      await w.terminate();
      await until(() => sharedFutexWaiters() === baseline);
      assert.equal(arena.load32(0n), 0, 'nothing stored into the word: the waiter was woken by the teardown');
    } finally {
      arena.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
