/** Public surface of the state plugin: the write-ahead vGPU journal on files (contract: core/contracts/vgpu-journal.ts). */
export { createStatePlugin, STATE_PLUGIN_NAME } from './state-plugin.js';
export { FileVgpuJournal, JOURNAL_VERSION, SEQ_REBUILD_MARGIN, DAMAGED_DIR } from './file-vgpu-journal.js';
export { FileRequestJournal, REQUEST_JOURNAL_VERSION } from './file-request-journal.js';
export { atomicWriteFile, fsyncDir, tempPathFor, TEMP_SUFFIX } from './atomic-write.js';
