/**
 * Start a worker thread from a module URL, also when that module is TypeScript run through tsx.
 *
 * Node 20 does not apply the parent's `--import tsx` hooks to a worker's entry file ("Unknown file extension
 * .ts"), so a .ts entry is started from a tiny bootstrap that registers tsx inside the worker and then imports
 * the entry. A .js entry (compiled build) starts directly.
 */
import { Worker, type WorkerOptions } from 'node:worker_threads';

export function spawnTsWorker(entry: URL, opts: WorkerOptions = {}): Worker {
  if (!entry.pathname.endsWith('.ts')) return new Worker(entry, opts);
  const tsxApi = import.meta.resolve('tsx/esm/api');
  const boot =
    `import(${JSON.stringify(tsxApi)}).then((m) => { m.register(); return import(${JSON.stringify(entry.href)}); })` +
    `.catch((e) => { require('node:worker_threads').parentPort?.postMessage({ op: 'fatal', message: String((e && e.stack) || e) }); });`;
  return new Worker(boot, { ...opts, eval: true });
}
