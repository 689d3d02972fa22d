/**
 * `plugins.k8s`: vgpud as the Kubernetes node agent. Nothing Kubernetes-related runs unless this section exists
 * (a daemon on a plain host, a test, `npm start` never touch the kubelet's or NFD's directories); with it, every key
 * below has a default. `devicePlugin` belongs to the 'k8s-device-plugin' plugin, which validates it.
 */
import { z } from 'zod';

const ms = z.number().int().positive();

export const k8sConfigSchema = z.strictObject({
  /** The Node whose `nvidia.com/vgpu.config` label chooses the layout; empty: $NODE_NAME; neither: label-driven layouts off. */
  nodeName: z.string().default(''),
  /** A kubeconfig file; empty: the in-cluster service account when running in a pod, else $KUBECONFIG or ~/.kube/config. */
  kubeconfig: z.string().default(''),
  /** Layout file in NVIDIA vgpu-device-manager's format (a ConfigMap mounted there); read again at every apply. */
  layoutFile: z.string().min(1).default('/etc/vgpud/layouts.yaml'),
  /** The config applied while the Node has no `nvidia.com/vgpu.config` label; empty: leave the vGPUs as they are. */
  defaultConfig: z.string().default('default'),
  /** Destroy vGPUs a VM or pod holds when a layout needs their room (never, by default: the layout then fails). */
  force: z.boolean().default(false),
  /** Namespace of the Events posted about the Node (the kubelet posts Node events in "default"). */
  eventNamespace: z.string().min(1).default('default'),
  /** Retry of a failed API-server call (state label, event, watch): first delay, doubling up to maxMs. */
  apiBackoff: z.strictObject({ initialMs: ms.default(1000), maxMs: ms.default(30_000) }).prefault({}),
  /** Who holds what: the kubelet's PodResources API, asked when a reader needs fresher data than maxAgeMs. */
  podResources: z.strictObject({
    enabled: z.boolean().default(true),
    socket: z.string().min(1).default('/var/lib/kubelet/pod-resources/kubelet.sock'),
    maxAgeMs: z.number().int().min(0).default(2000),
    timeoutMs: ms.default(2000),
  }).prefault({}),
  /** Node Feature Discovery local feature file, rewritten (atomically) when its content changes. */
  nfd: z.strictObject({
    enabled: z.boolean().default(true),
    featureFile: z.string().min(1).default('/etc/kubernetes/node-feature-discovery/features.d/vgpud'),
  }).prefault({}),
  /** GET /healthz over TCP for a liveness probe (the control API is a Unix socket only). */
  health: z.strictObject({
    enabled: z.boolean().default(false),
    host: z.string().min(1).default('0.0.0.0'),
    /** 0: any free port (tests). */
    port: z.number().int().min(0).max(65535).default(9402),
  }).prefault({}),
  /** Validated by the 'k8s-device-plugin' plugin. */
  devicePlugin: z.unknown().optional(),
});

export type K8sConfig = z.output<typeof k8sConfigSchema>;

/** Node labels of NVIDIA's vGPU device manager (NVIDIA/vgpu-device-manager cmd/nvidia-k8s-vgpu-dm/main.go). */
export const LABELS = {
  config: 'nvidia.com/vgpu.config',
  state: 'nvidia.com/vgpu.config.state',
} as const;

export type ConfigState = 'pending' | 'success' | 'failed';
