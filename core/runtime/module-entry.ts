/**
 * Starting another process or a worker thread on one of our own modules, from the TypeScript sources (tsx) and from
 * the compiled build (dist/, plain node) alike. The caller's own URL says which it is: a module running as `.ts`
 * starts `.ts` siblings with tsx's loader; a compiled one starts `.js` siblings with plain node.
 *
 *   const script = siblingModule(import.meta.url, './vgpu-sim');          // …/vgpu-sim.ts or …/vgpu-sim.js
 *   spawn(process.execPath, [...nodeArgsFor(script), '--board', …]);      // adds --import <tsx> only for .ts
 *   fork(script, args, { execArgv: nodeArgsFor(script).slice(0, -1) });    // the same through fork
 *   spawnModuleWorker(siblingModule(import.meta.url, './worker'), opts);   // worker threads: core/runtime/spawn-worker.ts
 */
import { fileURLToPath } from 'node:url';

/** True when `callerUrl` (pass `import.meta.url`) is a TypeScript source run through tsx. */
export function runningFromSource(callerUrl: string): boolean {
  return new URL(callerUrl).pathname.endsWith('.ts');
}

/** The sibling module `relative` (no extension, e.g. './vgpu-sim' or '../../hal/x/y') of the caller, with the
 *  caller's own extension. */
export function siblingModule(callerUrl: string, relative: string): string {
  const ext = runningFromSource(callerUrl) ? '.ts' : '.js';
  return fileURLToPath(new URL(`${relative}${ext}`, callerUrl));
}

/**
 * Node arguments that run `script`: `['--import', <tsx loader URL>, script]` for a .ts file, `[script]` for a .js
 * one. The loader is resolved to an absolute URL here, so the child finds tsx whatever its working directory
 * (a bare `--import tsx` is resolved from the child's cwd).
 */
export function nodeArgsFor(script: string): string[] {
  return script.endsWith('.ts') ? ['--import', import.meta.resolve('tsx'), script] : [script];
}
