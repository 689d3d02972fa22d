/** The generation-neutral simulated copy engine: pushbuffer decoding, channel VA spaces and execution. */
export { CE, LaunchDma, RemapComponents, methodHeader, splitVa, joinVa, SEMAPHORE_RELEASE_ONE_WORD, INTERRUPT_NON_BLOCKING } from './ce-methods.js';
export { decodePushbuf, PushbufDecodeError, type MethodWrite } from './pushbuf-decoder.js';
export { ChannelVaSpace, CeMmuFault, type VaMapping } from './channel-va-space.js';
export { runCopyEngine, vaTarget, CeExecError, type CeTarget, type CeRunResult, type CeRunOptions } from './sim-copy-engine.js';
export { SimCopyChannel, type SimCopyChannelOptions, type SimSubmission } from './sim-copy-channel.js';
