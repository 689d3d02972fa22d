/** A test plugin that provides 'vgpu-service' by binding TOKENS.VgpuManager to a FakeVgpuService. */
import { ContainerModule } from 'inversify';
import type { EventBus } from '../../../core/contracts/events.js';
import type { VgpudPlugin } from '../../../core/contracts/plugin.js';
import { TOKENS } from '../../../core/tokens.js';
import { FakeVgpuService, type FakeServiceOptions } from './fake-vgpu-service.js';

export function fakeServicePlugin(opts: Omit<FakeServiceOptions, 'bus'> = {}): { plugin: VgpudPlugin; service: () => FakeVgpuService } {
  let svc: FakeVgpuService | undefined;
  return {
    plugin: {
      manifest: { name: 'fake-lifecycle', version: '1.0.0', provides: ['vgpu-service'], requires: ['events'] },
      module: new ContainerModule(({ bind }) => {
        bind(TOKENS.VgpuManager).toDynamicValue((ctx) => (svc = new FakeVgpuService({ ...opts, bus: ctx.get<EventBus>(TOKENS.EventBus) })))
          .inSingletonScope();
      }),
    },
    service: () => {
      if (svc === undefined) throw new Error('fake service not resolved yet');
      return svc;
    },
  };
}
