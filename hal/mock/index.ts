/** Public surface of the mock HAL (tests and the daemon's `--mock` mode import from here). */
export { MockHal, type MockHalOptions } from './mock-hal.js';
export { MockPciBus, resolveMockSpec, ALL_MOCK_CAPS, type MockDeviceOptions, type MockDeviceSpec } from './mock-pci-bus.js';
export { MockGpu, emptyBooks, type MockBooks, type MockHostEvent } from './mock-gpu.js';
export { MockFirmware, MOCK_EVENT, compareVersions, type ControlHandler, type RpcHandler, type MockReply } from './mock-firmware.js';
export { MockMemory } from './mock-memory.js';
export { SparseByteStore, type SparseByteStoreOptions } from './sparse-byte-store.js';
export { MockChannelPool, MockCopyChannel, type MockSubmission, type CopyChannelInfo } from './mock-channels.js';
export { MockRegisters } from './mock-registers.js';
export { MockControls, InflightCalls, type RunContext } from './mock-controls.js';
export { FaultInjector, MOCK_ASYNC_OPS, MOCK_SYNC_OPS, type FaultSpec, type FaultHandle, type FaultMode, type MockOp } from './mock-faults.js';
export { CallRecorder, type MockCallRecord } from './mock-call-recorder.js';
export { CE, methodHeader, decodePushbuf, runCopyEngine, type MethodWrite, type CeRunResult } from './ce-pushbuf-decoder.js';
export { createMockHalPlugin, MOCK_HAL_PLUGIN_NAME } from './mock-hal-plugin.js';
export { MockPluginTasks, type MockPluginTaskOptions, type MockPluginMessage } from './mock-plugin-tasks.js';
export { answerManagerControls } from './mock-manager-controls.js';
