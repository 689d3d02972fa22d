/**
 * Catalogue file -> metadata binary on disk. Writes only when the bytes differ, and atomically (temp file +
 * rename), so a daemon starting while a build runs never reads half a file.
 */
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { assetPath } from '../core/runtime/package-root.js';
import { computeFileCrc, metadataFileName } from '../core/metadata/metadata-format.js';
import { buildMetadata } from '../core/metadata/metadata-writer.js';
import { loadCatalogs } from './compile-catalog.js';

/** metadata/ada.yaml at the package root (a data file: found the same way from the sources and from dist/). */
export const DEFAULT_CATALOG_PATH = assetPath('metadata', 'ada.yaml');
/** Every generation's catalogue, compiled together into the one default metadata file. */
export const DEFAULT_CATALOG_PATHS: readonly string[] = [DEFAULT_CATALOG_PATH, assetPath('metadata', 'hopper.yaml')];
/** metadata/out/ at the package root (git-ignored) */
export const DEFAULT_OUT_DIR = assetPath('metadata', 'out');

export interface CompiledFile {
  path: string;
  bytes: Uint8Array;
  crc: number;
  /** False when an identical file was already there. */
  written: boolean;
}

export function compileCatalogFile(sourcePath: string | readonly string[] = DEFAULT_CATALOG_PATHS, outDir = DEFAULT_OUT_DIR): CompiledFile {
  const { spec } = loadCatalogs(typeof sourcePath === 'string' ? [sourcePath] : sourcePath);
  const bytes = buildMetadata(spec);
  const path = join(outDir, metadataFileName(spec.gspVersion));
  const crc = computeFileCrc(bytes);
  let current: Uint8Array | undefined;
  try {
    current = readFileSync(path);
  } catch {
    current = undefined;
  }
  if (current && Buffer.compare(current, bytes) === 0) return { path, bytes, crc, written: false };
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  try {
    writeFileSync(tmp, bytes);
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
  return { path, bytes, crc, written: true };
}
