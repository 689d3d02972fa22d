/**
 * `npm run metadata:build [-- --source FILE.yaml]… [--out DIR]`: compile the YAML type catalogues (default: every
 * generation's, metadata/ada.yaml and metadata/hopper.yaml, into one file) to
 * DIR/vgpu-<gsp version>.bin and print its path, size and CRC. Reproducible: the same YAML gives the same bytes.
 */
import { parseArgs } from 'node:util';
import { isVgpuError } from '../core/contracts/exceptions.js';
import { compileCatalogFile, DEFAULT_CATALOG_PATHS, DEFAULT_OUT_DIR } from './compile-to-file.js';

function main(): number {
  const { values } = parseArgs({
    options: { source: { type: 'string', multiple: true, default: [...DEFAULT_CATALOG_PATHS] }, out: { type: 'string', default: DEFAULT_OUT_DIR } },
    strict: true,
  });
  try {
    const r = compileCatalogFile(values.source, values.out);
    const crc = `0x${r.crc.toString(16).padStart(8, '0')}`;
    console.log(`${r.path}\n  size ${r.bytes.byteLength} bytes, crc32 ${crc}${r.written ? '' : ' (unchanged)'}`);
    return 0;
  } catch (e) {
    if (isVgpuError(e)) {
      console.error(`error ${e.code}: ${e.message}\n  hint: ${e.hint}`);
      return 1;
    }
    throw e;
  }
}

process.exitCode = main();
