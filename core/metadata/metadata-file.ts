/**
 * The parsed metadata file: what `parseMetadata` returns and what `buildMetadata` accepts. The shapes are the same
 * on purpose, so `buildMetadata(parseMetadata(bytes))` re-serialises a file (byte-identical, see the reader's
 * canonical-form rules).
 */

/** One vGPU type as the kernel stores it (`struct nvidia_vgpu_type`, docs/reference/metadata-format.md). */
export interface VgpuTypeRecord {
  /** Numeric type id shown in sysfs `creatable_vgpu_types` and written to `current_vgpu_type` (e.g. 941). */
  readonly id: number;
  /** e.g. "NVIDIA RTX6000-Ada-1Q"; printable ASCII, at most 31 characters. */
  readonly name: string;
  /** Virtual PCI ids: bits 31:16 device id, bits 15:0 subsystem id (the u64 field's high half must be 0). */
  readonly vdevId: number;
  /** Physical PCI device id; equals the blob's device id. */
  readonly pdevId: number;
  /** Guest framebuffer bytes (multiple of 1 MiB). */
  readonly fbLength: bigint;
  /** Management (GSP plugin) heap bytes (multiple of 4 KiB, at least the 0x274000-byte comm buffer). */
  readonly gspHeapSize: bigint;
  /** Size of the vGPU's BAR1 in MiB (a power of two). */
  readonly bar1LengthMiB: number;
  /** Most vGPUs of this type on one GPU, 1..32. */
  readonly maxInstance: number;
  readonly eccSupported: boolean;
  /** FB reserved per vGPU, used by the ECC size formula (multiple of 4 KiB). */
  readonly fbReservation: bigint;
}

/** One vGPU-type blob: the types of one PF device id plus the RM control that uploads them to GSP. */
export interface MetadataBlob {
  /** PF PCI device id this blob applies to (e.g. 0x26B1). */
  readonly deviceId: number;
  /** RM control command sent to GSP with `rmctrlPayload` (opaque to the kernel; ours is 0x20804003). */
  readonly rmctrlCmd: number;
  /** The RM control params, sent as-is. A copy owned by this object. */
  readonly rmctrlPayload: Uint8Array;
  /** `gsp_rmctrl_vgpu_info_offset` / `_size`: where the info array sits in the payload (unused by the kernel). */
  readonly rmctrlVgpuInfoOffset: bigint;
  readonly rmctrlVgpuInfoSize: bigint;
  readonly types: readonly VgpuTypeRecord[];
}

export interface MetadataFile {
  readonly vgpuMajor: number;
  readonly vgpuMinor: number;
  /** GSP build version the file is for, e.g. "570.144". */
  readonly gspVersion: string;
  /** The 128 opaque `vgpu_features` bytes (unused by RFC v2). A copy owned by this object. */
  readonly features: Uint8Array;
  readonly blobs: readonly MetadataBlob[];
}

/** Input of `buildMetadata`: a MetadataFile, with the opaque/unused parts optional. */
export interface MetadataSpec {
  vgpuMajor: number;
  vgpuMinor: number;
  gspVersion: string;
  /** Defaults to 128 zero bytes. */
  features?: Uint8Array;
  blobs: readonly MetadataBlobSpec[];
}

export interface MetadataBlobSpec {
  deviceId: number;
  rmctrlCmd: number;
  rmctrlPayload: Uint8Array;
  /** Default 0 (unknown). */
  rmctrlVgpuInfoOffset?: bigint;
  rmctrlVgpuInfoSize?: bigint;
  types: readonly VgpuTypeRecord[];
}
