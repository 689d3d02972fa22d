/**
 * The vGPU manager of one physical GPU: its bring-up (docs/reference/create-order.md M3–M5), its installed vGPU
 * types, the type policy and the per-VF admin ABI. Chip-neutral: everything it knows about the GPU comes through the
 * PhysicalGpu contract (HAL config, Firmware RM controls, FramebufferMemory).
 *
 * Bring-up, each step named in the PgpuInitError a failure throws:
 *   alloc-client       the manager's own RM client (M3)
 *   vmmu-segment-size  RM control GPU_GET_VMMU_SEGMENT_SIZE (M4a)
 *   ecc-status         RM control GPU_QUERY_ECC_STATUS, ECC on = units[0].enabled (M4b)
 *   hardware-config    engine bitmap, channel count, FB total from the HAL config (M4c/d)
 *   firmware-version   RM control GSP_GET_FEATURES → firmwareVersion (M5)
 *   load-metadata      read `<metadataDir>/vgpu-<version>.bin`, parse, pick this PF's blob (M5)
 *   upload-types       send the blob's RM control payload unchanged on the manager's client (M5)
 *   fb-region          find the guest-FB region in the free FB
 * A failure frees the client (the only resource held) before throwing, so the GPU is left as it was found.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorCode, VgpuError } from '../contracts/exceptions.js';
import type { RmClient } from '../contracts/firmware.js';
import type { PhysicalGpu } from '../contracts/hal.js';
import type { Logger } from '../contracts/logger.js';
import type { ChannelRange } from '../contracts/channels.js';
import type { FbRange } from '../contracts/memory.js';
import {
  RmControl, decodeEccStatus, decodeGspFeatures, decodeVmmuSegmentSize, encodeEccStatus, encodeGspFeatures,
  encodeVmmuSegmentSize,
} from '../firmware-abi/rm-controls.js';
import type { MetadataBlob, MetadataFile, VgpuTypeRecord } from '../metadata/metadata-file.js';
import { metadataFileName } from '../metadata/metadata-format.js';
import { typesFor } from '../metadata/metadata-reader.js';
import { parseMetadataShared } from '../metadata/shared-metadata.js';
import { chidRoom, chidsPerVgpu } from './chid-room.js';
import type { Placement, PlacementStrategy } from './fb-placement.js';
import { guestFbBytes, segmentsFor, typeUsable } from './fb-size.js';
import { FB_PAGE, heapRoom } from './heap-room.js';
import { belowRegionBytes, regionIn } from './region-budget.js';
import { PgpuInitError, type PgpuInitStep } from './pgpu-init-error.js';
import { MAX_VGPUS_PER_PGPU, TypePolicy, type TypeSelection, type VgpuPolicy } from './type-policy.js';
import { VfTypeAbi } from './vf-type-abi.js';

export interface PgpuManagerOptions {
  gpu: PhysicalGpu;
  logger: Logger;
  /** Folder holding `vgpu-<GSP version>.bin` (the kernel's /lib/firmware/nvidia). */
  metadataDir: string;
  policy?: VgpuPolicy;
  strategy?: PlacementStrategy;
  rpcTimeoutMs?: number;
  /** File reader (tests substitute one); default fs.readFile. */
  readFile?: (path: string) => Promise<Uint8Array>;
}

/** The FB region guest slices are placed in: segment `i` of it is at `base + i × segmentSize`. */
export interface GuestFbRegion {
  base: bigint;
  slots: number;
  segmentSize: bigint;
}

export class PgpuManager {
  readonly gpu: PhysicalGpu;
  private client_: RmClient;
  readonly vmmuSegmentSize: bigint;
  readonly eccEnabled: boolean;
  readonly engineBitmap: Uint8Array;
  readonly channelCount: number;
  readonly fbTotal: bigint;
  readonly firmwareVersion: string;
  readonly region: GuestFbRegion;
  readonly policy: TypePolicy;
  readonly abi: VfTypeAbi;
  private metadataFile: MetadataFile;
  private readonly logger: Logger;
  private readonly rpcOpts: { timeoutMs?: number };
  private readonly openVfs = new Set<number>();
  private closed = false;
  /** The heap each VF's selection holds (reserveHeap), to tell promised heaps from reserved ones. */
  private readonly heaps = new Map<number, { range: FbRange; selection: TypeSelection }>();
  /** The CHID run each VF's selection holds (allocChids), to tell owed runs from allocated ones. */
  private readonly chidRuns = new Map<number, { range: ChannelRange; selection: TypeSelection }>();
  /** FB ranges that existed before the manager came up (not ours: never counted as scratch in use). */
  private readonly foreignRanges: ReadonlySet<number>;
  /** Scratch pages set aside below the region besides the heaps (one scrub semaphore per vGPU at most at once). */
  readonly scratchPages: number;

  private constructor(init: {
    gpu: PhysicalGpu; client: RmClient; vmmuSegmentSize: bigint; eccEnabled: boolean; engineBitmap: Uint8Array;
    channelCount: number; fbTotal: bigint; firmwareVersion: string; metadata: MetadataFile; policy: TypePolicy;
    region: GuestFbRegion; logger: Logger; rpcOpts: { timeoutMs?: number }; scratchPages: number;
  }) {
    this.gpu = init.gpu;
    this.client_ = init.client;
    this.vmmuSegmentSize = init.vmmuSegmentSize;
    this.eccEnabled = init.eccEnabled;
    this.engineBitmap = init.engineBitmap;
    this.channelCount = init.channelCount;
    this.fbTotal = init.fbTotal;
    this.firmwareVersion = init.firmwareVersion;
    this.metadataFile = init.metadata;
    this.policy = init.policy;
    this.region = init.region;
    this.logger = init.logger;
    this.rpcOpts = init.rpcOpts;
    this.scratchPages = init.scratchPages;
    this.foreignRanges = new Set(init.gpu.memory.list().map((r) => r.id));
    // The policy only asks "room for one more?": counting stops at the first (a create selects through it).
    this.policy.useHeapRoom((t) => this.heapRoomFor(t, { atMost: 1 }));
    this.policy.useChidRoom((t) => this.chidRoomFor(t, { atMost: 1 }));
    this.abi = new VfTypeAbi(() => this.policy, {
      isVfOpen: (vf) => this.openVfs.has(vf),
      vfCount: () => this.gpu.vfs().length,
    });
  }

  /** Bring the manager up (steps above). Throws PgpuInitError naming the step; nothing is left allocated. */
  static async create(opts: PgpuManagerOptions): Promise<PgpuManager> {
    const { gpu } = opts;
    const log = opts.logger.child({ gpu: gpu.bdf });
    const rpcOpts = opts.rpcTimeoutMs !== undefined ? { timeoutMs: opts.rpcTimeoutMs } : {};
    const fw = gpu.firmware;
    let client: RmClient | undefined;
    let step: PgpuInitStep = 'alloc-client';
    const begin = (s: PgpuInitStep): void => { step = s; log.debug('pgpu init step', { step: s }); };
    try {
      begin('alloc-client');
      client = await fw.allocClient(rpcOpts);
      const c = client;

      begin('vmmu-segment-size');
      const seg = decodeVmmuSegmentSize(await fw.control(c, RmControl.GPU_GET_VMMU_SEGMENT_SIZE, encodeVmmuSegmentSize(0n), rpcOpts));

      begin('ecc-status');
      const ecc = decodeEccStatus(await fw.control(c, RmControl.GPU_QUERY_ECC_STATUS, encodeEccStatus({}), rpcOpts));
      const eccEnabled = ecc.units[0]?.enabled === true;

      begin('hardware-config');
      const cfg = gpu.config;
      if (cfg.channelCount <= 0 || cfg.fbBytes <= 0n) {
        throw new VgpuError(ErrorCode.UnsupportedDevice, `HAL reports ${cfg.channelCount} vGPU channels and ${cfg.fbBytes} bytes of FB`, {
          hint: 'the HAL must report the reserved CHID pool and the FB size',
        });
      }
      // The manager keeps its own copy, padded to 8 bytes as the upstream manager allocates it (M4c).
      const engineBitmap = new Uint8Array(Math.ceil(cfg.engineBitmap.byteLength / 8) * 8);
      engineBitmap.set(cfg.engineBitmap);

      begin('firmware-version');
      const features = decodeGspFeatures(await fw.control(c, RmControl.GSP_GET_FEATURES, encodeGspFeatures({}), rpcOpts));
      if (features.firmwareVersion === '') {
        throw new VgpuError(ErrorCode.FirmwareRpc, 'GSP_GET_FEATURES returned an empty firmware version', {
          hint: 'the firmware does not report its build; vGPU needs GSP 570.144 or newer',
        });
      }

      begin('load-metadata');
      const path = join(opts.metadataDir, metadataFileName(features.firmwareVersion));
      let bytes: Uint8Array;
      try {
        bytes = await (opts.readFile ?? readFile)(path);
      } catch (e) {
        throw new VgpuError(ErrorCode.Metadata, `cannot read metadata file ${path}: ${(e as Error).message}`, {
          hint: `install the vGPU metadata for GSP ${features.firmwareVersion} as ${path}`, details: { path }, cause: e,
        });
      }
      const metadata = parseMetadataShared(bytes, { expectedGspVersion: features.firmwareVersion, pfDeviceId: cfg.pci.deviceId });
      const blob = blobFor(metadata, cfg.pci.deviceId);
      const types = typesFor(metadata, cfg.pci.deviceId);

      begin('upload-types');
      await fw.control(c, blob.rmctrlCmd, blob.rmctrlPayload, rpcOpts);

      begin('fb-region');
      const fbCtx = { eccEnabled, totalFb: cfg.fbBytes, segmentSize: seg };
      // Below the region: the heaps of the largest homogeneous fill, plus a page per vGPU for the short-lived
      // scratch a scrub takes (its semaphore), so a scrub never finds that room eaten by heaps.
      const scratchPages = Math.min(cfg.totalVfs, MAX_VGPUS_PER_PGPU);
      const region = findRegion(gpu.memory.list(), gpu.memory.totalBytes, seg, belowRegionBytes(types, { eccEnabled, scratchPages }));
      const policy = new TypePolicy({
        policy: opts.policy ?? 'homogeneous', types, fb: fbCtx, maxVgpus: cfg.totalVfs, maxRegionSlots: region.slots,
        ...(opts.strategy !== undefined ? { strategy: opts.strategy } : {}),
      });
      // The policy sizes the region from the type table; place it at the top of the chosen gap so the heaps the
      // first-fit FB allocator hands out from the bottom never land inside it.
      const placed: GuestFbRegion = { base: region.top - BigInt(policy.regionSlots) * seg, slots: policy.regionSlots, segmentSize: seg };
      const short = types.filter((t) => typeUsable(t, fbCtx) && t.maxInstance * segmentsFor(guestFbBytes(t, fbCtx), seg) > policy.regionSlots);
      if (short.length > 0) {
        log.warn('free FB is smaller than the type table promises; these types cannot reach max_instance', { types: short.map((t) => t.id) });
      }

      const mgr = new PgpuManager({
        gpu, client: c, vmmuSegmentSize: seg, eccEnabled, engineBitmap, channelCount: cfg.channelCount, fbTotal: cfg.fbBytes,
        firmwareVersion: features.firmwareVersion, metadata, policy, region: placed, logger: log, rpcOpts, scratchPages,
      });
      log.info('vGPU manager ready', {
        firmware: features.firmwareVersion, vmmuSegmentSize: seg.toString(), eccEnabled, types: types.length,
        policy: policy.policy, regionSlots: placed.slots,
      });
      return mgr;
    } catch (error) {
      if (client !== undefined) {
        try {
          await fw.freeClient(client, rpcOpts);
        } catch (freeError) {
          log.error('freeing the manager RM client after a failed init failed too', { error: freeError });
        }
      }
      const e = new PgpuInitError(gpu.bdf, step, error);
      log.error('vGPU manager init failed', { step, error });
      throw e;
    }
  }

  get metadata(): MetadataFile {
    return this.metadataFile;
  }

  /** The manager's own RM client (M3); a new one after each GPU reset. */
  get client(): RmClient {
    return this.client_;
  }

  /**
   * After a GPU reset the firmware is a fresh GSP-RM: the manager's client and the vGPU types it uploaded are gone
   * with the old one. Allocate a new client (with `hClient`, journalled before, when given), check the firmware is
   * the build the types were loaded for, and upload the same types again. Everything host-side (policy, VF type
   * selections, the guest-FB region) is kept: the device is the same board with the same FB. Nothing is left
   * allocated on failure.
   */
  async rebindAfterReset(opts: { hClient?: number; timeoutMs?: number } = {}): Promise<void> {
    this.assertOpen();
    const fw = this.gpu.firmware;
    const rpc = opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : this.rpcOpts;
    const client = await fw.allocClient({ ...rpc, ...(opts.hClient !== undefined ? { hClient: opts.hClient } : {}) });
    try {
      const features = decodeGspFeatures(await fw.control(client, RmControl.GSP_GET_FEATURES, encodeGspFeatures({}), rpc));
      if (features.firmwareVersion !== this.firmwareVersion) {
        throw new VgpuError(ErrorCode.FirmwareRpc, `after the reset ${this.gpu.bdf} runs GSP ${features.firmwareVersion}, not ${this.firmwareVersion} its types were loaded for`, {
          hint: 'restart the daemon so it loads the metadata of the new firmware',
        });
      }
      const blob = blobFor(this.metadataFile, this.gpu.config.pci.deviceId);
      await fw.control(client, blob.rmctrlCmd, blob.rmctrlPayload, rpc);
    } catch (error) {
      await fw.freeClient(client, rpc).catch(() => undefined);
      throw error;
    }
    this.client_ = client;
    this.logger.info('vGPU manager re-bound after a GPU reset', { hClient: client.hClient, types: this.policy.types.length });
  }

  /** Installed vGPU types, in metadata order. */
  installedTypes(): readonly VgpuTypeRecord[] {
    return this.policy.types;
  }

  /** Switch homogeneous/heterogeneous; EBUSY while any VF has a type. */
  setPolicy(policy: VgpuPolicy): void {
    this.policy.setPolicy(policy);
    this.logger.info('vGPU type policy changed', { policy });
  }

  /** FB offset of a placement's first segment (for `memory.reserve({ at, align: segmentSize })`). */
  placementOffset(p: Placement): bigint {
    return this.region.base + BigInt(p.id) * this.region.segmentSize;
  }

  /** The selection of a VF (type, FB bytes, placement), if it has one. */
  selectionOf(vf: number): TypeSelection | undefined {
    return this.policy.selectionOf(vf);
  }

  /**
   * How many more management heaps of `type` fit below the guest-FB region now: the FB allocator's free gaps there,
   * less the heaps promised to selected VFs that hold none yet (a selection reserves its heap room as it reserves
   * its guest placement) and the scratch pages not in use. The one count behind `creatable`, `types` and the
   * create path's heap step (reserveHeap), so what is listed as available really gets a heap.
   */
  heapRoomFor(type: Pick<VgpuTypeRecord, 'gspHeapSize'>, opts: { exceptVf?: number; atMost?: number } = {}): number {
    const ranges = this.gpu.memory.list();
    return heapRoom({
      ranges, below: this.region.base, bytes: type.gspHeapSize,
      pending: this.pendingHeaps(ranges, opts.exceptVf), keepFree: this.owedScratch(ranges),
      ...(opts.atMost !== undefined ? { atMost: opts.atMost } : {}),
    });
  }

  /**
   * Reserve the management heap of VF `vf`'s vGPU below the guest-FB region (a heap placed first-fit could land on a
   * guest placement a VF has selected but no create has reserved yet). With `at` (re-attach after a restart) the
   * heap is re-taken there. Throws VGPU_ENOSPC, reserving nothing, when heapRoomFor says it does not fit.
   */
  reserveHeap(req: { vf: number; size: bigint; owner: string; at?: bigint }): FbRange {
    const selection = this.policy.selectionOf(req.vf);
    if (req.at === undefined && this.heapRoomFor({ gspHeapSize: req.size }, { exceptVf: req.vf, atMost: 1 }) < 1) {
      const s = this.gpu.memory.stats();
      throw new VgpuError(ErrorCode.NoSpace, `no room for a ${req.size}-byte management heap below the guest-FB region of ${this.gpu.bdf}`, {
        hint: 'the heaps of the vGPUs already there (or selected) fill the room; destroy or deselect one, or choose a type with a smaller heap',
        details: { vf: req.vf, size: String(req.size), below: String(this.region.base), free: String(s.free) },
      });
    }
    const range = this.gpu.memory.reserve({
      size: req.size, owner: req.owner, label: 'mgmt-heap', ...(req.at !== undefined ? { at: req.at } : { below: this.region.base }),
    });
    if (selection !== undefined) this.heaps.set(req.vf, { range, selection });
    return range;
  }

  /** CHIDs one vGPU of `type` gets. */
  chidsFor(type: Pick<VgpuTypeRecord, 'maxInstance'>): number {
    return chidsPerVgpu(this.channelCount, type.maxInstance);
  }

  /**
   * How many more CHID runs of `type`'s size the pool hands out now, less the runs owed to selected VFs that hold
   * none yet (a selection reserves its CHID room as it reserves its heap room). The count behind `creatable`,
   * `types` and the create path's refusal, so a listed type really gets its CHIDs.
   */
  chidRoomFor(type: Pick<VgpuTypeRecord, 'maxInstance'>, opts: { exceptVf?: number; atMost?: number } = {}): number {
    const ranges = this.gpu.channels.list();
    return chidRoom({
      total: this.gpu.channels.total, ranges, count: this.chidsFor(type), pending: this.pendingChids(ranges, opts.exceptVf),
      ...(opts.atMost !== undefined ? { atMost: opts.atMost } : {}),
    });
  }

  /** Allocate VF `vf`'s CHID run (at `at` when re-taking a journalled one) and remember it against its selection. */
  allocChids(req: { vf: number; count: number; owner: string; at?: number }): ChannelRange {
    const range = this.gpu.channels.alloc(req.count, req.owner, req.at !== undefined ? { at: req.at } : {});
    const selection = this.policy.selectionOf(req.vf);
    if (selection !== undefined) this.chidRuns.set(req.vf, { range, selection });
    return range;
  }

  /** The lifecycle marks a VF open (VFIO device opened) / closed; an open VF's type cannot change (EBUSY). */
  setVfOpen(vf: number, open: boolean): void {
    if (open) this.openVfs.add(vf);
    else this.openVfs.delete(vf);
  }

  /**
   * Replace the installed types with a new metadata file. Every selected (or running) vGPU's type must keep its
   * id, FB size and heap size, else the reload is refused naming the type. Order: parse and check (pure) → upload
   * the new blob to GSP → swap. Selections are paused (EBUSY) meanwhile; any failure leaves the old table.
   */
  async reloadMetadata(bytes: Uint8Array): Promise<void> {
    this.assertOpen();
    const unfreeze = this.policy.freeze('metadata reload');
    try {
      const devId = this.gpu.config.pci.deviceId;
      const file = parseMetadataShared(bytes, { expectedGspVersion: this.firmwareVersion, pfDeviceId: devId });
      const blob = blobFor(file, devId);
      const types = typesFor(file, devId);
      const why = this.policy.checkReplacement(types);
      if (why !== null) {
        throw new VgpuError(ErrorCode.Busy, `metadata reload refused: ${why}`, {
          hint: 'destroy and deselect the vGPUs of that type first, or load metadata that keeps the type unchanged',
        });
      }
      await this.gpu.firmware.control(this.client_, blob.rmctrlCmd, blob.rmctrlPayload, this.rpcOpts);
      this.policy.replaceTypes(types);
      this.metadataFile = file;
      this.logger.info('vGPU metadata reloaded', { types: types.length });
    } finally {
      unfreeze();
    }
  }

  /** Release the manager (its RM client). Refused while any VF has a type: those vGPUs depend on the types. */
  async close(): Promise<void> {
    if (this.closed) return;
    const n = this.policy.selections().length;
    if (n > 0) {
      throw new VgpuError(ErrorCode.Busy, `cannot release the vGPU manager of ${this.gpu.bdf}: ${n} VF(s) have a type selected`, {
        hint: 'destroy the vGPUs and deselect every VF first',
      });
    }
    this.closed = true;
    await this.gpu.firmware.freeClient(this.client_, this.rpcOpts);
  }

  /** Heaps promised to selected VFs that hold none yet (except `exceptVf`'s own). */
  private pendingHeaps(live: readonly FbRange[], exceptVf: number | undefined): bigint[] {
    const liveIds = new Set(live.map((r) => r.id));
    const pending: bigint[] = [];
    for (const sel of this.policy.selections()) {
      if (sel.vf === exceptVf) continue;
      const h = this.heaps.get(sel.vf);
      // A heap counts as held only while it is live and belongs to this very selection (a re-selection is new).
      if (h !== undefined && h.selection === sel && liveIds.has(h.range.id)) continue;
      if (h !== undefined && !liveIds.has(h.range.id)) this.heaps.delete(sel.vf);
      pending.push(sel.type.gspHeapSize);
    }
    return pending;
  }

  /** CHID runs owed to selected VFs that hold none yet (except `exceptVf`'s own). */
  private pendingChids(live: readonly ChannelRange[], exceptVf: number | undefined): number[] {
    const isLive = (r: ChannelRange): boolean => live.some((l) => l.offset === r.offset && l.count === r.count && l.owner === r.owner);
    const pending: number[] = [];
    for (const sel of this.policy.selections()) {
      if (sel.vf === exceptVf) continue;
      const c = this.chidRuns.get(sel.vf);
      if (c !== undefined && c.selection === sel && isLive(c.range)) continue;
      if (c !== undefined && !isLive(c.range)) this.chidRuns.delete(sel.vf);
      pending.push(this.chidsFor(sel.type));
    }
    return pending;
  }

  /** Scratch pages not in use now: anything below the region that is neither a heap nor older than the manager. */
  private owedScratch(live: readonly FbRange[]): readonly bigint[] {
    let inUse = 0;
    for (const r of live) if (r.offset + r.size <= this.region.base && r.label !== 'mgmt-heap' && !this.foreignRanges.has(r.id)) inUse++;
    return scratchList(Math.max(0, this.scratchPages - inUse));
  }

  private assertOpen(): void {
    if (this.closed) {
      throw new VgpuError(ErrorCode.IllegalState, `the vGPU manager of ${this.gpu.bdf} is closed`, { hint: 'create a new manager' });
    }
  }
}

/** `n` scratch pages, one frozen list per count (heapRoomFor asks on every select and create; the lists never change). */
const scratchLists: Array<readonly bigint[]> = [];
function scratchList(n: number): readonly bigint[] {
  return (scratchLists[n] ??= Object.freeze(new Array<bigint>(n).fill(FB_PAGE)));
}

/** The blob for the PF; the reader refuses duplicates, and upstream's "last match wins" is mirrored anyway. */
function blobFor(file: MetadataFile, deviceId: number): MetadataBlob {
  const blob = [...file.blobs].reverse().find((b) => b.deviceId === deviceId);
  if (blob === undefined) typesFor(file, deviceId); // throws the reader's own "no types for this device" error
  return blob!;
}

/**
 * The largest free gap of the FB, less `heapBudget` at its bottom for the management heaps, in whole segments;
 * `top` is the segment-aligned end of that gap. Throws when not even one segment is free.
 */
function findRegion(ranges: readonly FbRange[], total: bigint, seg: bigint, heaps: bigint): { top: bigint; slots: number } {
  const sorted = [...ranges].sort((a, b) => (a.offset < b.offset ? -1 : a.offset > b.offset ? 1 : 0));
  let best = { start: 0n, end: 0n };
  let cursor = 0n;
  const consider = (start: bigint, end: bigint): void => { if (end - start > best.end - best.start) best = { start, end }; };
  for (const r of sorted) {
    if (r.offset > cursor) consider(cursor, r.offset);
    if (r.offset + r.size > cursor) cursor = r.offset + r.size;
  }
  if (total > cursor) consider(cursor, total);
  // The same arithmetic the catalogue build checks its tables with (region-budget.ts).
  const { top, slots } = regionIn(best.start, best.end, seg, heaps);
  if (slots === 0) {
    throw new VgpuError(ErrorCode.NoSpace, `no free FB for guest slices: largest free gap is ${best.end - best.start} bytes`, {
      hint: 'the FB is taken by other allocations; restart the GPU without them',
    });
  }
  return { top, slots };
}
