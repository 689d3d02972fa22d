/**
 * VgpuHolders contract: who holds each vGPU outside the daemon — on a Kubernetes node, the pod (and namespace,
 * container) the kubelet allocated it to. Bound to TOKENS.VgpuHolders by the 'k8s' plugin, which asks the kubelet's
 * PodResources API; may be unbound (no holders are then shown).
 *
 * The faces read it: `vgpuctl list/show` (the control API adds `holder` to each vGPU) and the per-vGPU metrics
 * (`pod`/`namespace` labels). The node agent reads it too, so a layout never destroys a vGPU a pod holds.
 */
export interface VgpuHolder {
  namespace: string;
  pod: string;
  container?: string;
  /** The extended resource it was allocated as, e.g. "nvidia.com/NVIDIA_RTX6000-Ada-24Q". */
  resource?: string;
}

export interface VgpuHolders {
  /**
   * Holders by vGPU id, asking the source again when what is known may be stale (the provider decides; it asks
   * nothing while nobody reads). Never rejects: when the source cannot be reached it answers what it last knew.
   */
  current(): Promise<ReadonlyMap<string, VgpuHolder>>;
  /** What is known now, without asking the source (for readers that cannot wait). */
  cached(): ReadonlyMap<string, VgpuHolder>;
}

/** "namespace/pod" (the form kubectl prints), or "" when nobody holds it. */
export function holderText(h: VgpuHolder | undefined): string {
  return h === undefined ? '' : `${h.namespace}/${h.pod}`;
}
