/**
 * Plugin 'k8s': vgpud as the Kubernetes node agent (docs/kubernetes.md). Inert unless the config has a
 * `plugins.k8s` section. With one:
 *  - layouts chosen by the Node's `nvidia.com/vgpu.config` label, state in `nvidia.com/vgpu.config.state`, reasons
 *    in Node Events (node-label-agent.ts) — when a node name is set (`nodeName` or $NODE_NAME);
 *  - who holds what: TOKENS.VgpuHolders from the kubelet's PodResources API (holder-cache.ts), shown by
 *    `vgpuctl list/show` and as `pod`/`namespace` labels of the per-vGPU metrics;
 *  - the NFD local feature file (nfd-feature-file.ts);
 *  - GET /healthz on a TCP port for a liveness probe (health-server.ts), when enabled.
 * The kubelet device plugin is its own plugin ('k8s-device-plugin'); the two meet only on the bus.
 */
import { ContainerModule } from 'inversify';
import type { EventBus } from '../../core/contracts/events.js';
import type { PluginContext, VgpudPlugin } from '../../core/contracts/plugin.js';
import type { RequestService } from '../../core/contracts/requests.js';
import type { VgpuService } from '../../core/contracts/vgpu-service.js';
import { TOKENS } from '../../core/tokens.js';
import { parseConfigSection } from '../../core/validation/parse-section.js';
import { createClientNodeApi } from './client-node-api.js';
import { HealthServer } from './health-server.js';
import { HolderCache } from './holder-cache.js';
import { k8sConfigSchema } from './k8s-config.js';
import { NfdFeatureFile } from './nfd-feature-file.js';
import type { NodeApi } from './node-api.js';
import { NodeLabelAgent, type LabelAgentStatus } from './node-label-agent.js';

export interface K8sPluginOptions {
  /** Tests: the NodeApi to use instead of @kubernetes/client-node. */
  nodeApi?: (o: { nodeName: string; kubeconfig: string; eventNamespace: string }) => Promise<NodeApi>;
}

export interface K8sHandle {
  labels(): LabelAgentStatus | undefined;
  /** Resolves when no layout apply is running or queued. */
  idle(): Promise<void>;
  healthPort(): number | undefined;
  nfd(): NfdFeatureFile | undefined;
  holders: HolderCache;
}

export function createK8sPlugin(opts: K8sPluginOptions = {}): VgpudPlugin & { handle: K8sHandle } {
  const holders = new HolderCache();
  let agent: NodeLabelAgent | undefined;
  let nfd: NfdFeatureFile | undefined;
  let health: HealthServer | undefined;
  let healthPort: number | undefined;
  return {
    manifest: {
      name: 'k8s', version: '0.1.0', description: 'Kubernetes node agent: layouts by Node label, pod holders, NFD features, /healthz',
      provides: ['k8s', 'vgpu-holders'], requires: ['vgpu-service', 'events', 'config'],
    },
    module: new ContainerModule(({ bind }) => {
      bind(TOKENS.VgpuHolders).toConstantValue(holders);
    }),
    handle: {
      labels: () => agent?.status(),
      idle: async () => { await agent?.idle(); },
      healthPort: () => healthPort,
      nfd: () => nfd,
      holders,
    },
    async start(ctx: PluginContext) {
      if (ctx.config === undefined) {
        ctx.logger.debug('no plugins.k8s section: the Kubernetes node agent is off');
        return;
      }
      const cfg = parseConfigSection(k8sConfigSchema, ctx.config, 'plugins.k8s');
      const c = ctx.container;
      const service = c.get<VgpuService>(TOKENS.VgpuManager);
      const bus = c.get<EventBus>(TOKENS.EventBus);
      if (cfg.podResources.enabled) {
        holders.configure({ socket: cfg.podResources.socket, maxAgeMs: cfg.podResources.maxAgeMs, timeoutMs: cfg.podResources.timeoutMs },
          service, bus, ctx.logger.child({ part: 'pod-resources' }));
      }
      if (cfg.nfd.enabled) {
        nfd = new NfdFeatureFile(cfg.nfd.featureFile, service, ctx.logger);
        await nfd.start(bus);
      }
      const nodeName = cfg.nodeName !== '' ? cfg.nodeName : (process.env['NODE_NAME'] ?? '');
      if (nodeName !== '') {
        const make = opts.nodeApi ?? createClientNodeApi;
        agent = new NodeLabelAgent({
          api: () => make({ nodeName, kubeconfig: cfg.kubeconfig, eventNamespace: cfg.eventNamespace }), nodeName, layoutFile: cfg.layoutFile, defaultConfig: cfg.defaultConfig, force: cfg.force, service,
          requests: c.get<RequestService>(TOKENS.Requests), holders: cfg.podResources.enabled ? holders : undefined, bus,
          log: ctx.logger.child({ part: 'node-labels' }), backoff: cfg.apiBackoff,
        });
        agent.start();
      } else {
        ctx.logger.info('no node name (plugins.k8s.nodeName or $NODE_NAME): layouts by Node label are off');
      }
      if (cfg.health.enabled) {
        health = new HealthServer(service, () => (agent !== undefined ? { node: agent.status() } : {}), ctx.logger);
        healthPort = await health.start(cfg.health.host, cfg.health.port);
      }
    },
    async stop() {
      await agent?.stop();
      agent = undefined;
      await nfd?.stop();
      nfd = undefined;
      await health?.stop();
      health = undefined;
      healthPort = undefined;
      holders.stop();
    },
  };
}
