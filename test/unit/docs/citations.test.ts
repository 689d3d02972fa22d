// The project cites its own sources: comments and docs point at docs/reference/<topic>.md or at a public source,
// never at notes that do not ship with the repository. Whoever picks the project up must be able to follow every
// citation. This test keeps both halves true: no tracked file cites an outside note, and every docs/reference file
// that something names exists.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';

const root = resolve(import.meta.dirname, '../../..');

/** Files whose text can carry a citation. */
const TEXT = /\.(ts|mts|cts|mjs|cjs|js|md|ya?ml|json|cc|cpp|c|h|hpp|gyp|gypi|proto|sh|service)$/;
/** Never ours to check: dependencies and build output. */
const SKIP_DIR = new Set(['node_modules', 'dist', 'build', '.git', 'coverage']);

// The patterns are assembled from pieces so that this file does not cite what it forbids.
const OUTSIDE: { what: string; re: RegExp }[] = [
  { what: 'the unshipped design notes', re: new RegExp(['seed', '[- ]?', 'spec'].join(''), 'i') },
  { what: 'a folder beside the repository', re: new RegExp(['\\.\\.', '/', 'shared', '\\b'].join('')) },
  { what: 'an absolute path outside the repository', re: new RegExp(['/', 'work', '/', 'shared'].join('')) },
  { what: 'the unshipped fact sheets', re: new RegExp(['hardware', '-and-', 'perf|operators', '-and-', 'peers'].join('')) },
];

/** Tracked files (git), or every file outside SKIP_DIR when the tree is not a git checkout (a release tarball). */
function trackedFiles(): string[] {
  try {
    const out = execFileSync('git', ['ls-files', '-z'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    return out.split('\0').filter((f) => f.length > 0 && existsSync(join(root, f)));
  } catch {
    const files: string[] = [];
    const walk = (dir: string): void => {
      for (const e of readdirSync(join(root, dir), { withFileTypes: true })) {
        if (e.isDirectory()) { if (!SKIP_DIR.has(e.name)) walk(join(dir, e.name)); } else files.push(join(dir, e.name));
      }
    };
    walk('.');
    return files.map((f) => relative('.', f));
  }
}

function textFiles(): { rel: string; text: string }[] {
  return trackedFiles()
    .filter((f) => TEXT.test(f) && !f.split(/[\\/]/).some((part) => SKIP_DIR.has(part)))
    .map((rel) => ({ rel, text: readFileSync(join(root, rel), 'utf8') }));
}

/** Lines of `text` that cite something outside the repository, as "file:line: what". */
function outsideCitations(rel: string, text: string): string[] {
  const found: string[] = [];
  text.split('\n').forEach((line, i) => {
    for (const { what, re } of OUTSIDE) if (re.test(line)) found.push(`${rel}:${i + 1}: cites ${what}: ${line.trim().slice(0, 120)}`);
  });
  return found;
}

/** docs/reference files `text` names: as a repository path anywhere, or as a relative Markdown link from a doc. */
function referenceTargets(rel: string, text: string): { target: string; line: number }[] {
  const out: { target: string; line: number }[] = [];
  const lineOf = (index: number): number => text.slice(0, index).split('\n').length;
  for (const m of text.matchAll(/docs\/reference\/([A-Za-z0-9._-]+\.md)/g)) {
    out.push({ target: `docs/reference/${m[1]!}`, line: lineOf(m.index) });
  }
  if (rel.endsWith('.md')) {
    for (const m of text.matchAll(/\]\(([^)#\s]+\.md)(?:#[^)]*)?\)/g)) {
      const link = m[1]!;
      if (/^[a-z]+:/i.test(link)) continue; // URLs
      const target = relative(root, resolve(root, dirname(rel), link)).split(sep).join('/');
      if (target.startsWith('docs/reference/')) out.push({ target, line: lineOf(m.index) });
    }
  }
  return out;
}

test('no tracked file cites notes or folders outside the repository', () => {
  const files = textFiles();
  assert.ok(files.length >= 100, `expected the repository's files, found ${files.length}`);
  const offenders = files.flatMap(({ rel, text }) => outsideCitations(rel, text));
  assert.deepEqual(offenders, [], 'cite docs/reference/<topic>.md or the public source (repository + path, or URL) instead');
});

test('every docs/reference file that code or docs name exists', () => {
  const missing: string[] = [];
  let named = 0;
  for (const { rel, text } of textFiles()) {
    for (const { target, line } of referenceTargets(rel, text)) {
      named++;
      if (!existsSync(join(root, target))) missing.push(`${rel}:${line}: ${target} does not exist`);
    }
  }
  assert.ok(named >= 10, `expected citations of docs/reference files, found ${named}`);
  assert.deepEqual(missing, []);
});

test('every docs/reference file is listed in its index', () => {
  const index = readFileSync(join(root, 'docs/reference/README.md'), 'utf8');
  const unlisted = readdirSync(join(root, 'docs/reference'))
    .filter((f) => f.endsWith('.md') && f !== 'README.md' && !index.includes(`](${f})`));
  assert.deepEqual(unlisted, [], 'add a one-line entry to docs/reference/README.md');
});

test('the checks recognise what they forbid', () => {
  // Built at run time, for the same reason as the patterns (and so the citation scan does not see these samples).
  const note = ['see', 'seed', 'spec §4.6'].join(' ');
  const folder = ['from', ['..', 'shared', 'spec', 'x.md'].join('/')].join(' ');
  const ref = ['docs', 'reference'].join('/');
  assert.equal(outsideCitations('a.ts', `// ${note}\n`).length, 1);
  assert.equal(outsideCitations('a.md', `${folder}\n`).length, 1);
  assert.deepEqual(outsideCitations('a.ts', `// ${ref}/gsp-queues.md §Checksum\n`), []);
  assert.deepEqual(referenceTargets('docs/x.md', 'see [q](reference/gsp-queues.md#checksum)').map((t) => t.target),
    [`${ref}/gsp-queues.md`]);
  assert.deepEqual(referenceTargets(`${ref}/a.md`, '[b](b.md) and [c](../c.md) and [u](https://x.org/y.md)')
    .map((t) => t.target), [`${ref}/b.md`]);
  assert.deepEqual(referenceTargets('core/a.ts', `// ${ref}/none-such.md`).map((t) => t.target), [`${ref}/none-such.md`]);
});
