/**
 * One parse of a metadata file for every GPU that loads the same bytes. Each GPU's manager reads the file at init and
 * keeps the parsed result (its blob is uploaded again after a GPU reset); the default file is ~4 MiB (the blobs of
 * every supported board), so eight GPUs holding a private copy each cost ~28 MiB of daemon memory for nothing
 * (bench:scale). The result is deep-frozen, so sharing it is safe.
 *
 * Keyed by the SHA-256 of the bytes (not by path: a reload after an operator rebuilt the file must see the new
 * content), held weakly: once no manager uses a file (a reload replaced it) it can be collected.
 */
import { createHash } from 'node:crypto';
import type { MetadataFile } from './metadata-file.js';
import { checkMetadataFor, parseMetadata, type ParseMetadataOptions } from './metadata-reader.js';

const parsed = new Map<string, WeakRef<MetadataFile>>();

/** `parseMetadata(bytes, opts)`, with the same result and the same errors, reusing an earlier parse of equal bytes. */
export function parseMetadataShared(bytes: Uint8Array, opts: ParseMetadataOptions = {}): MetadataFile {
  const key = createHash('sha256').update(bytes).digest('hex');
  const known = parsed.get(key)?.deref();
  if (known !== undefined) {
    checkMetadataFor(known, opts);
    return known;
  }
  const file = parseMetadata(bytes, opts);
  for (const [k, ref] of parsed) if (ref.deref() === undefined) parsed.delete(k);
  parsed.set(key, new WeakRef(file));
  return file;
}
