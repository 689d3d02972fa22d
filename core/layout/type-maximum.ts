/**
 * The most vGPUs of a type one GPU can hold in the mode its policy puts it in: NVIDIA's equal-size maximum
 * (`maxInstances`) under the homogeneous policy, its mixed-size maximum (`maxInstancesMixed`) under the
 * heterogeneous one (docs/reference/vgpu-types.md). Layouts and create requests check a count against it before
 * anything is made, so the refusal names the mode's limit instead of failing part-way through.
 */
import type { TypePolicy, VgpuTypeInfo } from '../contracts/vgpu-service.js';

export interface TypeMaximum {
  readonly max: number;
  readonly mode: 'equal-size' | 'mixed-size';
  /** Words for a message: "the type's max instances" or "the type's mixed-size maximum; equal-size mode allows N". */
  readonly why: string;
}

/** Undefined when the backend does not publish the limit (sysfs: the kernel refuses past it with ENOSPC). */
export function typeMaximum(t: Pick<VgpuTypeInfo, 'maxInstances' | 'maxInstancesMixed'>, policy: TypePolicy | undefined): TypeMaximum | undefined {
  if (policy === 'heterogeneous' && t.maxInstancesMixed !== undefined) {
    const equal = t.maxInstances !== undefined && t.maxInstances > t.maxInstancesMixed ? `; equal-size mode allows ${t.maxInstances}` : '';
    return { max: t.maxInstancesMixed, mode: 'mixed-size', why: `the type's maximum in mixed-size (heterogeneous) mode${equal}` };
  }
  return t.maxInstances === undefined ? undefined : { max: t.maxInstances, mode: 'equal-size', why: 'the type\'s max instances' };
}
