/**
 * Where vgpud's files are, the same way whether it runs from the TypeScript sources (this file is
 * core/runtime/package-root.ts, run through tsx) or compiled (dist/core/runtime/package-root.js, run by plain
 * node): walk up from this module to the folder whose package.json names "vgpud".
 *
 * Data files read at run time (metadata/*.yaml, .proto files, …) are NOT copied into dist/: there is one copy, in
 * the source tree, and `assetPath('metadata', 'ada.yaml')` finds it from either place. Never locate a data file
 * relative to `import.meta.url`/`import.meta.dirname` of the module that reads it — compiled, that points into
 * dist/, where the file is not.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let root: string | undefined;

/** Absolute path of the package root (the folder with vgpud's package.json). */
export function packageRoot(): string {
  if (root !== undefined) return root;
  const start = dirname(fileURLToPath(import.meta.url));
  for (let d = start; ; d = dirname(d)) {
    const pkg = join(d, 'package.json');
    if (existsSync(pkg) && isVgpud(pkg)) return (root = d);
    if (dirname(d) === d) break;
  }
  // Not inside the package (copied somewhere by hand): the layout is known, core/runtime is two levels down —
  // three under dist/.
  const up = start.split(/[\\/]/).includes('dist') ? '../../..' : '../..';
  return (root = join(start, up));
}

/** Absolute path of a file shipped with the package, e.g. assetPath('metadata', 'ada.yaml'). */
export function assetPath(...parts: string[]): string {
  return join(packageRoot(), ...parts);
}

function isVgpud(pkg: string): boolean {
  try {
    return (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: unknown }).name === 'vgpud';
  } catch {
    return false;
  }
}
