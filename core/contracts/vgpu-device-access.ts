/**
 * VgpuDeviceAccess contract: the device behind ONE vGPU, as the VFIO variant driver part of the vGPU manager sees
 * it. Bound to TOKENS.VgpuDeviceAccess by the plugin that owns the vGPUs (the lifecycle plugin, capability
 * 'vgpu-device-access').
 *
 * Why it exists: VgpuService (TOKENS.VgpuManager) is the management face (list, create, destroy, VF ABI); it hides
 * the resources a vGPU holds on purpose. Code that drives the device itself — the migration plugin today (FB
 * pre-copy, the migration RPCs through the vGPU's mailbox, VFIO_DEVICE_RESET), the vfio-user face later — needs
 * those resources, and a plugin reaches another plugin only through core contracts. So the per-vGPU resources are
 * published here in core terms (FbRange, FramebufferMemory, HostMapping, an RPC caller), never as the lifecycle's
 * own classes.
 *
 * The vfio-user face reports here what a VMM does with the device: that one attached (the in-use mark, with the
 * VMM's pid and the socket it came through) and bus-mastering changes (UPDATE_BME_STATE to the firmware task).
 *
 * A handle is a live view: its getters read the vGPU's current state and resources at each access, so a handle
 * taken while the vGPU was ready shows it 'stopping'/'destroyed' (resources undefined) once it is being destroyed.
 */
import type { VgpuState } from './events.js';
import type { RpcOptions } from './firmware.js';
import type { FbRange, FramebufferMemory, HostMapping } from './memory.js';

export interface VgpuRpcCallOptions extends RpcOptions {
  /** Bytes to copy back from the message buffer after success (in/out payloads); default the payload's size. */
  replySize?: number;
}

/**
 * Host end of one vGPU's RPC mailbox (docs/reference/host-rpc-mailbox.md: control/response/message buffers in the
 * management heap and the VF priv doorbell). One call in flight per vGPU; each call waits for its own reply within a
 * deadline.
 */
export interface VgpuRpcCaller {
  /** Send mailbox message `type` (a `VgpuRpcMsg` of core/firmware-abi/vgpu-mailbox.ts); resolves with the reply bytes. */
  call(type: number, payload?: Uint8Array, opts?: VgpuRpcCallOptions): Promise<Uint8Array>;
}

/** One vGPU's device: identity, the facts a migration destination checks for compatibility, and its resources. */
export interface VgpuDeviceHandle {
  readonly id: string;
  /** BDF of the physical GPU the vGPU lives on. */
  readonly gpu: string;
  /** BDF of its VF. */
  readonly vfBdf: string;
  /** PCI device id the VF presents to the guest. */
  readonly vfDeviceId: number;
  readonly state: VgpuState;
  readonly typeId: number;
  readonly typeName: string;
  /** Version of the GSP firmware running on the physical GPU (the vGPU's firmware context is only valid on it). */
  readonly firmwareVersion: string;
  /** The physical GPU's framebuffer; `guestFb` is a range of it (map it for host access). */
  readonly memory: FramebufferMemory;
  /** The guest FB slice; undefined before the create reserved it and after destroy freed it. */
  readonly guestFb: FbRange | undefined;
  /** The vGPU's channel IDs; undefined before the create allocated them. */
  readonly chids: { readonly offset: number; readonly count: number } | undefined;
  /** The mailbox; undefined until the create set it up (and after destroy). */
  readonly rpc: VgpuRpcCaller | undefined;
  /**
   * Host mapping of the management heap's comm buffer, offset 0 = control buffer (MgmtHeap layout: control,
   * response, message buffers and the 2 MiB migration ring). Undefined whenever `rpc` is.
   */
  readonly commMapping: HostMapping | undefined;
  /** VFIO_DEVICE_RESET of the vGPU (RPC RESET, then the guest FB is scrubbed). Only a ready vGPU can be reset. */
  reset(): Promise<void>;
  /** The guest's Bus Master Enable changed: UPDATE_BME_STATE to the firmware task (docs/reference/create-order.md). */
  setBme(enable: boolean): Promise<void>;
  /**
   * Where VMMs reach this vGPU and who is attached: `pid` null = served but no VMM attached. A vGPU with an
   * attached VMM is in use (destroy needs force). null = not served at all.
   */
  setExposure(e: { socket: string; pid: number | null } | null): void;
}

export interface VgpuDeviceAccess {
  /** The device of vGPU `id` (any state). Throws VGPU_ENOENT for an unknown or destroyed id. */
  device(id: string): VgpuDeviceHandle;
}
