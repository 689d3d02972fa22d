/**
 * The metadata file the daemon loads by default: metadata/out/vgpu-570.144.bin, compiled from every generation's catalogue
 * (metadata/ada.yaml, metadata/hopper.yaml).
 * metadata/out/ is git-ignored, so the daemon builds the file on demand.
 */
import { compileCatalogFile, DEFAULT_CATALOG_PATH, DEFAULT_CATALOG_PATHS, DEFAULT_OUT_DIR } from './compile-to-file.js';

export { DEFAULT_CATALOG_PATH, DEFAULT_CATALOG_PATHS, DEFAULT_OUT_DIR };

export interface EnsureDefaultMetadataOptions {
  /** Catalogue(s) to compile (default: every generation's, DEFAULT_CATALOG_PATHS). */
  sourcePath?: string | readonly string[];
  /** Output folder (default metadata/out/). */
  outDir?: string;
}

/**
 * Path of the default metadata file, (re)building it when missing or stale. Staleness is judged by content, not
 * mtime: the catalogue is compiled (a few ms) and the file rewritten only if its bytes differ, so an edited YAML,
 * a changed compiler or a damaged file are all repaired, and clock skew cannot fool it.
 * Throws VgpuError(Metadata) naming the YAML key when the catalogue is invalid.
 */
export function ensureDefaultMetadata(opts: EnsureDefaultMetadataOptions = {}): string {
  return compileCatalogFile(opts.sourcePath ?? DEFAULT_CATALOG_PATHS, opts.outDir ?? DEFAULT_OUT_DIR).path;
}
