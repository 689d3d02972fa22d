// Is dist/ (the compiled build, `npm run build`) up to date with the TypeScript sources? Plain JavaScript with no
// dependencies: the launchers ask it before anything else loads, so it must cost a few milliseconds.
//
// The build writes dist/.build-stamp.json when tsc succeeds: the time the build STARTED and how many source files it
// saw. dist/ is fresh when the stamp exists, no source file (or tsconfig / package.json) was modified after that
// start, and the count is unchanged (a deleted file changes no mtime). `git pull`, `git checkout` and editors give
// every file they write the current time, so any change after a build makes dist/ stale.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

/** Folders compiled by tsconfig.build.json (all of them), relative to the package root. */
export const SOURCE_DIRS = ['core', 'hal', 'plugins', 'bin', 'metadata', 'conformance'];
/** native/: only its top-level .ts files (not node_modules/, build/). */
export const SHALLOW_DIRS = ['native'];
/** Files whose change changes the output too. */
export const CONFIG_FILES = ['tsconfig.json', 'tsconfig.build.json', 'package.json'];
export const STAMP = join('dist', '.build-stamp.json');

const SKIP = new Set(['node_modules', 'build', 'out']);

/** Every source file the build compiles, with its mtime (ms). */
export function listSources(root) {
  const out = [];
  const walk = (dir, deep) => {
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = join(dir, e.name);
      if (e.isDirectory()) {
        if (deep && !SKIP.has(e.name)) walk(p, true);
      } else if (e.name.endsWith('.ts')) {
        out.push({ path: p, mtimeMs: statSync(p).mtimeMs });
      }
    }
  };
  for (const d of SOURCE_DIRS) walk(join(root, d), true);
  for (const d of SHALLOW_DIRS) walk(join(root, d), false);
  for (const f of CONFIG_FILES) {
    try {
      out.push({ path: join(root, f), mtimeMs: statSync(join(root, f)).mtimeMs, config: true });
    } catch {
      // absent: nothing to compare
    }
  }
  return out;
}

/**
 * { fresh: true } or { fresh: false, reason } — reason is a phrase for a message ("missing (never built)",
 * "older than core/foo.ts").
 */
export function buildState(root) {
  let stamp;
  try {
    stamp = JSON.parse(readFileSync(join(root, STAMP), 'utf8'));
  } catch {
    return { fresh: false, reason: 'missing (never built)' };
  }
  if (typeof stamp?.startedAtMs !== 'number' || typeof stamp?.sources !== 'number') {
    return { fresh: false, reason: 'from an unknown build (no valid stamp)' };
  }
  const files = listSources(root);
  const newer = files.find((f) => f.mtimeMs > stamp.startedAtMs);
  if (newer) return { fresh: false, reason: `older than ${relative(root, newer.path)}` };
  const count = files.filter((f) => !f.config).length;
  if (count !== stamp.sources) return { fresh: false, reason: `built from ${stamp.sources} source files, there are ${count} now` };
  return { fresh: true };
}
