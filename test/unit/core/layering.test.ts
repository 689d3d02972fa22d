// The arrows are bin → plugins → core ← hal: the core knows no chip and no plugin. This test keeps it so.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '../../..');
const FORBIDDEN = /from ['"](\.\.\/)+(hal|plugins)\//;
const DYNAMIC = /import\(\s*['"](\.\.\/)+(hal|plugins)\//;

test('nothing under core/ imports from hal/ or plugins/', () => {
  const files = readdirSync(join(root, 'core'), { recursive: true })
    .map(String).filter((f) => f.endsWith('.ts')).map((f) => join(root, 'core', f));
  assert.ok(files.length >= 10, `expected the core's files, found ${files.length}`);
  const offenders: string[] = [];
  for (const f of files) {
    readFileSync(f, 'utf8').split('\n').forEach((line, i) => {
      if (FORBIDDEN.test(line) || DYNAMIC.test(line)) offenders.push(`${relative(root, f)}:${i + 1}: ${line.trim()}`);
    });
  }
  assert.deepEqual(offenders, []);
});

test('the layering check recognises a forbidden import', () => {
  assert.ok(FORBIDDEN.test(`import { AdaHal } from '../hal/ada-lovelace/ada-hal.js';`));
  assert.ok(FORBIDDEN.test(`import x from "../../plugins/scrub/scrub-plugin.js";`));
  assert.ok(!FORBIDDEN.test(`import { TOKENS } from './tokens.js';`));
});
