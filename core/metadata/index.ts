/** vGPU metadata file: format constants, reader, writer and the RM-control payload codec (docs/metadata-format.md). */
export * from './metadata-format.js';
export type * from './metadata-file.js';
export { checkMetadataFor, parseMetadata, typesFor, type ParseMetadataOptions } from './metadata-reader.js';
export { parseMetadataShared } from './shared-metadata.js';
export { buildMetadata, encodeMetadataUnchecked } from './metadata-writer.js';
export * from './vgpu-info-record.js';
