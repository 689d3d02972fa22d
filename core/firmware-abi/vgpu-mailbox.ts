/**
 * The per-vGPU host RPC mailbox (docs/reference/host-rpc-mailbox.md): a shared-memory channel between the host-side
 * "CPU plugin" and the GSP plugin task that BOOTLOAD starts for one GFID. It lives at the start of the vGPU's
 * management heap in FB; the host reaches it through a BAR1 mapping of the first `COMM_BUFF_SIZE` bytes, and rings a
 * doorbell in PF BAR0. Separate from the GSP command/message queues that carry RM controls.
 *
 * Everything here is data and codecs; the host side (core) and the GSP side (simulator) both use it.
 */
import { ErrorCode, VgpuError } from '../contracts/exceptions.js';
import { StructLayout } from './struct-layout.js';

const KiB = 1024;
const MiB = 1024 * 1024;

/** Mgmt-heap regions, offsets from the heap start (docs/reference/host-rpc-mailbox.md). Sizes in bytes. */
export const MgmtHeap = {
  CTRL_OFFSET: 0x000000,
  CTRL_SIZE: 4 * KiB,
  RESPONSE_OFFSET: 0x001000,
  RESPONSE_SIZE: 4 * KiB,
  MESSAGE_OFFSET: 0x002000,
  MESSAGE_SIZE: 4 * KiB,
  MIGRATION_OFFSET: 0x003000,
  MIGRATION_SIZE: 2 * MiB,
  ERROR_OFFSET: 0x203000,
  ERROR_SIZE: 4 * KiB,
  INIT_TASK_LOG_OFFSET: 0x204000,
  INIT_TASK_LOG_SIZE: 128 * KiB,
  VGPU_TASK_LOG_OFFSET: 0x224000,
  VGPU_TASK_LOG_SIZE: 256 * KiB,
  KERNEL_LOG_OFFSET: 0x264000,
  KERNEL_LOG_SIZE: 64 * KiB,
  /** Bytes the host maps (everything above is the GSP plugin's private heap): 3×4K + 2M + 4K + 128K + 256K + 64K. */
  COMM_BUFF_SIZE: 0x274000,
} as const;

/** Log area of a context inside the mgmt heap (the bootload params carry heap address + these offsets). */
export function logArea(context: 'init-task' | 'vgpu-task' | 'kernel'): { offset: number; size: number } {
  switch (context) {
    case 'init-task': return { offset: MgmtHeap.INIT_TASK_LOG_OFFSET, size: MgmtHeap.INIT_TASK_LOG_SIZE };
    case 'vgpu-task': return { offset: MgmtHeap.VGPU_TASK_LOG_OFFSET, size: MgmtHeap.VGPU_TASK_LOG_SIZE };
    case 'kernel': return { offset: MgmtHeap.KERNEL_LOG_OFFSET, size: MgmtHeap.KERNEL_LOG_SIZE };
  }
}

/** Message types `NV_VGPU_CPU_RPC_MSG_*` (docs/reference/host-rpc-mailbox.md). v2 uses 1, 2, 3 and 13. */
export const VgpuRpcMsg = {
  VERSION_NEGOTIATION: 1,
  SETUP_CONFIG_PARAMS_AND_INIT: 2,
  RESET: 3,
  MIGRATION_STOP_WORK: 4,
  MIGRATION_CANCEL_STOP: 5,
  MIGRATION_SAVE_STATE: 6,
  MIGRATION_CANCEL_SAVE: 7,
  MIGRATION_RESTORE_STATE: 8,
  MIGRATION_RESTORE_DEFERRED_STATE: 9,
  MIGRATION_RESUME_WORK: 10,
  CONSOLE_VNC_STATE: 11,
  VF_BAR0_REG_ACCESS: 12,
  UPDATE_BME_STATE: 13,
  GET_GUEST_INFO: 14,
  /** One past the last valid type; a request with type ≥ MAX is refused. */
  MAX: 15,
} as const;
export type VgpuRpcMsg = (typeof VgpuRpcMsg)[keyof typeof VgpuRpcMsg];

export function vgpuRpcMsgName(type: number): string {
  for (const [name, id] of Object.entries(VgpuRpcMsg)) if (id === type && name !== 'MAX') return name;
  return `MSG_${type}`;
}

/** Control-buffer version the host writes. */
export const CTRL_BUFF_VERSION = 1;
/** Largest payload of one call: the message buffer. */
export const MAX_MESSAGE_SIZE = MgmtHeap.MESSAGE_SIZE;
/** Written by the GSP plugin into ctrl.message_seq_num once its task runs ("NeJo"). */
export const GSP_PLUGIN_BOOTLOADED = 0x4e65_4a6f;

/** NV_VIRTUAL_FUNCTION_PRIV_DOORBELL: PF BAR0 0xB80000 + 0x2200. */
export const VF_PRIV_DOORBELL_OFFSET = 0xb8_2200;
/** Value the host writes to ring a vGPU's plugin: gfid*32 + 17. */
export function doorbellValue(gfid: number): number {
  if (!Number.isInteger(gfid) || gfid < 1 || gfid > 0x7ff_ffff) {
    throw new VgpuError(ErrorCode.InvalidArgument, `doorbell for gfid ${gfid}: a vGPU gfid is ≥ 1`, {
      hint: 'gfid = VF index + 1; gfid 0 is the PF and has no plugin',
    });
  }
  return gfid * 32 + 17;
}
/** Inverse of `doorbellValue` for the simulator: the gfid a doorbell write names, or null if not a vGPU doorbell. */
export function gfidFromDoorbell(value: number): number | null {
  if (value < 49 || (value & 31) !== 17) return null;
  return (value - 17) / 32;
}

// ---------------------------------------------------------------------------------------------------------------
// Control buffer (host → GSP), VGPU_CPU_GSP_CTRL_BUFF_REGION version 1 (docs/reference/host-rpc-mailbox.md)

export interface HostInfo {
  vgpu_type_id: number;
  host_gpu_pci_id: number;
  pci_dev_id: number;
  vgpu_uuid: Uint8Array;
}

/** {vgpu_type_id @0, host_gpu_pci_id @4, pci_dev_id @8, vgpu_uuid[16] @12}; 28 bytes. */
export const HOST_INFO = new StructLayout<HostInfo>('VGPU_CPU_GSP_HOST_INFO', [
  { name: 'vgpu_type_id', type: 'u32' },
  { name: 'host_gpu_pci_id', type: 'u32' },
  { name: 'pci_dev_id', type: 'u32' },
  { name: 'vgpu_uuid', type: 'bytes', count: 16 },
]);

export interface CtrlBuffer {
  version: number;
  message_type: number;
  message_seq_num: number;
  response_buff_offset: bigint;
  message_buff_offset: bigint;
  migration_buff_offset: bigint;
  error_buff_offset: bigint;
  migration_buf_cpu_access_offset: number;
  is_migration_in_progress: boolean;
  error_buff_cpu_get_idx: number;
  attached_vgpu_count: number;
  host_info: HostInfo[];
}

/**
 * version 0, message_type 4, message_seq_num 8, response_buff_offset 16, message_buff_offset 24,
 * migration_buff_offset 32, error_buff_offset 40, migration_buf_cpu_access_offset 48, is_migration_in_progress 52,
 * error_buff_cpu_get_idx 56, attached_vgpu_count 60, host_info[16] 64; 512 bytes (inside a 4 KiB region).
 */
export const CTRL_BUFFER = new StructLayout<CtrlBuffer>('VGPU_CPU_GSP_CTRL_BUFF', [
  { name: 'version', type: 'u32' },
  { name: 'message_type', type: 'u32' },
  { name: 'message_seq_num', type: 'u32' },
  { name: 'response_buff_offset', type: 'u64' },
  { name: 'message_buff_offset', type: 'u64' },
  { name: 'migration_buff_offset', type: 'u64' },
  { name: 'error_buff_offset', type: 'u64' },
  { name: 'migration_buf_cpu_access_offset', type: 'u32' },
  { name: 'is_migration_in_progress', type: 'bool' },
  { name: 'error_buff_cpu_get_idx', type: 'u32' },
  { name: 'attached_vgpu_count', type: 'u32' },
  { name: 'host_info', type: HOST_INFO as unknown as StructLayout, count: 16 },
]);

/** The header the host writes at bring-up (before polling for GSP_PLUGIN_BOOTLOADED). */
export function initialCtrlHeader(): Partial<CtrlBuffer> {
  return {
    version: CTRL_BUFF_VERSION,
    response_buff_offset: BigInt(MgmtHeap.RESPONSE_OFFSET),
    message_buff_offset: BigInt(MgmtHeap.MESSAGE_OFFSET),
    migration_buff_offset: BigInt(MgmtHeap.MIGRATION_OFFSET),
    error_buff_offset: BigInt(MgmtHeap.ERROR_OFFSET),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Response buffer (GSP → host), 570 layout (docs/reference/host-rpc-mailbox.md)

export interface DisplaySurface {
  sequence_update_start: bigint;
  sequence_update_end: bigint;
  effective_fb_page_size: number;
  rect_width: number;
  rect_height: number;
  surface_width: number;
  surface_height: number;
  surface_size: number;
  surface_offset: number;
  surface_format: number;
  surface_kind: number;
  surface_pitch: number;
  surface_type: number;
  surface_block_height: number;
  is_blanking_enabled: boolean;
  is_flip_pending: boolean;
  is_free_pending: boolean;
  is_memory_blocklinear: boolean;
}

/** u64 ×2 @0/8, u32 ×11 @16..56, surface_block_height u8 @60, four bools @61..64; 72 bytes. */
export const DISPLAY_SURFACE = new StructLayout<DisplaySurface>('VGPU_CPU_GSP_DISPLAYLESS_SURFACE', [
  { name: 'sequence_update_start', type: 'u64' },
  { name: 'sequence_update_end', type: 'u64' },
  { name: 'effective_fb_page_size', type: 'u32' },
  { name: 'rect_width', type: 'u32' },
  { name: 'rect_height', type: 'u32' },
  { name: 'surface_width', type: 'u32' },
  { name: 'surface_height', type: 'u32' },
  { name: 'surface_size', type: 'u32' },
  { name: 'surface_offset', type: 'u32' },
  { name: 'surface_format', type: 'u32' },
  { name: 'surface_kind', type: 'u32' },
  { name: 'surface_pitch', type: 'u32' },
  { name: 'surface_type', type: 'u32' },
  { name: 'surface_block_height', type: 'u8' },
  { name: 'is_blanking_enabled', type: 'bool' },
  { name: 'is_flip_pending', type: 'bool' },
  { name: 'is_free_pending', type: 'bool' },
  { name: 'is_memory_blocklinear', type: 'bool' },
]);

export interface ResponseBuffer {
  message_seq_num_received: number;
  message_seq_num_processed: number;
  result_code: number;
  guest_rpc_version: number;
  migration_buf_gsp_access_offset: number;
  migration_state_save_complete: number;
  surface: DisplaySurface[];
  error_buff_gsp_put_idx: number;
  grid_license_state: number;
  guest_os_type: number;
  frl_config: number;
}

/**
 * message_seq_num_received 0, message_seq_num_processed 4, result_code 8, guest_rpc_version 12,
 * migration_buf_gsp_access_offset 16, migration_state_save_complete 20, surface[4] 24, error_buff_gsp_put_idx 312,
 * grid_license_state 316, guest_os_type 320, frl_config 324; 328 bytes (inside a 4 KiB region).
 */
export const RESPONSE_BUFFER = new StructLayout<ResponseBuffer>('VGPU_CPU_GSP_RESPONSE_BUFF', [
  { name: 'message_seq_num_received', type: 'u32' },
  { name: 'message_seq_num_processed', type: 'u32' },
  { name: 'result_code', type: 'u32' },
  { name: 'guest_rpc_version', type: 'u32' },
  { name: 'migration_buf_gsp_access_offset', type: 'u32' },
  { name: 'migration_state_save_complete', type: 'u32' },
  { name: 'surface', type: DISPLAY_SURFACE as unknown as StructLayout, count: 4 },
  { name: 'error_buff_gsp_put_idx', type: 'u32' },
  { name: 'grid_license_state', type: 'u32' },
  { name: 'guest_os_type', type: 'u32' },
  { name: 'frl_config', type: 'u32' },
]);

// ---------------------------------------------------------------------------------------------------------------
// Message payloads (docs/reference/host-rpc-mailbox.md)

export interface VersionNegotiation {
  version_cpu: number;
  version_negotiated: number;
}
/** {version_cpu @0, version_negotiated @4}; 8 bytes. (v2 sends the call with no payload at all.) */
export const VERSION_NEGOTIATION_PAYLOAD = new StructLayout<VersionNegotiation>('NV_VGPU_CPU_RPC_DATA_VERSION_NEGOTIATION', [
  { name: 'version_cpu', type: 'u32' },
  { name: 'version_negotiated', type: 'u32' },
]);

export interface BmeState {
  enable: boolean;
  allowed: boolean;
}
/** {enable @0, allowed @1}; 2 bytes. */
export const UPDATE_BME_STATE_PAYLOAD = new StructLayout<BmeState>('NV_VGPU_CPU_RPC_DATA_UPDATE_BME_STATE', [
  { name: 'enable', type: 'bool' },
  { name: 'allowed', type: 'bool' },
]);
export function encodeBmeState(v: Partial<BmeState>): Uint8Array {
  return UPDATE_BME_STATE_PAYLOAD.encode(v);
}
export function decodeBmeState(bytes: Uint8Array): BmeState {
  return UPDATE_BME_STATE_PAYLOAD.decode(bytes);
}

export interface ConfigParams {
  vgpu_uuid: Uint8Array;
  dbdf: number;
  driver_vm_vf_dbdf: number;
  vgpu_device_instance_id: number;
  vgpu_type: number;
  vm_pid: number;
  swizz_id: number;
  num_channels: number;
  num_plugin_channels: number;
  vmm_cap: number;
  migration_feature: number;
  hypervisor_type: number;
  host_cpu_arch: number;
  host_page_size: bigint;
  rev1: boolean[];
  enable_uvm: boolean;
  linux_interrupt_optimization: boolean;
  vmm_migration_supported: boolean;
  rev2: boolean;
  enable_console_vnc: boolean;
  use_non_stall_linux_events: boolean;
  rev3: boolean[];
  placement_id: number;
  rev4: number;
  channel_usage_threshold_percentage: number;
  rev5: boolean;
  rev6: number;
  rev7: boolean;
}

/**
 * NV_VGPU_CPU_RPC_DATA_COPY_CONFIG_PARAMS (570): vgpu_uuid[16] 0, dbdf 16, driver_vm_vf_dbdf 20,
 * vgpu_device_instance_id 24, vgpu_type 28, vm_pid 32, swizz_id 36, num_channels 40, num_plugin_channels 44, vmm_cap
 * 48, migration_feature 52, hypervisor_type 56, host_cpu_arch 60, host_page_size 64, rev1[3] 72, enable_uvm 75,
 * linux_interrupt_optimization 76, vmm_migration_supported 77, rev2 78, enable_console_vnc 79,
 * use_non_stall_linux_events 80, rev3[3] 81, placement_id 84, rev4 88 (2 padding bytes before it — the implicit
 * padding Timur Tabi objected to in review of RFC v2 patch 10), channel_usage_threshold_percentage 92, rev5 96, rev6
 * 100, rev7 104; 112 bytes. The 88-byte snapshot v2 copies covers [0, 88): everything up to and including
 * placement_id and its padding.
 */
export const CONFIG_PARAMS_PAYLOAD = new StructLayout<ConfigParams>('NV_VGPU_CPU_RPC_DATA_COPY_CONFIG_PARAMS', [
  { name: 'vgpu_uuid', type: 'bytes', count: 16 },
  { name: 'dbdf', type: 'u32' },
  { name: 'driver_vm_vf_dbdf', type: 'u32' },
  { name: 'vgpu_device_instance_id', type: 'u32' },
  { name: 'vgpu_type', type: 'u32' },
  { name: 'vm_pid', type: 'u32' },
  { name: 'swizz_id', type: 'u32' },
  { name: 'num_channels', type: 'u32' },
  { name: 'num_plugin_channels', type: 'u32' },
  { name: 'vmm_cap', type: 'u32' },
  { name: 'migration_feature', type: 'u32' },
  { name: 'hypervisor_type', type: 'u32' },
  { name: 'host_cpu_arch', type: 'u32' },
  { name: 'host_page_size', type: 'u64' },
  { name: 'rev1', type: 'bool', count: 3 },
  { name: 'enable_uvm', type: 'bool' },
  { name: 'linux_interrupt_optimization', type: 'bool' },
  { name: 'vmm_migration_supported', type: 'bool' },
  { name: 'rev2', type: 'bool' },
  { name: 'enable_console_vnc', type: 'bool' },
  { name: 'use_non_stall_linux_events', type: 'bool' },
  { name: 'rev3', type: 'bool', count: 3 },
  { name: 'placement_id', type: 'u16' },
  { name: 'rev4', type: 'u32' },
  { name: 'channel_usage_threshold_percentage', type: 'u32' },
  { name: 'rev5', type: 'bool' },
  { name: 'rev6', type: 'u32' },
  { name: 'rev7', type: 'bool' },
]);

/** Length of the "initial snapshot" v2 copies before overriding fields. */
export const CONFIG_SNAPSHOT_SIZE = 88;
/** host_cpu_arch values. */
export const HostCpuArch = { AARCH64: 1, X86_64: 2 } as const;

/** The fixed UUID of the captured snapshot. */
export const SNAPSHOT_UUID = Uint8Array.from([
  0x24, 0xef, 0x8f, 0xf7, 0x3e, 0xd5, 0x11, 0xef, 0xae, 0x36, 0x97, 0x58, 0xb1, 0xcb, 0x0c, 0x87,
]);

/**
 * The decoded values of v2's 88-byte snapshot (docs/reference/host-rpc-mailbox.md), including the fields v2 overrides
 * (captured from an L40-1B instance: vgpu_type 869, 64 channels, 3 plugin channels, swizz_id 0xFFFFFFFF). Everything
 * else is 0.
 */
export const CONFIG_SNAPSHOT_VALUES: Readonly<Partial<ConfigParams>> = Object.freeze({
  vgpu_uuid: SNAPSHOT_UUID,
  vgpu_type: 869,
  swizz_id: 0xffff_ffff,
  num_channels: 64,
  num_plugin_channels: 3,
  migration_feature: 0x4000,
  hypervisor_type: 4,
  host_cpu_arch: HostCpuArch.X86_64,
  host_page_size: 4096n,
  linux_interrupt_optimization: true,
  rev2: true,
  enable_console_vnc: true,
});

/** The 88 snapshot bytes themselves (what v2 memcpy's into the message buffer). */
export function configSnapshotBytes(): Uint8Array {
  return CONFIG_PARAMS_PAYLOAD.encode(CONFIG_SNAPSHOT_VALUES).slice(0, CONFIG_SNAPSHOT_SIZE);
}

/** The per-vGPU values the host overrides on top of the snapshot (v2 behaviour). */
export interface ConfigOverrides {
  dbdf: number;
  /** v2 passes the per-vGPU GSP client handle here. */
  vgpu_device_instance_id: number;
  vgpu_type: number;
  vm_pid: number;
  num_channels: number;
  num_plugin_channels: number;
  /** Heterogeneous placement (0 in homogeneous mode); v2 leaves the snapshot's 0. */
  placement_id?: number;
  /** Per-vGPU UUID; v2 keeps the snapshot's fixed one for every vGPU — a real stack gives each its own. */
  vgpu_uuid?: Uint8Array;
}

/**
 * SETUP_CONFIG_PARAMS_AND_INIT payload: the snapshot with v2's overrides (swizz_id always 0: Ada has no MIG).
 * Returns the full 112-byte struct; bytes past the snapshot are zero, as in v2.
 */
export function encodeConfigParams(o: ConfigOverrides): Uint8Array {
  return CONFIG_PARAMS_PAYLOAD.encode({ ...CONFIG_SNAPSHOT_VALUES, ...o, swizz_id: 0 });
}

/** Decode a SETUP_CONFIG payload; accepts the bare 88-byte snapshot too (the missing tail reads as zero). */
export function decodeConfigParams(bytes: Uint8Array): ConfigParams {
  if (bytes.byteLength >= CONFIG_SNAPSHOT_SIZE && bytes.byteLength < CONFIG_PARAMS_PAYLOAD.size) {
    const full = new Uint8Array(CONFIG_PARAMS_PAYLOAD.size);
    full.set(bytes);
    return CONFIG_PARAMS_PAYLOAD.decode(full);
  }
  return CONFIG_PARAMS_PAYLOAD.decode(bytes);
}
