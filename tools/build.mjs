#!/usr/bin/env node
// `npm run build`: compile the sources to dist/ with tsc (tsconfig.build.json), then write dist/.build-stamp.json
// (bin/runtime/build-state.mjs explains it). `--if-stale`: do nothing when dist/ is already up to date — what
// `npm ci` (prepare) and `npm start` (prestart) run, so an unchanged tree costs a few milliseconds.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { buildState, listSources, STAMP } from '../bin/runtime/build-state.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
if (process.argv.includes('--if-stale')) {
  const state = buildState(root);
  if (state.fresh) process.exit(0);
  console.log(`vgpud: dist/ is ${state.reason}: building`);
}
let tsc;
try {
  tsc = createRequire(join(root, 'package.json')).resolve('typescript/bin/tsc');
} catch {
  console.error('vgpud: cannot build: the typescript package is not installed (npm ci installs it)');
  process.exit(1);
}
const startedAtMs = Date.now();
const sources = listSources(root).filter((f) => !f.config).length;
const r = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json')], { cwd: root, stdio: 'inherit' });
if (r.status !== 0) {
  console.error(`vgpud: build failed (tsc exited with ${r.status ?? r.signal}); dist/ is not marked fresh`);
  process.exit(1);
}
mkdirSync(join(root, 'dist'), { recursive: true });
writeFileSync(join(root, STAMP), `${JSON.stringify({ startedAtMs, sources, node: process.version })}\n`);
console.log(`vgpud: built dist/ (${sources} source files, ${((Date.now() - startedAtMs) / 1000).toFixed(1)} s)`);
