/** A started container with the mock HAL and the scrub plugin, one booted mock GPU and one "vGPU" slice. */
import type { EventBus } from '../../../core/contracts/events.js';
import type { FbScrubber, ScrubRequest } from '../../../core/contracts/scrubber.js';
import { TOKENS } from '../../../core/tokens.js';
import { MockHal } from '../../../hal/mock/mock-hal.js';
import { createMockHalPlugin } from '../../../hal/mock/mock-hal-plugin.js';
import type { MockGpu } from '../../../hal/mock/mock-gpu.js';
import { createScrubPlugin } from '../../../plugins/scrub/scrub-plugin.js';
import { createTestContainer, type TestContainer } from '../../helpers/test-container.js';

export const MiB = 1n << 20n;
export const GiB = 1n << 30n;

export interface ScrubFixture {
  mock: MockHal;
  gpu: MockGpu;
  tc: TestContainer;
  bus: EventBus;
  scrubber: FbScrubber;
  /** A request for a fresh guest FB slice of `size` (reserved now) and 8 CHIDs. */
  slice(size: bigint, extra?: Partial<ScrubRequest>): ScrubRequest;
  close(): Promise<void>;
}

export async function scrubFixture(scrubConfig: Record<string, unknown> = {}, device: { fbBytes?: bigint } = {}): Promise<ScrubFixture> {
  const mock = new MockHal({ devices: [{ bdf: '0000:41:00.0', channels: 64, ...device }] });
  const tc = await createTestContainer({ plugins: [createMockHalPlugin(mock), createScrubPlugin()], config: { plugins: { scrub: scrubConfig } } });
  const gpu = await mock.openDevice();
  await gpu.firmware.boot({ version: '570.144' });
  const scrubber = tc.container.get<FbScrubber>(TOKENS.FbScrubber);
  const bus = tc.container.get<EventBus>(TOKENS.EventBus);
  let n = 0;
  return {
    mock, gpu, tc, bus, scrubber,
    slice(size, extra = {}) {
      const vgpuId = `vgpu-${++n}`;
      const range = gpu.memory.reserve({ size, align: 2n * MiB, owner: vgpuId, label: 'guest-fb' });
      const chids = gpu.channels.alloc(8, vgpuId);
      return { gpu, range, chids, vgpuId, reason: 'create', ...extra };
    },
    async close() {
      await gpu.close();
      await tc.stop();
    },
  };
}

/** Everything a scrub may have left behind on the GPU, except the slices' own FB ranges and CHIDs. */
export function leftovers(gpu: MockGpu): { semaphores: number; mappings: number; copyChannels: number; firmwareListeners: number } {
  const books = gpu.books();
  return {
    semaphores: books.fbRanges.filter((r) => r.label === 'semaphore').length,
    mappings: books.mappings.length,
    copyChannels: books.copyChannels.length,
    // MockFirmware keeps its listeners private; the count is the only way to see that the scrub removed its own.
    firmwareListeners: (gpu.firmware as unknown as { listeners: Set<unknown> }).listeners.size,
  };
}
