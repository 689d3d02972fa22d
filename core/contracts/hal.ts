/**
 * HAL contract: what a GPU-generation plugin provides (docs/reference/core-driver-interface.md duties 1–6,
 * docs/reference/ada-chips.md).
 *
 * A HAL claims PCI devices by id, opens one physical GPU (maps its BARs and shared memory, without booting it),
 * and hands the core that GPU's Firmware, FramebufferMemory and ChannelPool. The core and the plugins never
 * learn which chip or which device model is underneath: the simulated Ada GPU, the mock and (later) a real card
 * behind the Linux sysfs ABI are all just `PhysicalGpu`s.
 *
 * Capability semantics (after johnny-five's IO plugins): an essential operation a HAL cannot do throws
 * VGPU_ENODEV; an optional one it does not have is absent from `caps`.
 */
import type { ChannelPool } from './channels.js';
import type { Firmware } from './firmware.js';
import type { FramebufferMemory } from './memory.js';
import type { Logger } from './logger.js';
import type { GuestPortLocator } from './guest-port.js';

export interface PciId {
  vendorId: number;
  deviceId: number;
}

/** A PCI function as a bus enumerates it (a PF; VFs are listed by the opened GPU). */
export interface PciDeviceInfo {
  /** Domain:bus:device.function, e.g. "0000:41:00.0". */
  bdf: string;
  vendorId: number;
  deviceId: number;
  subsystemVendorId: number;
  subsystemId: number;
  /** 24-bit class code, e.g. 0x030200 (3D controller). */
  classCode: number;
  revision: number;
  sriov?: { totalVfs: number; numVfs: number; firstVfOffset: number; vfStride: number };
  /**
   * NUMA node the device is attached to, when the bus knows it (Linux: /sys/bus/pci/devices/<bdf>/numa_node, where
   * -1 means "no NUMA information": report that as absent). The Kubernetes device plugin hands it to the kubelet's
   * topology manager.
   */
  numaNode?: number;
  /** How to reach the device: the bus that listed it fills this; only the matching HAL reads it. */
  transport: { kind: string; [key: string]: unknown };
}

/** Enumerates devices: the simulator, the mock, and later the Linux sysfs backend each provide one. */
export interface PciBus {
  readonly name: string;
  list(): Promise<PciDeviceInfo[]>;
  /**
   * BDFs this bus was configured to find (its config names them). Optional. A configured device the daemon does not
   * manage — absent from `list`, or failing its probe — makes `status` say so and exit non-zero.
   */
  expected?(): readonly string[];
}

export interface BarSizes {
  bar0: bigint;
  bar1: bigint;
  bar3: bigint;
}

/**
 * Static hardware configuration, known once the GPU is opened (docs/reference/core-driver-interface.md duty 5,
 * docs/reference/ada-chips.md).
 */
export interface HardwareConfig {
  /** Marketing name, e.g. "NVIDIA RTX 6000 Ada Generation". */
  name: string;
  generation: string;
  pci: PciId;
  fbBytes: bigint;
  /** NV2080 engine-type indices present on the GPU. */
  engines: readonly number[];
  /**
   * The same as a little-endian bitmap of `engineBitmapBytes` bytes (docs/reference/core-driver-interface.md ops
   * 19–20).
   */
  engineBitmap: Uint8Array;
  /** CHIDs reserved for vGPUs (docs/reference/core-driver-interface.md op 13). */
  channelCount: number;
  totalVfs: number;
  pfBars: BarSizes;
  vfBars: BarSizes;
  /** Copy-engine class used for the scrub, e.g. 0xc7b5 (AMPERE_DMA_COPY_B as Ada uses it). */
  copyEngineClass: number;
  /** Lowest GSP firmware version the HAL accepts for vGPU, e.g. "570.144". */
  firmwareFloor: string;
  eccSupported: boolean;
}

/** Core-driver capabilities (docs/reference/core-driver-interface.md driver_caps), as names. */
export type HalCapability =
  | 'gsp-client-alloc'
  | 'rm-alloc'
  | 'chid-alloc'
  | 'fb-mem-alloc'
  | 'fb-mem-bar1-map'
  | 'chan-mem-map'
  | 'ce-chan-alloc'
  | 'pushbuf-submit'
  | 'pf-event-delivery'
  | 'suspend-resume'
  | 'gpu-reset'
  /** The core driver's `sriov_configure` (PhysicalGpu.setNumVfs): VFs can be enabled and disabled. */
  | 'sriov-configure';

/** 32-bit register window (PF BAR0): identification, GSP mailboxes, doorbells. */
export interface RegisterWindow {
  read32(offset: number): number;
  write32(offset: number, value: number): void;
}

export interface VirtualFunction {
  /** 0-based VF index (`pci_iov_vf_id`). */
  index: number;
  /** GFID = VF index + 1; GFID 0 is the PF (docs/reference/create-order.md). */
  gfid: number;
  bdf: string;
  deviceId: number;
}

export type HostEventListener = (e: { kind: 'suspend' | 'resume' | 'unbind' | 'sriov-configure'; numVfs?: number }) => void;

export interface PhysicalGpu {
  readonly bdf: string;
  readonly halId: string;
  readonly config: HardwareConfig;
  readonly caps: ReadonlySet<HalCapability>;
  readonly firmware: Firmware;
  readonly memory: FramebufferMemory;
  readonly channels: ChannelPool;
  readonly registers: RegisterWindow;
  vfs(): VirtualFunction[];
  /**
   * Where the guest-visible side of this GPU's VFs can be opened (core/contracts/guest-port.ts), by another process
   * if the locator's options are JSON. Absent when the HAL cannot present VFs to a VMM.
   */
  readonly guestPort?: GuestPortLocator;
  /** Host events of this PF (unbind, SR-IOV reconfigure, suspend/resume). Returns unsubscribe. */
  onHostEvent(listener: HostEventListener): () => void;
  /**
   * The core driver's `pci_driver.sriov_configure` (the upstream RFC's nvkm adds one): enable `numVfs` VFs, or
   * disable them all with 0, then tell the host-event listeners ('sriov-configure'). Absent (and 'sriov-configure'
   * absent from `caps`) when the HAL cannot; the kernel's checks (counts, EBUSY) are the caller's
   * (core/manager/sriov-numvfs-abi.ts).
   */
  setNumVfs?(numVfs: number): Promise<void>;
  /**
   * Release the host side only (warm update, daemon restart): the device, its firmware and its running vGPUs
   * keep going and a later `open` re-attaches.
   */
  detach(): Promise<void>;
  /** Shut the GPU down: firmware stopped, every host resource freed. */
  close(): Promise<void>;
  /**
   * Reset the GPU after it was lost — the path a host takes after a fatal firmware error or a device that fell off
   * the bus: wait until the device is present again (a device that is gone must come back first; `onWaiting` says
   * so once), reset the function, and leave the firmware 'off' with nothing of the old one left (RM clients,
   * plugin tasks). The caller boots the firmware again. FB contents are kept. Optional (capability 'gpu-reset');
   * `signal` ends a wait for the device with VGPU_ECANCELED.
   */
  reset?(opts?: GpuResetOptions): Promise<void>;
}

export interface GpuResetOptions {
  signal?: AbortSignal;
  /** Called once when the reset has to wait for the device to come back, with why. */
  onWaiting?: (why: string) => void;
}

export interface GpuOpenOptions {
  logger: Logger;
  /** Default RPC timeout in ms (OpenRM: 1.5 × 4 s); tests shrink it. */
  rpcTimeoutMs?: number;
}

export interface Hal {
  /** Stable id, e.g. "ada-lovelace", "mock". */
  readonly id: string;
  readonly generation: string;
  /** PCI ids this HAL claims. */
  readonly claims: readonly PciId[];
  /** True if this HAL drives the device (id claimed and transport understood). */
  supports(device: PciDeviceInfo): boolean;
  /**
   * Claim and open one GPU: map its registers and memory, read identification, build Firmware/Memory/Channels.
   * Does not boot the firmware (the caller boots it, so the boot path is logged step by step). Throws
   * VGPU_ENODEV for an unknown id.
   */
  open(device: PciDeviceInfo, opts: GpuOpenOptions): Promise<PhysicalGpu>;
}
