// Types of build-state.mjs (plain JavaScript so the launchers can run it before tsx or any dependency loads).
export const SOURCE_DIRS: readonly string[];
export const SHALLOW_DIRS: readonly string[];
export const CONFIG_FILES: readonly string[];
/** dist/.build-stamp.json, relative to the package root. */
export const STAMP: string;
export interface SourceFile {
  path: string;
  mtimeMs: number;
  /** tsconfig / package.json rather than a compiled source. */
  config?: boolean;
}
export function listSources(root: string): SourceFile[];
export type BuildState = { fresh: true } | { fresh: false; reason: string };
export function buildState(root: string): BuildState;
