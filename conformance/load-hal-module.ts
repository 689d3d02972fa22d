/**
 * Load a HAL conformance module by path: the repository's own (mock, Ada, …) or a vendor's, anywhere on disk, in
 * JavaScript or TypeScript (tsx's loader is registered first for a .ts module, as the plugin host does for a
 * TypeScript plugin in plugins.paths).
 */
import { existsSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ErrorCode, VgpuError } from '../core/contracts/exceptions.js';
import { siblingModule } from '../core/runtime/module-entry.js';
import { ensureTypeScriptLoader } from '../core/runtime/typescript-loader.js';
import { checkModule } from './conformance-session.js';
import { describeError } from './describe.js';
import type { HalConformanceModule } from './hal-fixture.js';

export interface LoadedHalModule {
  module: HalConformanceModule;
  /** Absolute path it was loaded from. */
  path: string;
}

/** The repository's own HAL modules, in the order `npm run conformance` runs them without --hal. */
export const BUILTIN_HAL_MODULES: readonly string[] = ['../hal/mock/mock-conformance', '../hal/ada-lovelace/ada-conformance', '../hal/hopper/hopper-conformance'];

export async function loadHalModule(spec: string, cwd = process.cwd()): Promise<LoadedHalModule> {
  const path = isAbsolute(spec) ? spec : resolve(cwd, spec);
  if (!existsSync(path)) {
    throw new VgpuError(ErrorCode.NotFound, `no HAL conformance module at ${path}`, {
      hint: 'pass the path of a .js or .ts module whose default export is { name, createFixture } (docs/vendor-guide.md)',
      details: { path },
    });
  }
  let mod: { default?: unknown };
  try {
    if (/\.[cm]?ts$/.test(path)) await ensureTypeScriptLoader();
    mod = (await import(pathToFileURL(path).href)) as { default?: unknown };
  } catch (e) {
    throw new VgpuError(ErrorCode.InvalidArgument, `cannot import the HAL conformance module ${path}: ${describeError(e)}`, {
      hint: 'the file must be an ES module Node can import (with its dependencies installed)', details: { path }, cause: e,
    });
  }
  checkModule(mod.default, path);
  return { module: mod.default, path };
}

/** The repository's own modules, found next to this file both from the sources and from dist/. */
export function builtinHalModulePaths(): string[] {
  return BUILTIN_HAL_MODULES.map((m) => siblingModule(import.meta.url, m));
}
