#!/usr/bin/env node
// Lists the test files itself (Node 20's --test expands no globs and, given none, passes with 0 tests) and fails
// when it finds none. Arguments narrow the search to folders or files: `node test/run-tests.mjs test/native`.
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
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
// `*.solo.test.ts` files measure timing (event-loop delay under multi-GiB jobs): they run after the others, alone,
// so the suite's own load does not stand in their way. One run of node's runner each, so each prints its summary.
const solo = files.filter((f) => f.endsWith('.solo.test.ts'));
const shared = files.filter((f) => !f.endsWith('.solo.test.ts'));
const conc = process.env.TEST_CONCURRENCY ?? '2';
const tapDir = mkdtempSync(join(tmpdir(), 'vgpud-tests-'));
const totals = { pass: 0, fail: 0, cancelled: 0, skipped: 0, todo: 0 };
// Each run prints the spec report to stdout and writes TAP to a file, whose counters are summed for the last line.
function run(list, concurrency, name) {
  const tap = join(tapDir, `${name}.tap`);
  const status = spawnSync(process.execPath, ['--import', 'tsx', '--test', `--test-concurrency=${concurrency}`,
    '--test-reporter=spec', '--test-reporter-destination=stdout', '--test-reporter=tap', `--test-reporter-destination=${tap}`,
    ...list.map((f) => relative(root, f))], { cwd: root, stdio: 'inherit' }).status ?? 1;
  const text = existsSync(tap) ? readFileSync(tap, 'utf8') : '';
  for (const key of Object.keys(totals)) {
    const m = text.match(new RegExp(`^# ${key} (\\d+)$`, 'm'));
    if (m) totals[key] += Number(m[1]);
  }
  return status;
}
let status = shared.length > 0 ? run(shared, conc, 'shared') : 0;
if (solo.length > 0) status = run(solo, '1', 'solo') || status;
rmSync(tapDir, { recursive: true, force: true });
const ran = totals.pass + totals.fail;
if (ran === 0) {
  console.error('run-tests: no test ran');
  status = status || 1;
}
console.log(`\nrun-tests: ${files.length} files (${solo.length} alone), ${totals.skipped} skipped, ${totals.todo} todo, ${totals.cancelled} cancelled`);
console.log(`run-tests: ${totals.pass} passed, ${totals.fail + totals.cancelled} failed`);
process.exit(status);
