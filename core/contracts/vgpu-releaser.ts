/**
 * VgpuReleaser contract: whoever hands vGPUs to VMMs (the vfio-user face) releases one before a FORCED destroy
 * tears it down: it signals the VMM that the host wants the device back, disconnects it and resolves once it is gone.
 * Bound to TOKENS.VgpuReleaser by that face; the lifecycle calls it when it destroys an in-use vGPU with `force`
 * (upstream SIGTERMs the VMM and waits unbounded, docs/reference/core-driver-interface.md; here the wait is for the
 * disconnect only).
 */
export interface VgpuReleaser {
  release(vgpuId: string, reason: string): Promise<void>;
}
