#!/usr/bin/env node
// `node bin/run.mjs <module> [args…]`: run any of vgpud's program modules (path from the package root, no
// extension, e.g. bin/sim-stop or metadata/build-metadata) the way the bins run: compiled when dist/ is fresh.
// Used by npm scripts.
import { launch } from './runtime/launch.mjs';

const entry = process.argv[2];
if (!entry) {
  process.stderr.write('usage: node bin/run.mjs <module-path-without-extension> [args…]\n');
  process.exit(2);
}
process.argv.splice(2, 1); // the module sees its own arguments from argv[2] on, as when run directly
await launch(entry.replace(/\.(ts|js)$/, ''));
