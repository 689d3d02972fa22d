/**
 * The physical GPUs this daemon has opened, by BDF. The probe adds a GPU once it is ready; plugins that serve a GPU
 * (logging drains its firmware logs, scrub and migration reach its memory) look it up here instead of reaching
 * into the plugin that probed it.
 */
import { injectable } from 'inversify';
import { ErrorCode, VgpuError } from './contracts/exceptions.js';
import type { PhysicalGpu } from './contracts/hal.js';

export interface GpuRegistry {
  add(gpu: PhysicalGpu): void;
  remove(bdf: string): void;
  /** Throws VGPU_ENOENT naming the known GPUs. */
  get(bdf: string): PhysicalGpu;
  find(bdf: string): PhysicalGpu | undefined;
  list(): PhysicalGpu[];
}

@injectable()
export class GpuRegistryImpl implements GpuRegistry {
  private readonly gpus = new Map<string, PhysicalGpu>();

  add(gpu: PhysicalGpu): void {
    this.gpus.set(gpu.bdf.toLowerCase(), gpu);
  }

  remove(bdf: string): void {
    this.gpus.delete(bdf.toLowerCase());
  }

  find(bdf: string): PhysicalGpu | undefined {
    return this.gpus.get(bdf.toLowerCase());
  }

  get(bdf: string): PhysicalGpu {
    const gpu = this.find(bdf);
    if (gpu === undefined) {
      const known = [...this.gpus.keys()];
      throw new VgpuError(ErrorCode.NotFound, `no GPU ${bdf}`, {
        hint: known.length > 0 ? `known GPUs: ${known.join(', ')}` : 'no GPU has been probed yet',
        details: { bdf },
      });
    }
    return gpu;
  }

  list(): PhysicalGpu[] {
    return [...this.gpus.values()];
  }
}
