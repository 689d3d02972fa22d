/**
 * The mock HAL as a conformance-kit fixture (conformance/hal-fixture.ts): one mock RTX 6000 Ada at 0000:41:00.0
 * (48 GiB sparse FB, 32 VFs, 2048 CHIDs), its firmware scripted to answer the vGPU manager (bring-up controls and a
 * plugin task per vGPU), and the mock's test controls as the kit's capabilities:
 *
 *   deviceView      the mock FB's byte store (what the mock copy engine writes), read without a host mapping
 *   hostEvents      MockHal.hostEvent
 *   firmwareEvents  an RC_TRIGGERED record emitted by the mock firmware
 *   faults          a hung firmware.control (dropped reply) and a GSP crash; no corrupted reply: the mock has no
 *                   wire format a reply could be damaged in, so that check is reported as skipped
 *   inspect         the RM clients the mock firmware holds
 *
 * `npm run conformance -- --hal hal/mock/mock-conformance.ts`
 */
import type { HalConformanceModule, HalFixture, HalFixtureOptions } from '../../conformance/hal-fixture.js';
import type { PhysicalGpu } from '../../core/contracts/hal.js';
import { MockGpu } from './mock-gpu.js';
import { MOCK_EVENT } from './mock-firmware.js';
import { MockHal, type MockHalOptions } from './mock-hal.js';
import { answerManagerControls } from './mock-manager-controls.js';
import { MockPluginTasks } from './mock-plugin-tasks.js';

export const MOCK_CONFORMANCE_BDF = '0000:41:00.0';

/** Give a freshly opened mock GPU the firmware answers a vGPU host needs (once per GPU object). */
export function scriptMockFirmware(gpu: PhysicalGpu, scripted = new WeakSet<MockGpu>()): void {
  if (!(gpu instanceof MockGpu) || scripted.has(gpu)) return; // a re-attached GPU keeps its script
  scripted.add(gpu);
  answerManagerControls(gpu);
  MockPluginTasks.install(gpu);
}

/** The mock fixture; `mockOptions` lets a test build a variant (a deliberately broken HAL wraps this one). */
export async function createMockFixture(_opts: HalFixtureOptions, mockOptions: MockHalOptions = {}): Promise<HalFixture & { mock: MockHal }> {
  const mock = new MockHal({ devices: [{ bdf: MOCK_CONFORMANCE_BDF }], ...mockOptions });
  const scripted = new WeakSet<MockGpu>();
  const devices = await mock.bus.list();
  return {
    mock,
    hal: mock,
    bus: mock.bus,
    devices,
    onOpen: (gpu) => scriptMockFirmware(gpu, scripted),
    deviceView: { readFb: (bdf, offset, length) => Uint8Array.from(mock.gpu(bdf).memory.store.read(offset, length)) },
    hostEvents: { raise: async (bdf, e) => mock.hostEvent({ ...e }, bdf) },
    firmwareEvents: {
      raiseRcError: async (bdf, gfid) => {
        const payload = new Uint8Array(4);
        mock.gpu(bdf).firmware.emitEvent({ eventId: MOCK_EVENT.RC_TRIGGERED.id, name: MOCK_EVENT.RC_TRIGGERED.name, gfid, payload });
      },
    },
    faults: {
      // A hang is bounded by the caller's timeoutMs: exactly a reply that never comes.
      dropNextReply: async (bdf) => { mock.faults.inject({ op: 'firmware.control', mode: 'hang', gpu: bdf }); },
      crash: async (bdf) => mock.crash(bdf),
    },
    inspect: { rmClients: async (bdf) => mock.gpu(bdf).firmware.liveClients().length },
    teardown: async () => {
      mock.reset();
      for (const g of mock.gpus()) await g.close();
    },
  };
}

const mockConformance: HalConformanceModule = {
  name: 'mock',
  createFixture: (opts) => createMockFixture(opts),
};

export default mockConformance;
