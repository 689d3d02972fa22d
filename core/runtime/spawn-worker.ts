/**
 * Start a worker thread on one of our modules, also when that module is TypeScript run through tsx.
 *
 * Node 20 does not apply the parent's `--import tsx` hooks to a worker's entry file ("Unknown file extension
 * .ts"), so a .ts entry is started from a tiny bootstrap that registers tsx inside the worker and then imports
 * the entry. A .js entry (compiled build, dist/) starts directly. Pick the entry with siblingModule()
 * (core/runtime/module-entry.ts) so it has the caller's extension.
 */
import { Worker, type WorkerOptions } from 'node:worker_threads';
import { pathToFileURL } from 'node:url';

export function spawnModuleWorker(entry: URL | string, opts: WorkerOptions = {}): Worker {
  const url = typeof entry === 'string' ? pathToFileURL(entry) : entry;
  if (!url.pathname.endsWith('.ts')) return new Worker(url, opts);
  const tsxApi = import.meta.resolve('tsx/esm/api');
  const boot =
    `import(${JSON.stringify(tsxApi)}).then((m) => { m.register(); return import(${JSON.stringify(url.href)}); })` +
    `.catch((e) => { require('node:worker_threads').parentPort?.postMessage({ op: 'fatal', message: String((e && e.stack) || e) }); });`;
  return new Worker(boot, { ...opts, eval: true });
}
