/**
 * VgpuService contract: what the daemon's faces (control API, metrics, the sysfs presenter, later vfio-user and the
 * Kubernetes device plugin) call. Bound to TOKENS.VgpuManager. The faces never reach into the lifecycle, the sysfs
 * backend or HAL plugins: everything they show or change goes through here, and progress comes back as bus events
 * ('scrub:progress', 'vgpu:state').
 *
 * Two kinds of backend implement it (core/contracts/vgpu-backend.ts): the userspace manager, which drives the
 * firmware itself and knows everything, and the Linux sysfs backend, where NVIDIA's kernel driver owns the GPU and
 * keeps FB offsets, channel ids and in-use state to itself. Fields only one kind can know are optional and left out
 * rather than invented; every consumer copes with their absence.
 *
 * Sizes are bigint inside the process; JSON faces print them as decimal strings.
 */
import type { VgpuState } from './events.js';

export type TypePolicy = 'homogeneous' | 'heterogeneous';

export interface GpuSummary {
  bdf: string;
  name: string;
  /** The HAL that drives it ('ada-lovelace', 'mock'), or the backend's name where the kernel drives it. */
  halId: string;
  /**
   * Which backend manages it: 'manager' (vgpud drives the GPU through a HAL) or 'linux-sysfs' (NVIDIA's kernel
   * driver does; vgpud writes the per-VF type ABI). Absent in a service that is not behind the router.
   */
  backend?: string;
  pciDeviceId: number;
  /** PCI vendor id (0x10de when absent). */
  pciVendorId?: number;
  /** PCI subsystem ids, when the bus reported them (layout `device-filter`s may name them). */
  pciSubsystem?: { vendorId: number; deviceId: number };
  /** 24-bit PCI class code (0x030000 VGA, 0x030200 3D controller), when known. */
  pciClass?: number;
  /**
   * The GPU's index as NVIDIA's tools number GPUs (vgpu-device-manager `devices: [0, 1]`): its position among the
   * host's NVIDIA display/3D-controller PFs sorted by PCI address (docs/reference/vgpu-device-manager-layouts.md).
   * Absent when the service does not know the host's devices; layouts then count the managed GPUs by address.
   */
  index?: number;
  /** NUMA node of the GPU (PciDeviceInfo.numaNode), when the bus reported one. */
  numaNode?: number;
  /** GSP firmware version (userspace manager) or the NVIDIA kernel driver's version (sysfs backend). */
  firmwareVersion: string;
  state: 'ready' | 'lost' | 'resetting' | 'suspended' | 'unbound';
  /** Why the GPU is not ready (what was lost, what its reset waits for); absent while ready. */
  reason?: string;
  policy: TypePolicy;
  totalVfs: number;
  /** VFs enabled now (sriov_numvfs). */
  numVfs?: number;
  /** FB accounting; absent where the kernel driver keeps it (sysfs backend). */
  fb?: { total: bigint; used: bigint; free: bigint; stranded: bigint; largestFree: bigint };
  vgpus: number;
}

/** One enabled SR-IOV VF of a GPU. */
export interface VfInfo {
  /** 0-based VF index (`virtfnN`). */
  index: number;
  bdf: string;
  /** PCI device id of the VF (the PF's `sriov_vf_device`), when known. */
  deviceId?: number;
  /** The VF's `current_vgpu_type` (0 = none). */
  typeId: number;
  /** The vGPU vgpud manages on it, if any. */
  vgpuId?: string;
}

/**
 * A VF whose vGPU type vgpud did not set, or changed behind vgpud's back. vgpud leaves such VFs alone (it never
 * writes to them) and reports them; `adopt` takes a 'not-adopted' one over.
 */
export interface UnmanagedVf {
  gpu: string;
  vf: number;
  vfBdf: string;
  /** The type the VF holds now (0 when someone cleared a type vgpud had set). */
  typeId: number;
  typeName?: string;
  /** 'not-adopted': a type vgpud never set (set before it ran, or by hand); 'changed': not what vgpud set. */
  reason: 'not-adopted' | 'changed';
  /** For 'changed': the vGPU vgpud had on this VF and the type it set. */
  vgpuId?: string;
  expectedTypeId?: number;
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
  /**
   * Guest-visible FB of one vGPU of this type now (ECC-adjusted); the same number as `guestFbBytes`. Absent where
   * the kernel driver computes it and does not publish it (sysfs backend).
   */
  fbBytes?: bigint;
  /**
   * The profile's size: the nominal FB NVIDIA's tables and `mdevctl types` list for the type (N GiB for -N<series>).
   * The management heap and reservation live inside it, so the guest sees a little less (`guestFbBytes`). Absent
   * only for a name that does not say.
   */
  profileFbBytes?: bigint;
  /** FB the guest of a vGPU of this type sees (the profile less heap and reservation, in whole VMMU segments). */
  guestFbBytes?: bigint;
  /**
   * The type's max instances per GPU in NVIDIA's equal-size mode (every vGPU of the GPU the same size; the
   * homogeneous policy); absent where the kernel does not publish it (sysfs backend).
   */
  maxInstances?: number;
  /**
   * The type's max instances per GPU in NVIDIA's mixed-size mode (the heterogeneous policy): the count of its
   * mixed-size placements (docs/reference/vgpu-types.md). Absent where the type table has no mixed-size rules or the
   * backend does not publish it (sysfs backend).
   */
  maxInstancesMixed?: number;
  heads?: number;
  maxResolution?: string;
  /**
   * How many more of this type can be created on the GPU right now. Exact for the userspace manager; for the sysfs
   * backend an upper bound (free VFs whose `creatable_vgpu_types` lists the type), so a check against it stays a
   * necessary condition.
   */
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
  /** The guest's FB: where it lives and its guest-visible size. Absent where the kernel keeps it (sysfs backend). */
  fb?: { offset: bigint; size: bigint };
  /** The type's profile size (nominal FB), next to the guest-visible `fb.size`; unknown for an opaque metadata file. */
  profileFbBytes?: bigint;
  placementId?: number;
  /** The type's maxima per GPU: equal-size mode, and mixed-size mode where the type table has mixed-size rules. */
  maxInstances?: number;
  maxInstancesMixed?: number;
  /**
   * NVIDIA's mixed-size placement id (GiB slot) the vGPU holds, on a GPU in mixed-size (heterogeneous) mode under
   * NVIDIA's rules; `placementId` is the FB segment index vgpud placed its guest FB at.
   */
  mixedPlacementId?: number;
  /** Channel ids of the vGPU; absent where the kernel keeps them (sysfs backend). */
  chids?: { offset: number; count: number };
  /** When vgpud created it (or adopted it). */
  createdAt: number;
  /** The UUID the vGPU's firmware task was configured with (lowercase, dashed). */
  uuid?: string;
  /**
   * Set while a VMM holds the device (open). Destroying an in-use vGPU needs `force`. Absent where the backend
   * cannot tell (sysfs backend: the kernel refuses a busy VF's type change with EBUSY instead).
   */
  inUse?: boolean;
  /** NVIDIA's `gpu_instance_id` of the VF (MIG-backed types on real hosts), when the driver publishes it. */
  gpuInstanceId?: number;
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

/** The per-VF ABI of the upstream RFC (both read; `current_vgpu_type` also written). */
export type VfTypeAttribute = 'creatable_vgpu_types' | 'current_vgpu_type';
/**
 * NVIDIA's further per-VF attributes on real hosts (vGPU 17+ driver), read-only; only the sysfs backend has them
 * (the upstream RFC, which the userspace manager follows, defines just the two above).
 */
export type VfExtraAttribute = 'vgpu_params' | 'gpu_instance_id' | 'placement_id';
export type VfAttribute = VfTypeAttribute | VfExtraAttribute;
export const VF_ATTRIBUTES: readonly VfAttribute[] = [
  'creatable_vgpu_types', 'current_vgpu_type', 'vgpu_params', 'gpu_instance_id', 'placement_id',
];

/** What an adopt took over, and what it left (with why). */
export interface AdoptResult {
  adopted: VgpuInfo[];
  skipped: { vfBdf: string; why: string }[];
}

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

/** One VF of a GPU: its index, address, selected type (0 = none) and the vGPU on it, if any (VfInfo's name on main). */
export type VfSummary = VfInfo;

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
   * scrubbed. Refused while a VM uses it unless `force`. Absent where the kernel owns the GPU (sysfs backend).
   */
  reset?(id: string, opts?: { force?: boolean }): Promise<void>;
  /**
   * The per-VF admin ABI (docs/reference/sysfs-abi.md), byte-exact: the text a read of the sysfs file gives, and
   * a write refused with the kernel's errno (VfAbiError.errno). A write may complete asynchronously (the sysfs
   * backend waits for the kernel's store); callers await it.
   */
  readVfAttribute(vfBdf: string, attr: VfAttribute): string;
  writeVfAttribute(vfBdf: string, attr: VfAttribute, value: string): void | Promise<void>;
  setPolicy(gpu: string, policy: TypePolicy): void;
  /** The GPU's enabled VFs with their current type (the sysfs presenter lists them as `virtfnN`). */
  vfs?(gpu: string): VfInfo[];
  /**
   * Write the PF's `sriov_numvfs`: `numVfs` VFs (0 disables them), with the kernel's rules (drivers/pci/iov.c
   * sriov_numvfs_store): ERANGE above sriov_totalvfs, nothing to do for the current count, EBUSY to change a
   * non-zero count to another non-zero one, ENOENT when the PF's driver cannot configure SR-IOV. Errors are
   * VfAbiErrors carrying that errno.
   */
  configureVfs?(gpu: string, numVfs: number): Promise<void>;
  /**
   * Get GPUs ready to take vGPUs before a layout is applied to them: a GPU with no VFs enabled gets them (as
   * NVIDIA's sriov-manage -e does), so the layout is planned against the types and VFs it really offers.
   */
  prepareGpus?(gpus: readonly string[]): Promise<void>;
  /** VFs with a type vgpud did not set or that was changed behind its back (see UnmanagedVf). */
  unmanagedVfs?(filter?: { gpu?: string }): UnmanagedVf[];
  /** Take over VFs whose type vgpud did not set ('not-adopted'): all of them, a GPU's, or the listed VFs. */
  adopt?(req: { gpu?: string; vfs?: string[] }): Promise<AdoptResult>;
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
