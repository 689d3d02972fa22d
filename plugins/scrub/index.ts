/** Public surface of the scrub plugin. */
export { createScrubPlugin, SCRUB_PLUGIN_NAME } from './scrub-plugin.js';
export { CeScrubber, SCRUB_PATTERN } from './ce-scrubber.js';
export {
  buildScrubPushbuf, splitLines, SCRUB_PUSHBUF_DWORDS, SCRUB_SEMAPHORE_PAYLOAD, LAUNCH_MEMSET, LAUNCH_SEMAPHORE,
  REMAP_MEMSET_32, MAX_LINE_BYTES, type LineSplit, type ScrubPushbufParams,
} from './scrub-pushbuf.js';
export { NonstallWaiter, nonstallChid, FIFO_NONSTALL_EVENT_ID, FIFO_NONSTALL_EVENT_NAME } from './nonstall-waiter.js';
export { verifyRange } from './scrub-verify.js';
export { parseScrubConfig, scrubConfigSchema, type ScrubSettings } from './scrub-config.js';
