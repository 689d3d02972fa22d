#!/usr/bin/env node
// Builds the addon (native/build/Release/vgpud_native.node) with node-gyp, offline:
// - node-gyp comes from node_modules (if installed) or from the copy bundled with npm — never `npm exec`, which
//   may try the network;
// - `--nodedir` points at the local Node headers (<prefix>/include/node), so node-gyp never downloads them.
// `--optional` (the package's `install` script during `npm ci`): a failed build prints a warning and exits 0 — the
// pure-TS fallback takes over at run time. Without it (`npm run build:native`, CI): a failure fails loudly.
import { existsSync, realpathSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';

const here = import.meta.dirname;
const root = resolve(here, '..');
const optional = process.argv.includes('--optional');

function fail(message) {
  if (optional) {
    console.warn(`vgpud: native addon not built (${message}); the pure-TypeScript fallback will be used.`);
    console.warn('vgpud: run `npm run build:native` to see the full error.');
    process.exit(0);
  }
  console.error(`vgpud: native build failed: ${message}`);
  process.exit(1);
}

function findNodeGyp() {
  const candidates = [];
  try {
    candidates.push(createRequire(join(root, 'package.json')).resolve('node-gyp/bin/node-gyp.js'));
  } catch { /* not a local dependency */ }
  // npm's bundled copy, found from the npm in use (npm_execpath when run by npm) or from the node binary's prefix.
  if (process.env.npm_execpath) {
    candidates.push(join(dirname(process.env.npm_execpath), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  }
  const prefix = resolve(dirname(process.execPath), '..');
  candidates.push(join(prefix, 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  for (const dir of (process.env.PATH ?? '').split(':')) {
    const npm = join(dir, 'npm');
    if (!existsSync(npm)) continue;
    const real = realpathSync(npm); // …/lib/node_modules/npm/bin/npm-cli.js
    candidates.push(join(dirname(real), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  }
  return candidates.find((c) => existsSync(c));
}

function findNodeDir() {
  const prefix = resolve(dirname(process.execPath), '..');
  for (const dir of [prefix, '/usr', '/usr/local']) {
    if (existsSync(join(dir, 'include', 'node', 'node_version.h'))) return dir;
  }
  return undefined;
}

const gyp = findNodeGyp();
if (!gyp) fail('node-gyp not found (neither in node_modules nor bundled with npm)');
const nodedir = findNodeDir();
if (!nodedir) fail('Node headers not found (<prefix>/include/node/node_version.h); install the nodejs dev headers');

const args = [gyp, 'rebuild', `--nodedir=${nodedir}`, '--directory', here, `--jobs=${process.env.JOBS ?? 'max'}`];
const r = spawnSync(process.execPath, args, { stdio: optional ? 'pipe' : 'inherit', encoding: 'utf8' });
if (r.status !== 0) {
  if (optional) process.stderr.write((r.stderr ?? '').split('\n').slice(-15).join('\n'));
  fail(`node-gyp exited with ${r.status ?? r.signal}`);
}
console.log(`vgpud: native addon built (${join(here, 'build', 'Release', 'vgpud_native.node')})`);
