/** A started container with a FakeVgpuService and the device plugin, and a kubelet stand-in in a temp directory. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { TOKENS } from '../../../core/tokens.js';
import type { EventBus } from '../../../core/contracts/events.js';
import { createDevicePluginPlugin } from '../../../plugins/k8s-device-plugin/device-plugin-plugin.js';
import { createTestContainer, type TestContainer } from '../../helpers/test-container.js';
import { fakeServicePlugin } from '../../helpers/k8s/fake-service-plugin.js';
import type { FakeVgpuService } from '../../helpers/k8s/fake-vgpu-service.js';
import { KubeletStandIn } from '../../helpers/k8s/kubelet-stand-in.js';

export const GPU_A = '0000:41:00.0';
export const GPU_B = '0000:61:00.0';
export const R24 = 'nvidia.com/NVIDIA_RTX6000-Ada-24Q';
export const R8 = 'nvidia.com/NVIDIA_RTX6000-Ada-8Q';

export interface DpRig {
  tc: TestContainer;
  svc: FakeVgpuService;
  bus: EventBus;
  kubelet: KubeletStandIn;
  dir: string;
  plugin: ReturnType<typeof createDevicePluginPlugin>;
}

export async function dpRig(t: TestContext, o: {
  devicePlugin?: Record<string, unknown>; startKubelet?: boolean; dir?: (root: string) => string; before?: (svc: FakeVgpuService) => Promise<void>;
  gpus?: { bdf: string; numaNode?: number }[];
} = {}): Promise<DpRig> {
  const root = mkdtempSync(join(tmpdir(), 'vgpud-dp-'));
  const dir = o.dir ? o.dir(root) : join(root, 'device-plugins');
  const kubelet = new KubeletStandIn(dir);
  if (o.startKubelet !== false) await kubelet.start();
  const plugin = createDevicePluginPlugin();
  const tc = await createTestContainer({
    plugins: [fakeServicePlugin(o.gpus ?? [{ bdf: GPU_A, numaNode: 1 }, { bdf: GPU_B }]), plugin],
    config: { plugins: { k8s: { devicePlugin: { devicePluginDir: dir, registerBackoff: { initialMs: 5, maxMs: 20 }, ...o.devicePlugin } } } },
    start: false,
  });
  const svc = tc.container.get<FakeVgpuService>(TOKENS.VgpuManager);
  await o.before?.(svc);
  await tc.host.start();
  t.after(async () => {
    await tc.stop();
    await kubelet.stop();
    rmSync(root, { recursive: true, force: true });
  });
  return { tc, svc, bus: tc.container.get<EventBus>(TOKENS.EventBus), kubelet, dir, plugin };
}
