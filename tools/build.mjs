#!/usr/bin/env node
// `npm run build`: compile the sources to dist/ with tsc (tsconfig.build.json), compile the default vGPU type
// catalogue (metadata/ada.yaml → metadata/out/, with the just-built metadata compiler), then write
// dist/.build-stamp.json (bin/runtime/build-state.mjs explains it). The catalogue is compiled here so an installed
// daemon finds its metadata file already written: under the systemd unit the package folder is read-only
// (ProtectSystem=strict), and the daemon only rewrites the file when its bytes would differ. `--if-stale`: do nothing when dist/ is already up to date — what
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
const meta = spawnSync(process.execPath, [join(root, 'dist', 'metadata', 'build-metadata.js')], { cwd: root, stdio: 'inherit' });
if (meta.status !== 0) {
  console.error('vgpud: build failed: metadata/ada.yaml did not compile (the message above names the key); dist/ is not marked fresh');
  process.exit(1);
}
mkdirSync(join(root, 'dist'), { recursive: true });
writeFileSync(join(root, STAMP), `${JSON.stringify({ startedAtMs, sources, node: process.version })}\n`);
console.log(`vgpud: built dist/ (${sources} source files, ${((Date.now() - startedAtMs) / 1000).toFixed(1)} s)`);
