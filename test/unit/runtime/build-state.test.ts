// The stale-build check the launchers run before anything else (bin/runtime/build-state.mjs): dist/ counts as
// fresh only when no compiled source, tsconfig or package.json changed after the build started and no source
// disappeared. A wrong "fresh" would run old code after a `git pull`; a wrong "stale" only costs a slower start.
import { afterEach, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { buildState as check, listSources as sources, STAMP } from '../../../bin/runtime/build-state.mjs';

describe('build-state: is dist/ up to date with the sources?', () => {
  let root: string;
  const T0 = new Date('2025-01-01T00:00:00Z');
  const BUILD = T0.getTime() + 60_000; // the build started a minute after every file was last written
  const file = (rel: string, at = T0): void => {
    const p = join(root, rel);
    mkdirSync(dirname(p), { recursive: true });
    writeFileSync(p, '// x\n');
    utimesSync(p, at, at);
  };
  const stamp = (startedAtMs: number, count: number): void => {
    mkdirSync(join(root, 'dist'), { recursive: true });
    writeFileSync(join(root, STAMP), JSON.stringify({ startedAtMs, sources: count }));
  };

  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'vgpud-build-state-'));
    for (const f of ['core/a.ts', 'hal/x/b.ts', 'plugins/p/c.ts', 'bin/d.ts', 'metadata/e.ts', 'native/index.ts', 'tsconfig.json', 'package.json']) file(f);
    // Not compiled, so never a reason to rebuild: dependencies, the addon's build output, generated metadata.
    file('native/node_modules/node-addon-api/x.ts');
    file('metadata/out/generated.ts');
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it('lists the compiled sources only', () => {
    const listed = sources(root).filter((f) => !f.config).map((f) => f.path.slice(root.length + 1)).sort();
    assert.deepEqual(listed, ['bin/d.ts', 'core/a.ts', 'hal/x/b.ts', 'metadata/e.ts', 'native/index.ts', 'plugins/p/c.ts']);
  });

  it('missing without a stamp, fresh after a build, stale once a source changes', () => {
    assert.deepEqual(check(root), { fresh: false, reason: 'missing (never built)' });
    stamp(BUILD, 6);
    assert.deepEqual(check(root), { fresh: true });
    file('hal/x/b.ts', new Date(BUILD + 1000)); // git pull rewrote it
    assert.deepEqual(check(root), { fresh: false, reason: `older than ${join('hal', 'x', 'b.ts')}` });
  });

  it('a file edited while the build ran makes it stale (the stamp is the build START)', () => {
    file('core/a.ts', new Date(BUILD + 1));
    stamp(BUILD, 6);
    assert.equal(check(root).fresh, false);
  });

  it('stale when a source is added or removed, or tsconfig/package.json changes', () => {
    stamp(BUILD, 6);
    file('plugins/p/new.ts', new Date(BUILD + 5000));
    assert.equal(check(root).fresh, false, 'added');
    unlinkSync(join(root, 'plugins/p/new.ts'));
    unlinkSync(join(root, 'bin/d.ts')); // deleting changes no remaining mtime: the count catches it
    assert.deepEqual(check(root), { fresh: false, reason: 'built from 6 source files, there are 5 now' });
    file('bin/d.ts');
    assert.equal(check(root).fresh, true);
    file('tsconfig.json', new Date(BUILD + 5000));
    assert.equal(check(root).fresh, false, 'tsconfig changed');
  });

  it('changes outside the compiled tree leave it fresh', () => {
    stamp(BUILD, 6);
    file('native/node_modules/node-addon-api/x.ts', new Date(BUILD + 5000));
    file('metadata/out/generated.ts', new Date(BUILD + 5000));
    file('test/unit/t.test.ts', new Date(BUILD + 5000));
    assert.deepEqual(check(root), { fresh: true });
  });

  it('a damaged stamp is not trusted', () => {
    mkdirSync(join(root, 'dist'), { recursive: true });
    writeFileSync(join(root, STAMP), '{"startedAtMs": "yesterday"}');
    assert.equal(check(root).fresh, false);
    writeFileSync(join(root, STAMP), 'not json');
    assert.equal(check(root).fresh, false);
  });
});
