#!/usr/bin/env node
// Lists the test files itself (Node 20's --test expands no globs and, given none, passes with 0 tests) and fails
// when it finds none. Arguments narrow the search to folders or files: `node test/run-tests.mjs test/native`.
import { readdirSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { spawnSync } from 'node:child_process';

const root = resolve(import.meta.dirname, '..');
const roots = process.argv.slice(2).length ? process.argv.slice(2) : ['test'];
const files = [];
for (const r of roots) {
  const abs = resolve(root, r);
  if (statSync(abs).isFile()) { files.push(abs); continue; }
  for (const f of readdirSync(abs, { recursive: true })) {
    const p = join(abs, String(f));
    if (p.endsWith('.test.ts') && !p.includes('node_modules')) files.push(p);
  }
}
files.sort();
if (files.length === 0) {
  console.error(`run-tests: no *.test.ts files under ${roots.join(', ')}`);
  process.exit(1);
}
const conc = process.env.TEST_CONCURRENCY ?? '2';
const args = ['--import', 'tsx', '--test', `--test-concurrency=${conc}`, '--test-reporter=spec',
  '--test-reporter-destination=stdout', ...files.map((f) => relative(root, f))];
const r = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
process.exit(r.status ?? 1);
