/**
 * VgpuBackend contract: one implementation of VgpuService that owns some of the host's GPUs. The router
 * (core/router/vgpu-router.ts) collects every backend bound to TOKENS.VgpuBackend, decides which one manages each
 * GPU (config `gpus[].backend`, else the one that found it) and presents them all as the one VgpuService bound to
 * TOKENS.VgpuManager, so layouts, the journal of requests, the API, metrics and the node agent never know which
 * backend a GPU has.
 *
 * Two backends exist: 'manager' (the lifecycle plugin: vgpud drives the GPU through a HAL, as the upstream RFC's
 * vGPU manager does) and 'linux-sysfs' (NVIDIA's kernel driver drives the GPU; vgpud writes the per-VF type ABI).
 */
import type { VgpuService } from './vgpu-service.js';

export interface VgpuBackend extends VgpuService {
  /** Stable backend name, as config `gpus[].backend` names it. */
  readonly backend: string;
  /** The GPUs (PF BDFs, lower case) this backend found and can manage; cheap (no device access). */
  bdfs(): string[];
  /**
   * Whether vGPU `id` is this backend's: one it lists, one whose log it keeps after destroy, or one it reports as
   * changed behind its back (which `get` no longer shows but `destroy` and `logs` still answer for).
   */
  hasVgpu(id: string): boolean;
}
