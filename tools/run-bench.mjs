#!/usr/bin/env node
// `node tools/run-bench.mjs <name> [args…]`: compile the sources and bench/<name>.ts with tsc
// (tsconfig.bench.json → .bench-dist/, incremental) and run the compiled bench, so a bench that times the daemon's
// own code times what production runs (compiled JS, issue 15 item 3). Under tsx the same code paid for tsx's
// transform choices — every closure wrapped to keep its name, among others — and measured a create at 1.0 ms
// where the compiled code takes 0.6 ms on the same host (docs/benchmarks.md). The bench's exit code, stdout and
// stderr are passed through; SIGINT/SIGTERM go to the bench, which cleans up its own children.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const [name, ...args] = process.argv.slice(2);
if (!name || name.startsWith('-')) {
  console.error('usage: node tools/run-bench.mjs <bench name, e.g. lifecycle-bench> [args…]');
  process.exit(2);
}
const source = join(root, 'bench', `${name}.ts`);
if (!existsSync(source)) {
  console.error(`run-bench: no bench named ${name} (bench/${name}.ts does not exist); see package.json's bench:* scripts`);
  process.exit(2);
}
let tsc;
try {
  tsc = createRequire(join(root, 'package.json')).resolve('typescript/bin/tsc');
} catch {
  console.error('run-bench: the typescript package is not installed; run `npm ci` first');
  process.exit(1);
}
const built = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.bench.json')], { cwd: root, stdio: 'inherit' });
if (built.status !== 0) {
  console.error(`run-bench: compiling the bench failed (tsc exited with ${built.status ?? built.signal}); fix the errors above`);
  process.exit(1);
}
const child = spawn(process.execPath, [join(root, '.bench-dist', 'bench', `${name}.js`), ...args], { cwd: root, stdio: 'inherit' });
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => child.kill(sig));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 128 + 1 : 1)));
