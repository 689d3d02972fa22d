/**
 * Importing a TypeScript file from compiled code. The compiled daemon (dist/) runs on plain node, which cannot
 * import `.ts`; an operator's out-of-tree plugin listed in plugins.paths may still be TypeScript. Before importing
 * such a file, register tsx's loader once (tsx is a runtime dependency). Under tsx (running from source) the loader
 * is already there and nothing is done.
 */
import { runningFromSource } from './module-entry.js';

let registered: Promise<void> | undefined;

export function ensureTypeScriptLoader(): Promise<void> {
  if (runningFromSource(import.meta.url)) return Promise.resolve();
  registered ??= import('tsx/esm/api').then((m) => {
    m.register();
  });
  return registered;
}
