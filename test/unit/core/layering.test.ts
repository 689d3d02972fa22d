// The arrows are bin → plugins → core ← hal: the core knows no chip and no plugin, and a plugin reaches another
// plugin only through core contracts (tokens, events), never by importing its files. This test keeps it so.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';

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

/** Every module specifier of a source text (static, re-export, side-effect, dynamic), with its 1-based line. */
function specifiers(text: string): { spec: string; line: number }[] {
  const out: { spec: string; line: number }[] = [];
  // `from '…'` also covers multi-line `import {\n a,\n} from '…'` and `export … from '…'`.
  const re = /(?:\bfrom\s*|\bimport\s*\(\s*|^\s*import\s+)['"]([^'"]+)['"]/gm;
  for (const m of text.matchAll(re)) out.push({ spec: m[1]!, line: text.slice(0, m.index).split('\n').length });
  return out;
}

/** `plugins/<X>/…` → X, anything else → null (paths relative to the repository root). */
function pluginOf(rel: string): string | null {
  const parts = rel.split(sep);
  return parts[0] === 'plugins' && parts.length > 2 ? parts[1]! : null;
}

/** Imports in `text` (the file at repository path `rel`, under plugins/X/) that reach into plugins/Y/, Y ≠ X. */
function crossPluginImports(rel: string, text: string): string[] {
  const own = pluginOf(rel);
  const offenders: string[] = [];
  for (const { spec, line } of specifiers(text)) {
    if (!spec.startsWith('.')) continue; // packages and node: builtins
    const target = relative(root, resolve(root, dirname(rel), spec));
    const other = pluginOf(target);
    if (other !== null && other !== own) offenders.push(`${rel}:${line}: imports ${spec} (plugin '${other}')`);
  }
  return offenders;
}

test('no plugin imports from another plugin (only core contracts and events connect them)', () => {
  const plugins = readdirSync(join(root, 'plugins'), { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name);
  assert.ok(plugins.length >= 2, `expected several plugins, found ${plugins.join(', ')}`);
  const files = readdirSync(join(root, 'plugins'), { recursive: true })
    .map(String).filter((f) => f.endsWith('.ts')).map((f) => join('plugins', f));
  assert.ok(files.length >= 20, `expected the plugins' files, found ${files.length}`);
  const offenders = files.flatMap((f) => crossPluginImports(f, readFileSync(join(root, f), 'utf8')));
  assert.deepEqual(offenders, []);
});

test('the plugin boundary check recognises a crossing, in every import form', () => {
  const f = join('plugins', 'migration', 'vgpu-device.ts');
  const crossing = [
    `import type { GpuLifecycle } from '../lifecycle/gpu-lifecycle.js';`,
    `import {\n  VgpuRecord,\n} from "../lifecycle/vgpu-record.js";`,
    `export { x } from '../scrub/index.js';`,
    `import '../logging/logging-plugin.js';`,
    `const m = await import('../api/api-plugin.js');`,
    `import { y } from '../../plugins/metrics/vgpud-metrics.js';`,
  ];
  for (const text of crossing) assert.equal(crossPluginImports(f, text).length, 1, text);
  assert.match(crossPluginImports(f, crossing[1]!)[0]!, /vgpu-device\.ts:3: .*plugin 'lifecycle'/);
  const fine = [
    `import { MailboxMigrationClient } from './mailbox-migration-client.js';`,
    `import { encode } from './stream/stream-encoder.js';`,
    `import { TOKENS } from '../../core/tokens.js';`,
    `import { z } from 'zod';`,
    `// see plugins/lifecycle/gpu-lifecycle.ts for the record`,
  ];
  for (const text of fine) assert.deepEqual(crossPluginImports(f, text), [], text);
  // A file in a nested folder of the same plugin may import its parent folder.
  assert.deepEqual(crossPluginImports(join('plugins', 'migration', 'stream', 'x.ts'), `import { a } from '../fsm.js';`), []);
});

test('the conformance kit drives a HAL only through core contracts: nothing under conformance/ imports hal/', () => {
  // A vendor runs the kit against their own HAL; a kit that reached into one of ours would test that one instead.
  const files = readdirSync(join(root, 'conformance'), { recursive: true })
    .map(String).filter((f) => f.endsWith('.ts')).map((f) => join('conformance', f));
  assert.ok(files.length >= 10, `expected the kit's files, found ${files.length}`);
  const offenders: string[] = [];
  for (const f of files) {
    for (const { spec, line } of specifiers(readFileSync(join(root, f), 'utf8'))) {
      if (!spec.startsWith('.')) continue;
      const target = relative(root, resolve(root, dirname(f), spec));
      if (target.split(sep)[0] === 'hal') offenders.push(`${f}:${line}: imports ${spec}`);
    }
  }
  assert.deepEqual(offenders, []);
});

/** Imports of any .ts file under `from` that land under `to` (both repository folders). */
function importsBetween(from: string, to: string): string[] {
  const files = readdirSync(join(root, from), { recursive: true }).map(String).filter((f) => f.endsWith('.ts')).map((f) => join(from, f));
  const offenders: string[] = [];
  for (const f of files) {
    for (const { spec, line } of specifiers(readFileSync(join(root, f), 'utf8'))) {
      if (!spec.startsWith('.')) continue;
      const target = relative(root, resolve(root, dirname(f), spec));
      if (target === to || target.startsWith(`${to}${sep}`)) offenders.push(`${f}:${line}: imports ${spec}`);
    }
  }
  return offenders;
}

test('GPU generations share code only through generation-neutral folders: hal/hopper and hal/ada-lovelace never import each other', () => {
  assert.ok(readdirSync(join(root, 'hal', 'hopper')).length > 0 && readdirSync(join(root, 'hal', 'ada-lovelace')).length > 0);
  assert.deepEqual(importsBetween(join('hal', 'hopper'), join('hal', 'ada-lovelace')), []);
  assert.deepEqual(importsBetween(join('hal', 'ada-lovelace'), join('hal', 'hopper')), []);
  // …and what they share (simulator, GSP transport, the GSP HAL) imports neither.
  for (const shared of ['sim', 'gsp', 'gsp-gpu']) {
    for (const gen of ['ada-lovelace', 'hopper']) assert.deepEqual(importsBetween(join('hal', shared), join('hal', gen)), [], `hal/${shared} -> hal/${gen}`);
  }
});
