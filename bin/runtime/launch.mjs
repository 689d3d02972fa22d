// Start one of vgpud's programs (the daemon, vgpuctl, the simulator, …) from the compiled build in dist/ when it is
// up to date, or else from the TypeScript sources through tsx — never from a stale build. See the "Running compiled
// or from source" section of docs/architecture.md.
//
//   VGPUD_RUN_FROM=source  always run the sources through tsx (development)
//   VGPUD_RUN_FROM=dist    run dist/ and fail if it is missing or stale (production: the unit never falls back)
//   unset                  dist/ when fresh; otherwise the sources, with one line on stderr saying why
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { buildState } from './build-state.mjs';

const root = fileURLToPath(new URL('../..', import.meta.url));

/** Run `entry` (a module path from the package root without extension, e.g. 'bin/vgpud'). */
export async function launch(entry) {
  const mode = process.env.VGPUD_RUN_FROM ?? '';
  const compiled = join(root, 'dist', `${entry}.js`);
  if (mode !== 'source') {
    const state = buildState(root);
    if (state.fresh && existsSync(compiled)) {
      await import(pathToFileURL(compiled).href);
      return;
    }
    const why = state.fresh ? `has no ${entry}.js` : state.reason;
    if (mode === 'dist') {
      process.stderr.write(`vgpud: dist/ is ${why}; run \`npm run build\` (VGPUD_RUN_FROM=dist forbids running the sources)\n`);
      process.exit(1);
    }
    process.stderr.write(`vgpud: dist/ is ${why}: running the TypeScript sources through tsx (slower start); ` +
      '`npm run build` refreshes it\n');
  }
  const { register } = await import('tsx/esm/api');
  // The package's own tsconfig (decorators): tsx would otherwise look for one from the caller's working directory,
  // and a bin started from elsewhere (a vendor's package running `conformance`, a unit file) would not compile.
  register({ tsconfig: join(root, 'tsconfig.json') });
  await import(pathToFileURL(join(root, `${entry}.ts`)).href);
}
