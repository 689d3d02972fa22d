/**
 * Payloads of the two boot RPCs the Ada core driver queues before GSP-RM reports GSP_INIT_DONE — asynchronous RPCs
 * GSP-RM never answers (docs/reference/gsp-queues.md) — and the RM status codes the simulated firmware uses.
 *
 * GSP_SET_SYSTEM_INFO (72): the real GspSystemInfo is a ~1 KiB struct of which vGPU needs only the GSP_VF_INFO part
 * (totalVFs, firstVFOffset, first VF BAR addresses, 64-bit BAR flags — docs/reference/core-driver-interface.md). We
 * send a reduced struct with those fields plus the PF's identity; it is the simulator's layout, not NVIDIA's (a known
 * gap: the real struct is `GspSystemInfo` of open-gpu-kernel-modules `gsp_static_config.h`, excerpted in nouveau's
 * `rm/r570/nvrm/gsp.h`).
 *
 * SET_REGISTRY (73): the real payload is a packed string table; ours is {count u32, entries[count] of
 * {key char[64], value u32}}. The one key that matters for vGPU is RMSetSriovMode=1 (nova-core's vGPU boot series;
 * RFC v1 patch 06): without it the simulated GSP-RM refuses to bootload vGPU plugin tasks, as the real one would not
 * enable SR-IOV.
 *
 * Both sides (ada-hal and sim/ada-firmware) import this file, so they cannot drift apart.
 */
import { StructLayout, cString, toCString } from '../../core/firmware-abi/struct-layout.js';
import { ErrorCode, VgpuError } from '../../core/contracts/exceptions.js';

export interface GspSystemInfo {
  gpuPhysAddr: bigint;
  gpuPhysFbAddr: bigint;
  gpuPhysInstAddr: bigint;
  /** domain << 16 | bus << 8 | devfn. */
  nvDomainBusDeviceFunc: bigint;
  pciConfigMirrorBase: bigint;
  pciConfigMirrorSize: bigint;
  pciDeviceId: number;
  pciSubDeviceId: number;
  pciRevisionId: number;
  totalVFs: number;
  firstVFOffset: number;
  firstVfBar0Address: bigint;
  firstVfBar1Address: bigint;
  firstVfBar2Address: bigint;
  b64bitBar0: boolean;
  b64bitBar1: boolean;
  b64bitBar2: boolean;
}

export const GSP_SYSTEM_INFO = new StructLayout<GspSystemInfo>('SimGspSystemInfo', [
  { name: 'gpuPhysAddr', type: 'u64' },
  { name: 'gpuPhysFbAddr', type: 'u64' },
  { name: 'gpuPhysInstAddr', type: 'u64' },
  { name: 'nvDomainBusDeviceFunc', type: 'u64' },
  { name: 'pciConfigMirrorBase', type: 'u64' },
  { name: 'pciConfigMirrorSize', type: 'u64' },
  { name: 'pciDeviceId', type: 'u32' },
  { name: 'pciSubDeviceId', type: 'u32' },
  { name: 'pciRevisionId', type: 'u32' },
  { name: 'totalVFs', type: 'u32' },
  { name: 'firstVFOffset', type: 'u32' },
  { name: 'firstVfBar0Address', type: 'u64' },
  { name: 'firstVfBar1Address', type: 'u64' },
  { name: 'firstVfBar2Address', type: 'u64' },
  { name: 'b64bitBar0', type: 'bool' },
  { name: 'b64bitBar1', type: 'bool' },
  { name: 'b64bitBar2', type: 'bool' },
]);

export const REGISTRY_KEY_BYTES = 64;
const REGISTRY_ENTRY_BYTES = REGISTRY_KEY_BYTES + 4;
/** Registry key that turns on SR-IOV (vGPU) mode in GSP-RM. */
export const REG_SRIOV_MODE = 'RMSetSriovMode';

export function encodeRegistry(entries: Readonly<Record<string, number>>): Uint8Array {
  const keys = Object.keys(entries);
  const out = new Uint8Array(4 + keys.length * REGISTRY_ENTRY_BYTES);
  const v = new DataView(out.buffer);
  v.setUint32(0, keys.length, true);
  keys.forEach((k, i) => {
    const at = 4 + i * REGISTRY_ENTRY_BYTES;
    out.set(toCString(k, REGISTRY_KEY_BYTES, 'registry key'), at);
    v.setUint32(at + REGISTRY_KEY_BYTES, (entries[k] ?? 0) >>> 0, true);
  });
  return out;
}

export function decodeRegistry(bytes: Uint8Array): Map<string, number> {
  if (bytes.byteLength < 4) throw badRegistry(`${bytes.byteLength} bytes`);
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = v.getUint32(0, true);
  if (bytes.byteLength < 4 + n * REGISTRY_ENTRY_BYTES) throw badRegistry(`${n} entries in ${bytes.byteLength} bytes`);
  const out = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const at = 4 + i * REGISTRY_ENTRY_BYTES;
    out.set(cString(bytes.subarray(at, at + REGISTRY_KEY_BYTES)), v.getUint32(at + REGISTRY_KEY_BYTES, true));
  }
  return out;
}

function badRegistry(what: string): VgpuError {
  return new VgpuError(ErrorCode.InvalidArgument, `registry payload is truncated (${what})`, {
    hint: 'encode it with encodeRegistry()',
  });
}

/** NV_STATUS values: firmware ABI shared with the core (core/firmware-abi/nv-status.ts). */
export { NvStatus } from '../../core/firmware-abi/nv-status.js';
