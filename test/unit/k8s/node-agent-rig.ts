/**
 * The node agent ('k8s' plugin) on a FakeVgpuService, talking to an API-server stand-in over HTTP through the real
 * @kubernetes/client-node (a kubeconfig pointing at the stand-in), optionally with a PodResources stand-in.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import type { EventBus } from '../../../core/contracts/events.js';
import { TOKENS } from '../../../core/tokens.js';
import { createK8sPlugin } from '../../../plugins/k8s/k8s-plugin.js';
import { ApiServerStandIn } from '../../helpers/k8s/api-server-stand-in.js';
import { fakeServicePlugin } from '../../helpers/k8s/fake-service-plugin.js';
import type { FakeVgpuService } from '../../helpers/k8s/fake-vgpu-service.js';
import { PodResourcesStandIn } from '../../helpers/k8s/pod-resources-stand-in.js';
import { createTestContainer, type TestContainer } from '../../helpers/test-container.js';

export const NODE = 'gpu-node-1';
export const GPU_A = '0000:41:00.0';
export const GPU_B = '0000:61:00.0';

export const LAYOUTS = `version: v1
vgpu-configs:
  default:
    - devices: all
      vgpu-devices: {RTX6000-Ada-24Q: 1}
  all-8q:
    - devices: all
      vgpu-devices: {RTX6000-Ada-8Q: 2}
  two-24q:
    - devices: all
      vgpu-devices: {RTX6000-Ada-24Q: 2}
`;

export interface AgentRig {
  tc: TestContainer;
  svc: FakeVgpuService;
  bus: EventBus;
  api: ApiServerStandIn;
  podres: PodResourcesStandIn | undefined;
  plugin: ReturnType<typeof createK8sPlugin>;
  dir: string;
  layoutFile: string;
}

export async function agentRig(t: TestContext, o: {
  labels?: Record<string, string>; k8s?: Record<string, unknown>; podResources?: boolean; layouts?: string;
  before?: (svc: FakeVgpuService) => Promise<void>;
} = {}): Promise<AgentRig> {
  const dir = mkdtempSync(join(tmpdir(), 'vgpud-agent-'));
  const layoutFile = join(dir, 'layouts', 'layouts.yaml');
  const { mkdirSync } = await import('node:fs');
  mkdirSync(join(dir, 'layouts'));
  writeFileSync(layoutFile, o.layouts ?? LAYOUTS);
  const api = new ApiServerStandIn(NODE, o.labels);
  await api.start();
  const podres = o.podResources ? new PodResourcesStandIn(join(dir, 'pod-resources.sock')) : undefined;
  await podres?.start();
  const plugin = createK8sPlugin();
  const tc = await createTestContainer({
    plugins: [fakeServicePlugin([{ bdf: GPU_A }, { bdf: GPU_B }]), plugin],
    config: {
      plugins: {
        k8s: {
          nodeName: NODE, kubeconfig: api.kubeconfig(dir), layoutFile, apiBackoff: { initialMs: 5, maxMs: 40 },
          nfd: { featureFile: join(dir, 'features.d', 'vgpud') },
          podResources: { enabled: podres !== undefined, socket: join(dir, 'pod-resources.sock') },
          ...o.k8s,
        },
      },
    },
    start: false,
  });
  const svc = tc.container.get<FakeVgpuService>(TOKENS.VgpuManager);
  await o.before?.(svc);
  await tc.host.start();
  t.after(async () => {
    await tc.stop();
    await api.stop();
    await podres?.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  return { tc, svc, bus: tc.container.get<EventBus>(TOKENS.EventBus), api, podres, plugin, dir, layoutFile };
}

/** The state label's history once it ends in `last`. */
export async function stateEndsIn(r: AgentRig, last: string, count?: number): Promise<string[]> {
  const h = (): string[] => r.api.history.get('nvidia.com/vgpu.config.state') ?? [];
  await r.api.until(() => h().at(-1) === last && (count === undefined || h().length >= count));
  await r.plugin.handle.idle();
  return h();
}

export const typesOn = (svc: FakeVgpuService, gpu: string): string[] => svc.list({ gpu }).map((v) => v.typeName.replace('NVIDIA RTX6000-Ada-', '')).sort();
