/**
 * Names the kubelet, KubeVirt and pods see: the extended resource of a vGPU type, the plugin's socket file, and the
 * environment variables Allocate sets. Facts and sources: docs/reference/kubelet-device-plugin.md.
 */

/**
 * `<prefix>/<type name, runs of white space as "_">`: NVIDIA's KubeVirt device plugin names vGPU resources this way
 * (NVIDIA/kubevirt-gpu-device-plugin pkg/device_plugin/vfio_vgpu.go mergeCreatableVgpuTypes), so
 * "NVIDIA RTX6000-Ada-24Q" is advertised as "nvidia.com/NVIDIA_RTX6000-Ada-24Q" and KubeVirt's
 * `permittedHostDevices` entries written for that plugin keep working.
 */
export function resourceNameFor(prefix: string, typeName: string): string {
  return `${prefix}/${typeName.trim().replace(/\s+/g, '_')}`;
}

/**
 * Whether the kubelet takes `name` as an extended resource: a DNS-subdomain prefix and a name part of at most 63
 * characters, alphanumeric at both ends with `-`, `_`, `.` inside (k8s.io/apimachinery validation
 * IsQualifiedName; the kubelet's Register handler refuses anything else). Returns the problem, or undefined.
 */
export function resourceNameProblem(name: string): string | undefined {
  const slash = name.indexOf('/');
  if (slash <= 0 || slash !== name.lastIndexOf('/')) return 'expected <domain>/<name> with one "/"';
  const prefix = name.slice(0, slash);
  const part = name.slice(slash + 1);
  if (prefix.length > 253 || !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/.test(prefix)) {
    return `the prefix "${prefix}" is not a lower-case DNS subdomain`;
  }
  if (part.length === 0 || part.length > 63) return `the name part "${part}" must be 1 to 63 characters`;
  if (!/^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/.test(part)) {
    return `the name part "${part}" may hold only letters, digits, "-", "_" and ".", and must start and end alphanumeric`;
  }
  // Native resources live under kubernetes.io; "requests." is how quotas spell extended resources
  // (k8s.io/kubernetes pkg/apis/core/helper IsExtendedResourceName).
  if (prefix === 'kubernetes.io' || prefix.endsWith('.kubernetes.io') || name.startsWith('requests.')) {
    return `the prefix "${prefix}" is reserved by Kubernetes`;
  }
  return undefined;
}

/** The socket file (inside the device-plugin directory) that serves `resource`. */
export function socketFileFor(socketPrefix: string, resource: string): string {
  return `${socketPrefix}-${resource.slice(resource.indexOf('/') + 1)}.sock`;
}

/**
 * Environment variable names for `resource` with `prefix` (e.g. "PCI_RESOURCE"). The first is the one KubeVirt's
 * virt-launcher reads: upper case, "/" and "." as "_" and nothing else changed (kubevirt pkg/util
 * ResourceNameToEnvVar, read by pkg/virt-launcher/virtwrap/device/hostdevice AddressPool), so a "-" of the type
 * name stays. Such a name is a valid container env name but not a POSIX shell identifier; the second, with "-"
 * as "_" too, is set as well so a shell script in the pod can read it. Both when they differ, else one.
 */
export function envNamesFor(prefix: string, resource: string): string[] {
  const kubevirt = `${prefix}_${resource.toUpperCase().replace(/[/.]/g, '_')}`;
  const shell = kubevirt.replace(/-/g, '_');
  return shell === kubevirt ? [kubevirt] : [kubevirt, shell];
}
