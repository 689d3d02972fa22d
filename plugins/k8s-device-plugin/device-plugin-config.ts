/**
 * `plugins.k8s.devicePlugin`: the kubelet device plugin's settings. They sit in the 'k8s' section next to the node
 * agent's (the operator configures "vgpud on Kubernetes" in one place); this plugin validates only its own key.
 */
import { z } from 'zod';

const ms = z.number().int().positive();

export const devicePluginConfigSchema = z.strictObject({
  /** false: advertise nothing (on a real host KubeVirt's own PCI device plugin can advertise the VFs instead). */
  enabled: z.boolean().default(true),
  /** Where the kubelet listens (kubelet.sock) and plugins put their sockets (k8s.io/kubelet deviceplugin/v1beta1 DevicePluginPath). */
  devicePluginDir: z.string().min(1).default('/var/lib/kubelet/device-plugins'),
  /** Resource domain: "nvidia.com" gives nvidia.com/NVIDIA_RTX6000-Ada-24Q. */
  resourcePrefix: z.string().regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/, 'expected a lower-case DNS name like "nvidia.com"')
    .max(200).default('nvidia.com'),
  /** Socket files are "<socketPrefix>-<resource name part>.sock" inside devicePluginDir. */
  socketPrefix: z.string().regex(/^[A-Za-z0-9][-A-Za-z0-9_.]*$/, 'expected a file-name prefix (letters, digits, "-", "_", ".")').max(64).default('vgpud'),
  /** GetPreferredAllocation: put a multi-vGPU request on the fewest GPUs (pack) or on as many as possible (spread). */
  allocationPolicy: z.enum(['pack', 'spread']).default('pack'),
  /** Registration retries: first delay, doubling up to maxMs, while the kubelet refuses or cannot be reached. */
  registerBackoff: z.strictObject({ initialMs: ms.default(1000), maxMs: ms.default(30_000) }).prefault({}),
  /** Deadline of one Register call to the kubelet. */
  registerTimeoutMs: ms.default(10_000),
  /** Largest gRPC message the plugin accepts from the kubelet (a request for 256 vGPUs is about 8 KiB). */
  maxMessageBytes: z.number().int().min(4096).max(16 << 20).default(256 << 10),
}).prefault({});

export type DevicePluginConfig = z.output<typeof devicePluginConfigSchema>;

/** Device-plugin API v1beta1 constants (k8s.io/kubelet pkg/apis/deviceplugin/v1beta1/constants.go). */
export const DP_API = {
  version: 'v1beta1',
  kubeletSocket: 'kubelet.sock',
  healthy: 'Healthy',
  unhealthy: 'Unhealthy',
} as const;
