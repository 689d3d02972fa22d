/**
 * VgpuJournal contract: the daemon's write-ahead record of every vGPU and of each GPU's manager state, kept in the
 * state directory so that a restart — a crash, `kill -9`, an upgrade — knows exactly what lives in the devices.
 *
 * Write-ahead: the lifecycle AWAITS each write before the step it announces (intent before the first hardware
 * step, every resource that outlives the daemon before moving on, 'stopping' before the first teardown step), so
 * whatever a crash interrupts, the journal names at least everything the devices hold. Every write is atomic
 * (temp file, fsync, rename, fsync dir): a record is always the old or the new one, never a mix.
 *
 * Damage from outside (a truncated or overwritten file, a planted link) is never ignored silently: the journal
 * reports it (`damaged()`, in its own words, never the file's bytes), rebuilds sequences above every number it still
 * knows, and keeps quarantine records for VFs whose state was lost, which the lifecycle holds out of service until an
 * operator releases them.
 *
 * Bound to TOKENS.VgpuJournal by the 'state' plugin; the lifecycle injects it optionally (unit tests run without).
 */
import type { VgpuState } from './events.js';
import type { RmClient } from './firmware.js';

/** One vGPU as the journal knows it. Resources appear as the create steps acquire them. */
export interface JournalVgpu {
  id: string;
  gpu: string;
  vf: number;
  typeId: number;
  typeName: string;
  /** 'creating' and 'stopping' are half-way: a restart rolls them back. 'ready' is adopted. */
  state: Extract<VgpuState, 'creating' | 'ready' | 'stopping'>;
  /** The type selection of the VF: its FB placement slot, and whether the create selected it (destroy deselects). */
  placementId: number;
  /**
   * NVIDIA's mixed-size placement id (GiB slot) the vGPU holds on a GPU in mixed-size mode, which its firmware task
   * was told (SETUP_CONFIG placement_id): a restart re-takes this slot, not merely the first free one.
   */
  mixedPlacementId?: number;
  autoSelected: boolean;
  /** Per-vGPU UUID, hex without dashes (the plugin task was configured with it). */
  uuid: string;
  chids?: { offset: number; count: number };
  guestFb?: { offset: bigint; size: bigint };
  heap?: { offset: bigint; size: bigint };
  /** Journalled BEFORE the client is allocated: a crash during the allocation still names the handle to free. */
  clientHandle?: number;
  client?: RmClient;
  /** BOOTLOAD succeeded: the firmware runs a plugin task for this gfid. */
  pluginTask?: boolean;
  /** The control request that created it (core/contracts/request-journal.ts): a restart finishes or undoes it. */
  requestId?: string;
  createdAt: number;
  updatedAt: number;
}

/** Per-GPU manager state that outlives the daemon. */
export interface JournalGpu {
  bdf: string;
  /**
   * hClient handles of the manager's own RM clients that may be alive in the firmware: the next run's handle is
   * added BEFORE it is allocated, and the earlier runs' are freed as stale once the new manager is up.
   */
  managerClients: number[];
  /** VF type selections (also those without a vGPU: an operator's current_vgpu_type survives a restart). */
  selections: { vf: number; typeId: number; placementId: number }[];
  updatedAt: number;
}

/** Monotonic sequences that never repeat across restarts. */
export type JournalSequence = 'vgpu-id' | 'rm-handle';

/**
 * A VF whose state the journal lost (its vGPU record was damaged): whatever the device still runs there is unknown,
 * so the VF is kept out of every create until an operator releases it (which tears down what the device may hold
 * for its gfid). The known fields say what it may hold; `unknown` names what could not be read.
 */
export interface JournalQuarantine {
  gpu: string;
  vf: number;
  /** The vGPU the damaged record was for (from its file name). */
  vgpuId?: string;
  /** Our words: why the VF is quarantined. */
  reason: string;
  since: number;
  typeId?: number;
  placementId?: number;
  /** false: the operator selected the type (a release keeps it); true or absent: the release deselects it. */
  autoSelected?: boolean;
  chids?: { offset: number; count: number };
  guestFb?: { offset: bigint; size: bigint };
  heap?: { offset: bigint; size: bigint };
  clientHandle?: number;
  client?: RmClient;
  /** What the VF may hold that no file names: while 'guest-fb', 'heap' or 'chids' is unknown, creates on its GPU wait. */
  unknown: QuarantineUnknown[];
}

export type QuarantineUnknown = 'type' | 'guest-fb' | 'heap' | 'chids' | 'rm-client';

/** A vGPU record as far as a damaged file could still be read (the id comes from the file name). */
export type SalvagedVgpu = Partial<Omit<JournalVgpu, 'id'>> & { id: string };

/** A journal file open() could not use. Its contents are never logged or reported, only what is wrong with it. */
export interface JournalDamage {
  /** File name in the state dir (moved to `damaged/` once what it said is kept elsewhere). */
  file: string;
  kind: 'vgpu' | 'gpu' | 'sequence' | 'quarantine';
  reason: string;
  /** Not a file this journal writes (a symbolic link, a FIFO, another user's file): refused unread, set aside. */
  unsafe: boolean;
  /** A damaged vGPU record: what could still be read of it. */
  salvaged?: SalvagedVgpu;
}

/** A sequence whose file was damaged or missing: restarted above every number the journal still knows. */
export interface RebuiltSequence {
  seq: JournalSequence;
  next: number;
  why: string;
}

/** What the reconcile at start did, per vGPU id. */
export interface ReconcileReport {
  /** Journalled ready and re-attached: same id, VF and FB. */
  kept: string[];
  /** Half-way (creating/stopping) or not adoptable: torn down, record dropped. */
  rolledBack: { id: string; why: string }[];
  /** Records of GPUs this run does not manage: left in the journal for a later start. */
  dropped: string[];
  /** Stale manager RM clients of earlier runs that were freed. */
  staleClientsFreed: number;
  /** VFs kept out of creates because their state is unknown (see JournalQuarantine), held over or new. */
  quarantined: { gpu: string; vf: number; vgpuId?: string; why: string }[];
  /** Journal files that could not be used (also listed in the log, never with their contents). */
  damaged: { file: string; reason: string }[];
  /** Sequences restarted from what the journal still knows. */
  sequences: RebuiltSequence[];
}

export interface VgpuJournal {
  readonly dir: string;
  vgpus(): JournalVgpu[];
  vgpu(id: string): JournalVgpu | undefined;
  gpu(bdf: string): JournalGpu | undefined;
  /** Write (create or replace) a vGPU record durably; resolves once it is on disk. */
  putVgpu(record: JournalVgpu): Promise<void>;
  removeVgpu(id: string): Promise<void>;
  putGpu(record: JournalGpu): Promise<void>;
  /**
   * Reserve `count` numbers of a sequence durably; resolves with the first. Numbers are never handed out twice.
   * `atLeast` moves the sequence up first (the caller knows numbers in use the journal cannot decode).
   */
  reserve(seq: JournalSequence, count: number, opts?: { atLeast?: number }): Promise<number>;
  /** Files found unusable at open (damaged or unsafe), in file-name order. */
  damaged(): JournalDamage[];
  /** Sequences open() had to rebuild. */
  rebuiltSequences(): RebuiltSequence[];
  /** Move a file out of the journal into `damaged/` (kept for a human; never read again). */
  setAside(file: string): Promise<void>;
  quarantined(): JournalQuarantine[];
  putQuarantine(q: JournalQuarantine): Promise<void>;
  removeQuarantine(gpu: string, vf: number): Promise<void>;
  /** The last reconcile (shown by `/v1/status`). */
  noteReconcile(report: ReconcileReport): void;
  lastReconcile(): ReconcileReport | undefined;
}
