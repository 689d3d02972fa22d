/**
 * Type lookup and display facts for the service: resolve "941", "NVIDIA RTX6000-Ada-24Q", "RTX6000-Ada-24Q" or
 * "24Q" to an installed type, and read heads, max resolution and the profile size from the uploaded GSP records
 * (NVA081_CTRL_VGPU_INFO; the kernel's type record does not carry them).
 */
import { resolveType as resolveTypeSpec } from '../../core/manager/resolve-type.js';
import type { PgpuManager } from '../../core/manager/pgpu-manager.js';
import type { VgpuTypeRecord } from '../../core/metadata/metadata-file.js';
import { decodeAddVgpuTypeParams, nominalProfileBytes } from '../../core/metadata/vgpu-info-record.js';

/** Resolve a type the operator named (core/manager/resolve-type.ts), among the installed type records. */
export function resolveType(types: readonly VgpuTypeRecord[], spec: number | string, gpu: string): VgpuTypeRecord {
  return resolveTypeSpec(types, spec, gpu);
}

export interface TypeDisplay {
  heads: number;
  maxResolution: string;
  /** NVA081_CTRL_VGPU_INFO.profileSize. */
  profileBytes: bigint;
}

/**
 * The profile size of a type: the GSP record's profileSize when the metadata carries readable records, else the
 * nominal size of the name (N GiB for -N<series>), else the guest FB itself (a name that does not say).
 */
export function profileBytesOf(type: VgpuTypeRecord, display: ReadonlyMap<number, TypeDisplay>): bigint {
  return display.get(type.id)?.profileBytes ?? nominalProfileBytes(type.name) ?? type.fbLength;
}

/** Heads and resolution per type id, from the manager's metadata blob; empty when the payload is not ours. */
export function typeDisplay(mgr: PgpuManager): Map<number, TypeDisplay> {
  const out = new Map<number, TypeDisplay>();
  const blob = [...mgr.metadata.blobs].reverse().find((b) => b.deviceId === mgr.gpu.config.pci.deviceId);
  if (blob === undefined) return out;
  try {
    for (const i of decodeAddVgpuTypeParams(blob.rmctrlPayload).infos) {
      out.set(i.id, { heads: i.numHeads, maxResolution: `${i.maxResolutionX}x${i.maxResolutionY}`, profileBytes: i.profileSize });
    }
  } catch {
    // An opaque payload (a real NVIDIA blob, a test's bytes): the facts are simply unknown.
  }
  return out;
}
