/** A plugin that binds a FakeVgpuService as TOKENS.VgpuManager (capability 'vgpu-service'), for the k8s plugins' tests. */
import { ContainerModule } from 'inversify';
import type { EventBus } from '../../../core/contracts/events.js';
import type { VgpudPlugin } from '../../../core/contracts/plugin.js';
import { TOKENS } from '../../../core/tokens.js';
import { FakeVgpuService } from './fake-vgpu-service.js';

export function fakeServicePlugin(gpus: { bdf: string; numaNode?: number; name?: string }[]): VgpudPlugin & { service: () => FakeVgpuService } {
  let svc: FakeVgpuService | undefined;
  return {
    manifest: { name: 'fake-service', version: '1.0.0', provides: ['vgpu-service'], requires: ['events'] },
    module: new ContainerModule(({ bind }) => {
      bind(TOKENS.VgpuManager).toDynamicValue((ctx) => (svc ??= new FakeVgpuService(ctx.get<EventBus>(TOKENS.EventBus), gpus))).inSingletonScope();
    }),
    service: () => {
      if (svc === undefined) throw new Error('the fake service is made when the container first asks for it');
      return svc;
    },
  };
}
