/**
 * The mock's copy engine is the generation-neutral simulated one (hal/sim/ce): pushbuffer decoding, the DMA-copy
 * class methods (remap memset, pitch copy), the one-word semaphore release and the non-stall interrupt. This file
 * keeps the names the mock has always exported.
 */
export { CE, methodHeader } from '../sim/ce/ce-methods.js';
export { decodePushbuf, type MethodWrite } from '../sim/ce/pushbuf-decoder.js';
export { runCopyEngine, type CeTarget, type CeRunResult, type CeRunOptions } from '../sim/ce/sim-copy-engine.js';
