/**
 * Guest-FB size of a vGPU of a given type (docs/reference/create-order.md C3) and its footprint in VMMU segments.
 *
 * ECC off: the type's fb_length. ECC on: ECC check bits eat part of the FB, so the upstream driver shrinks each
 * slice: ALIGN_DOWN(min(fb_length, ALIGN(total_fb, seg) / max_instance − fb_reservation − gsp_heap_size), seg),
 * and a type without ecc_supported cannot be created at all (ENODEV).
 */
import type { VgpuTypeRecord } from '../metadata/metadata-file.js';
import { VfAbiError } from './vf-abi-error.js';

export interface FbSizeContext {
  eccEnabled: boolean;
  /** Total FB of the GPU (core op 16). */
  totalFb: bigint;
  /** VMMU segment size: the guest-FB allocation granule. */
  segmentSize: bigint;
}

const alignUp = (n: bigint, a: bigint): bigint => ((n + a - 1n) / a) * a;
const alignDown = (n: bigint, a: bigint): bigint => (n / a) * a;

/** True when a vGPU of this type can exist at all under this ECC setting. */
export function typeUsable(type: VgpuTypeRecord, ctx: FbSizeContext): boolean {
  return !ctx.eccEnabled || type.eccSupported;
}

export function guestFbBytes(type: VgpuTypeRecord, ctx: FbSizeContext): bigint {
  if (!ctx.eccEnabled) return type.fbLength;
  if (!type.eccSupported) {
    throw new VfAbiError('ENODEV', `vGPU type ${type.id} (${type.name}) does not support ECC, and ECC is enabled on this GPU`, {
      hint: 'pick a type with ECC support, or disable ECC on the GPU',
      details: { typeId: type.id },
    });
  }
  const perInstance = alignUp(ctx.totalFb, ctx.segmentSize) / BigInt(type.maxInstance) - type.fbReservation - type.gspHeapSize;
  const size = alignDown(perInstance < type.fbLength ? perInstance : type.fbLength, ctx.segmentSize);
  if (size <= 0n) {
    throw new VfAbiError('ENODEV', `vGPU type ${type.id} (${type.name}) leaves no guest FB with ECC enabled`, {
      hint: 'the metadata file does not fit this GPU; use the file built for it',
      details: { typeId: type.id },
    });
  }
  return size;
}

/** Whole VMMU segments a guest FB of `bytes` occupies (the allocator hands out whole segments). */
export function segmentsFor(bytes: bigint, segmentSize: bigint): number {
  return Number((bytes + segmentSize - 1n) / segmentSize);
}
