/**
 * VgpuService contract: what the daemon's faces (control API, metrics, later vfio-user and the Kubernetes device
 * plugin) call. Bound to TOKENS.VgpuManager. The faces never reach into the lifecycle or HAL plugins: everything
 * they show or change goes through here, and progress comes back as bus events ('scrub:progress', 'vgpu:state').
 *
 * Sizes are bigint inside the process; JSON faces print them as decimal strings.
 */
import type { VgpuState } from './events.js';

export type TypePolicy = 'homogeneous' | 'heterogeneous';

export interface GpuSummary {
  bdf: string;
  name: string;
  halId: string;
  pciDeviceId: number;
  /** PCI vendor id (0x10de when absent). */
  pciVendorId?: number;
  /** PCI subsystem ids, when the bus reported them (layout `device-filter`s may name them). */
  pciSubsystem?: { vendorId: number; deviceId: number };
  /**
   * The GPU's index as NVIDIA's tools number GPUs (vgpu-device-manager `devices: [0, 1]`): its position among the
   * host's NVIDIA display/3D-controller PFs sorted by PCI address (docs/reference/vgpu-device-manager-layouts.md).
   * Absent when the service does not know the host's devices; layouts then count the managed GPUs by address.
   */
  index?: number;
  /** NUMA node of the GPU (PciDeviceInfo.numaNode), when the bus reported one. */
  numaNode?: number;
  firmwareVersion: string;
  state: 'ready' | 'lost' | 'resetting' | 'suspended' | 'unbound';
  /** Why the GPU is not ready (what was lost, what its reset waits for); absent while ready. */
  reason?: string;
  policy: TypePolicy;
  totalVfs: number;
  fb: { total: bigint; used: bigint; free: bigint; stranded: bigint; largestFree: bigint };
  vgpus: number;
}

/** A GPU the config (or a bus) names that the daemon does not manage, and why. */
export interface UnmanagedGpu {
  bdf: string;
  reason: string;
}

export interface VgpuTypeInfo {
  id: number;
  name: string;
  /** Last letter of the name: Q, B, A or C. */
  series: string;
  /** Guest-visible FB of one vGPU of this type now (ECC-adjusted); the same number as `guestFbBytes`. */
  fbBytes: bigint;
  /**
   * The profile's size: the nominal FB NVIDIA's tables and `mdevctl types` list for the type (N GiB for -N<series>).
   * The management heap and reservation live inside it, so the guest sees a little less (`guestFbBytes`).
   */
  profileFbBytes: bigint;
  /** FB the guest of a vGPU of this type sees (the profile less heap and reservation, in whole VMMU segments). */
  guestFbBytes: bigint;
  maxInstances: number;
  heads: number;
  maxResolution: string;
  /** How many more of this type can be created on the GPU right now. */
  available: number;
}

export interface ScrubRecord {
  at: number;
  bytes: bigint;
  durationMs: number;
  pattern: number;
  /** null = no verify pass was asked for. */
  verified: boolean | null;
  reason: 'create' | 'reset' | 'destroy';
}

export interface VgpuInfo {
  id: string;
  gpu: string;
  vf: number;
  vfBdf: string;
  gfid: number;
  typeId: number;
  typeName: string;
  state: VgpuState;
  /** The guest's FB: where it lives and its guest-visible size. */
  fb: { offset: bigint; size: bigint };
  /** The type's profile size (nominal FB), next to the guest-visible `fb.size`; unknown for an opaque metadata file. */
  profileFbBytes?: bigint;
  placementId?: number;
  chids: { offset: number; count: number };
  createdAt: number;
  /** The UUID the vGPU's firmware task was configured with (lowercase, dashed). */
  uuid?: string;
  /** Set while a VMM holds the device (open). Destroying an in-use vGPU needs `force`. */
  inUse: boolean;
  /**
   * The vfio-user socket a VMM attaches to, whether a VMM is attached and its pid (docs/vfio-user.md). Absent when
   * no vfio-user face runs. The Kubernetes device plugin mounts `socket` into the container it allocates the vGPU to.
   */
  vfioUser?: { socket: string; attached: boolean; clientPid?: number };
  lastScrub?: ScrubRecord;
  error?: { code: string; message: string; step?: string };
  /** The control-API request that created it (journalled with the vGPU, so a restart can finish or undo it). */
  requestId?: string;
}

export interface CreateVgpuRequest {
  gpu: string;
  /**
   * Type id or full/short name ("NVIDIA RTX6000-Ada-24Q", "RTX6000-Ada-24Q", "24Q"). May be left out when `vf`
   * names a VF whose type was selected through current_vgpu_type (upstream's flow: select, then open).
   */
  type?: number | string;
  /** VF index; the first free VF when absent. */
  vf?: number;
  /**
   * The vGPU's UUID, chosen by the caller as mdev's `create` takes one from the management layer
   * (docs/reference/host-interfaces.md); the firmware is configured with it. A random one when absent; one already
   * used by a vGPU of this daemon is refused.
   */
  uuid?: string;
  signal?: AbortSignal;
  /**
   * The request this create belongs to (core/contracts/request-journal.ts). Journalled with the vGPU BEFORE its
   * first step, so after a crash the vGPUs of an unfinished request are known exactly, also those the client never
   * saw an id of.
   */
  requestId?: string;
}

export type VfAttribute = 'creatable_vgpu_types' | 'current_vgpu_type';

/**
 * A VF kept out of service because the journal lost its state (its vGPU record was damaged): never handed to a
 * create until an operator releases it (`releaseVf`).
 */
export interface QuarantinedVf {
  gpu: string;
  vf: number;
  vfBdf: string;
  /** The vGPU the damaged record was for. */
  vgpuId?: string;
  typeId?: number;
  reason: string;
  since: number;
  /** What it may hold that no record names ('type', 'guest-fb', 'heap', 'chids', 'rm-client'). */
  unknown: string[];
  /** While true, every create on its GPU waits for the release (a new vGPU could land on what it may hold). */
  blocksCreates: boolean;
}

/** What releasing a quarantined VF did, step by step, in our words. */
export interface VfReleaseReport {
  gpu: string;
  vf: number;
  gfid: number;
  vgpuId?: string;
  done: string[];
}

/** One VF of a GPU: its index, address, selected type (0 = none) and the vGPU on it, if any. */
export interface VfSummary {
  index: number;
  bdf: string;
  typeId: number;
  vgpuId?: string;
}

export interface VgpuService {
  gpus(): GpuSummary[];
  /**
   * Configured GPUs the daemon does not manage (not on any bus, or their probe failed), with the reason. Optional:
   * a service without it reports none. `status` is unhealthy (exit non-zero) while this is non-empty or a managed
   * GPU is lost or resetting.
   */
  unmanaged?(): UnmanagedGpu[];
  types(gpu: string, opts?: { all?: boolean }): VgpuTypeInfo[];
  list(filter?: { gpu?: string }): VgpuInfo[];
  /** Throws VGPU_ENOENT for an unknown id. */
  get(id: string): VgpuInfo;
  create(req: CreateVgpuRequest): Promise<VgpuInfo>;
  destroy(id: string, opts?: { force?: boolean; signal?: AbortSignal }): Promise<void>;
  /**
   * Reset the vGPU as a function-level reset of its VF does (what `echo 1 > /sys/bus/pci/devices/<VF>/reset` asks
   * of the VFIO variant driver; docs/reference/host-interfaces.md): the firmware's RESET, then its guest FB is
   * scrubbed. Refused while a VM uses it unless `force`.
   */
  reset?(id: string, opts?: { force?: boolean }): Promise<void>;
  /** The per-VF admin ABI (seed spec §3.5), byte-exact. */
  readVfAttribute(vfBdf: string, attr: VfAttribute): string;
  writeVfAttribute(vfBdf: string, attr: VfAttribute, value: string): void;
  setPolicy(gpu: string, policy: TypePolicy): void;
  /** The VFs of a GPU with their type selections (optional: a backend may not enumerate VFs). */
  vfs?(gpu: string): VfSummary[];
  /**
   * Load the metadata file again (SIGHUP) and upload it, per GPU. A GPU whose running or selected vGPU types the new
   * file would change keeps its old types and says why; nothing is half-applied.
   */
  reloadMetadata?(): Promise<{ gpu: string; ok: boolean; reason?: string }[]>;
  /** Last `lines` lines of a vGPU's log (kept after destroy until its VF is reused). */
  logs(id: string, lines?: number): string[];
  /** VFs quarantined because the journal lost their state (see QuarantinedVf). */
  quarantined?(): QuarantinedVf[];
  /**
   * Release a quarantined VF: tear down whatever the device may still hold for its gfid (plugin task SHUTDOWN and
   * CLEANUP, the RM client if its handle is known, a scrub of its guest FB), then give the VF back. VGPU_ESTATE for
   * a VF that is not quarantined.
   */
  releaseVf?(vfBdf: string): Promise<VfReleaseReport>;
}
