// `npm run conformance`: the real command, run on a HAL module OUTSIDE the repository (a TypeScript file in a temp
// folder, loaded by path as a vendor's package would be) and on the repository's mock; the exit code and the report
// lines name each check. Bad arguments are usage errors (exit 2) that say what to do.
import 'reflect-metadata';
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { CHECKS } from '../../conformance/checks/index.js';

const root = resolve(import.meta.dirname, '../..');
const vendorDir = mkdtempSync(join(tmpdir(), 'acme-hal-'));
after(() => rmSync(vendorDir, { recursive: true, force: true }));

function conformance(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((done, fail) => {
    // As `npm run conformance` from the vendor's folder would: npm starts it in the package root and says where it
    // was run in INIT_CWD.
    const child = spawn(process.execPath, [join(root, 'bin/run.mjs'), 'conformance/cli', ...args], {
      cwd: root, env: { ...process.env, VGPUD_RUN_FROM: 'source', INIT_CWD: vendorDir }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    child.once('error', fail);
    child.once('close', (code) => done({ code, stdout, stderr }));
  });
}

test('a broken out-of-tree HAL module fails the run (exit 1) with report lines naming each failed check; the mock passes', async () => {
  // The vendor's package: an ES module package outside the repository whose TypeScript conformance module
  // re-exports the broken HAL by absolute URL.
  const broken = pathToFileURL(join(root, 'test/conformance/fixtures/broken-mock-conformance.ts')).href;
  writeFileSync(join(vendorDir, 'package.json'), JSON.stringify({ name: 'acme-hal', type: 'module' }));
  writeFileSync(join(vendorDir, 'acme-conformance.ts'), `export { default } from '${broken}';\n`);
  const r = await conformance(['--hal', 'acme-conformance.ts', '--hal', join(root, 'hal/mock/mock-conformance.ts'), '--only', 'identification,scrub,memory.verify']);
  assert.equal(r.code, 1, r.stderr + r.stdout);
  const lines = r.stdout.split('\n');
  assert.ok(lines.includes(`HAL conformance: broken-mock (${join(vendorDir, 'acme-conformance.ts')})`), r.stdout);
  assert.ok(lines.some((l) => /^ {2}FAIL {2}identification\.refuses-unknown-id: open\(\) of an unknown device id 0x1234 did not throw VGPU_ENODEV \(it succeeded\) {2}\(\d+ ms\)$/.test(l)), r.stdout);
  assert.ok(lines.some((l) => /^ {2}FAIL {2}scrub\.device-view: scrub of FB range #\d+ \[0x[0-9a-f]+, \+2 MiB\) left 1 non-zero byte, first at FB offset 0x[0-9a-f]+ \(read through the device's view\)/.test(l)), r.stdout);
  assert.ok(lines.some((l) => /^ {2}PASS {2}identification\.refuses-foreign-transport /.test(l)), r.stdout);
  assert.ok(lines.some((l) => /^broken-mock: \d+ passed, 3 failed, 1 skipped/.test(l)), r.stdout);
  assert.ok(lines.includes('  SKIP  memory.verify: skipped: the HAL offers no FramebufferMemory.verify (optional in the contract)'), r.stdout);
  assert.ok(lines.some((l) => /^mock: \d+ passed, 0 failed, 1 skipped/.test(l)), r.stdout);
});

test('usage errors exit 2 and say what to pass; --list names every check', async () => {
  const missing = await conformance(['--hal', 'no-such-module.ts']);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, new RegExp(`no HAL conformance module at ${join(vendorDir, 'no-such-module.ts').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
  assert.match(missing.stderr, /default export is \{ name, createFixture \}/);
  const only = await conformance(['--only', 'memmory']);
  assert.equal(only.code, 2);
  assert.match(only.stderr, /no conformance check matches 'memmory'/);
  const list = await conformance(['--list']);
  assert.equal(list.code, 0);
  assert.deepEqual(list.stdout.trim().split('\n').map((l) => l.split(/\s+/)[0]), CHECKS.map((c) => c.id));
});
