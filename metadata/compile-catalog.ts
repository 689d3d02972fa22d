/**
 * YAML type catalogue -> MetadataSpec. Validation errors name the YAML key (`boards[2].types[5].heapMiB`) so the
 * author can find the line; the binary checks that follow (writer self-parse) name byte offsets instead.
 */
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { ErrorCode, VgpuError } from '../core/contracts/exceptions.js';
import type { MetadataSpec, VgpuTypeRecord } from '../core/metadata/metadata-file.js';
import { MiB, NV2080_CTRL_CMD_VGPU_MGR_INTERNAL_PGPU_ADD_VGPU_TYPE } from '../core/metadata/metadata-format.js';
import {
  ADD_VGPU_TYPE_PARAMS,
  encodeAddVgpuTypeParams,
  kernelTypeFromInfo,
  nominalProfileBytes,
  VGPU_INFO,
  type VgpuInfoRecord,
  type VgpuSeries,
} from '../core/metadata/vgpu-info-record.js';
import { belowRegionBytes, homogeneousFits, MAX_VGPUS_PER_PGPU, regionIn } from '../core/manager/region-budget.js';
import { mixedSizePlacements, nvidiaGuestFbIs1GiB } from '../core/manager/mixed-size-placements.js';
import { catalogSchema, type Catalog } from './catalog-schema.js';

export interface CompiledBoard {
  readonly key: string;
  readonly name: string;
  readonly deviceId: number;
  readonly fbMiB: number;
  readonly vgpuFbMiB: number;
  /** GSP view of each type (what the RM-control payload carries), in YAML order. */
  readonly infos: readonly VgpuInfoRecord[];
  /** Kernel view of each type (the blob's record array), in YAML order. */
  readonly types: readonly VgpuTypeRecord[];
}

export interface CompiledCatalog {
  readonly spec: MetadataSpec;
  readonly boards: readonly CompiledBoard[];
}

function catalogError(source: string, key: string, problem: string): VgpuError {
  return new VgpuError(ErrorCode.Metadata, `${source}: ${key || '(root)'}: ${problem}`, {
    hint: `fix ${key || 'the file'} in ${source} and run \`npm run metadata:build\` again`,
    details: { source, key },
  });
}

function keyOf(path: ReadonlyArray<PropertyKey>): string {
  let s = '';
  for (const p of path) s += typeof p === 'number' ? `[${p}]` : s ? `.${String(p)}` : String(p);
  return s;
}

/** Compile catalogue text; `source` names the file in error messages. */
export function compileCatalog(text: string, source = 'catalog.yaml'): CompiledCatalog {
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (e) {
    throw catalogError(source, '', `YAML syntax error: ${(e as Error).message}`);
  }
  const parsed = catalogSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw catalogError(source, keyOf(issue.path), issue.message);
  }
  return compileParsed(parsed.data, source);
}

export function loadCatalog(path: string): CompiledCatalog {
  return compileCatalog(readFileSync(path, 'utf8'), path);
}

/**
 * Several catalogues (one per GPU generation: ada.yaml, hopper.yaml, …) as ONE metadata file: the daemon loads a
 * single vgpu-<GSP version>.bin, so the generations' boards go into it side by side. They must name the same vGPU
 * and GSP versions, and no PCI device id may appear twice.
 */
export function loadCatalogs(paths: readonly string[]): CompiledCatalog {
  const parts = paths.map((p) => ({ path: p, cat: loadCatalog(p) }));
  const first = parts[0];
  if (first === undefined) throw catalogError('(none)', '', 'no catalogue to compile');
  const seen = new Map<number, string>();
  for (const { path, cat } of parts) {
    for (const k of ['vgpuMajor', 'vgpuMinor', 'gspVersion'] as const) {
      if (cat.spec[k] !== first.cat.spec[k]) {
        throw catalogError(path, k, `${String(cat.spec[k])} differs from ${String(first.cat.spec[k])} in ${first.path}; one metadata file holds one version`);
      }
    }
    cat.boards.forEach((b, bi) => {
      const other = seen.get(b.deviceId);
      if (other !== undefined) throw catalogError(path, `boards[${bi}].deviceId`, `device 0x${b.deviceId.toString(16)} is already described in ${other}`);
      seen.set(b.deviceId, path);
    });
  }
  if (parts.length === 1) return first.cat;
  return Object.freeze({
    spec: { ...first.cat.spec, blobs: parts.flatMap((x) => x.cat.spec.blobs) },
    boards: Object.freeze(parts.flatMap((x) => x.cat.boards)),
  });
}

/** The nominal FB of a type name in MiB: N GiB for "…-N<series>" (the schema has checked the suffix). */
function nominalProfileMiB(name: string): number {
  return Number(nominalProfileBytes(name)! / MiB);
}

/** Smallest power of two ≥ n. */
function pow2AtLeast(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}

function compileParsed(cat: Catalog, source: string): CompiledCatalog {
  const boards: CompiledBoard[] = [];
  const devices = new Map<number, string>();
  cat.boards.forEach((b, bi) => {
    const bk = `boards[${bi}]`;
    const other = devices.get(b.deviceId);
    if (other !== undefined) throw catalogError(source, `${bk}.deviceId`, `device 0x${b.deviceId.toString(16)} is already used by ${other}`);
    devices.set(b.deviceId, bk);
    if (b.vgpuFbMiB > b.fbMiB) throw catalogError(source, `${bk}.vgpuFbMiB`, `${b.vgpuFbMiB} exceeds the board's fbMiB ${b.fbMiB}`);
    const ids = new Set<number>();
    const names = new Set<string>();
    b.types.forEach((t, ti) => {
      const tk = `${bk}.types[${ti}]`;
      if (ids.has(t.id)) throw catalogError(source, `${tk}.id`, `duplicate type id ${t.id} on board ${b.key}`);
      if (names.has(t.name)) throw catalogError(source, `${tk}.name`, `duplicate type name "${t.name}" on board ${b.key}`);
      ids.add(t.id);
      names.add(t.name);
      if (nominalProfileMiB(t.name) > b.fbMiB) {
        throw catalogError(source, `${tk}.name`, `"${t.name}" names ${nominalProfileMiB(t.name) / 1024} GiB, more than the board's ${b.fbMiB} MiB`);
      }
    });
    const guestMiB = guestFbPlan(b);
    guestMiB.forEach((g, ti) => {
      if (g > 0) return;
      const t = b.types[ti]!;
      throw catalogError(source, `${bk}.types[${ti}].maxInstance`,
        `"${t.name}" leaves no guest FB: ${t.maxInstance} instances with a ${t.heapMiB} MiB heap each do not fit vgpuFbMiB ${b.vgpuFbMiB} ` +
        `in whole ${b.vmmuSegmentMiB} MiB segments; lower maxInstance or heapMiB, or raise vgpuFbMiB`);
    });
    const infos = b.types.map((t, ti): VgpuInfoRecord => {
      const series = t.name.slice(-1) as VgpuSeries;
      const d = cat.series[series];
      const [resX, resY] = (t.maxResolution ?? d.maxResolution).split('x').map(Number) as [number, number];
      const profileMiB = nominalProfileMiB(t.name);
      const bar1 = t.bar1MiB ?? d.bar1MiB;
      return Object.freeze({
        id: t.id,
        name: t.name,
        vgpuClass: t.vgpuClass ?? d.vgpuClass,
        license: t.license ?? d.license,
        maxInstance: t.maxInstance,
        numHeads: t.numHeads ?? d.numHeads,
        maxResolutionX: resX,
        maxResolutionY: resY,
        maxPixels: t.maxPixels ?? d.maxPixels,
        frlConfig: t.frlConfig ?? d.frlConfig,
        cudaEnabled: t.cudaEnabled ?? d.cudaEnabled,
        eccSupported: t.eccSupported ?? d.eccSupported,
        multiVgpuSupported: t.multiVgpuSupported ?? d.multiVgpuSupported,
        vdevId: ((b.deviceId << 16) | (t.vdevSubsystem ?? (t.id & 0xffff))) >>> 0,
        pdevId: b.deviceId,
        profileSize: BigInt(profileMiB) * MiB,
        fbLength: BigInt(guestMiB[ti]!) * MiB,
        gspHeapSize: BigInt(t.heapMiB) * MiB,
        fbReservation: BigInt(t.fbReservationMiB) * MiB,
        bar1LengthMiB: bar1 === 'profile' ? pow2AtLeast(profileMiB) : bar1,
        frlEnable: t.frlEnable ?? d.frlEnable,
        series,
      });
    });
    checkHomogeneousFit(source, bk, b.fbMiB, b.vgpuFbMiB, b.vmmuSegmentMiB, b.types.map((t) => t.fbReservationMiB), infos);
    checkMixedSizeMaxima(source, bk, b, infos);
    boards.push(Object.freeze({
      key: b.key,
      name: b.name,
      deviceId: b.deviceId,
      fbMiB: b.fbMiB,
      vgpuFbMiB: b.vgpuFbMiB,
      infos: Object.freeze(infos),
      types: Object.freeze(infos.map(kernelTypeFromInfo)),
    }));
  });
  const spec: MetadataSpec = {
    vgpuMajor: cat.vgpuMajor,
    vgpuMinor: cat.vgpuMinor,
    gspVersion: cat.gspVersion,
    blobs: boards.map((b) => ({
      deviceId: b.deviceId,
      rmctrlCmd: NV2080_CTRL_CMD_VGPU_MGR_INTERNAL_PGPU_ADD_VGPU_TYPE,
      rmctrlPayload: encodeAddVgpuTypeParams({ discardVgpuTypes: true, infos: b.infos }),
      rmctrlVgpuInfoOffset: BigInt(ADD_VGPU_TYPE_PARAMS.vgpuInfo),
      rmctrlVgpuInfoSize: BigInt(b.infos.length * VGPU_INFO.bytes),
      types: b.types,
    })),
  };
  return Object.freeze({ spec, boards: Object.freeze(boards) });
}

/**
 * Guest FB (MiB) of each type of a board. A type's profile is the nominal size of its name; inside it the manager
 * places the management heap and the FB reservation, so the guest gets the rest, in whole VMMU segments — the
 * shape of the RFC's ECC formula, ALIGN_DOWN(min(fb_length, ALIGN(total_fb, seg)/max_instance − fb_reservation −
 * gsp_heap_size), seg), with the profile as fb_length. Where the board cannot hold max_instance such slices next to
 * the heaps (the profiles add up to the whole board, the host keeps some FB back), the slice shrinks further to
 * what the manager's own region arithmetic (core/manager/region-budget.ts) gives each of max_instance vGPUs, so an
 * empty GPU still takes max_instance of every type.
 */
function guestFbPlan(b: Catalog['boards'][number]): number[] {
  const seg = b.vmmuSegmentMiB;
  const heapTypes = b.types.map((t) => ({ maxInstance: t.maxInstance, gspHeapSize: BigInt(t.heapMiB) * MiB, eccSupported: true }));
  const below = belowRegionBytes(heapTypes, { eccEnabled: false, scratchPages: MAX_VGPUS_PER_PGPU });
  const { slots } = regionIn(0n, BigInt(b.vgpuFbMiB) * MiB, BigInt(seg) * MiB, below);
  return b.types.map((t) => {
    const inProfile = Math.floor((nominalProfileMiB(t.name) - t.heapMiB - t.fbReservationMiB) / seg) * seg;
    const resSegs = Math.ceil((t.fbReservationMiB * t.maxInstance) / seg);
    const perInstance = Math.floor((slots - resSegs) / t.maxInstance) * seg;
    return Math.min(inProfile, perInstance);
  });
}

/**
 * An empty GPU must take maxInstance vGPUs of every type (homogeneous policy), by the arithmetic the manager uses
 * (core/manager/region-budget.ts): guest FB in whole VMMU segments of the board, below them the management-heap room
 * (the table's largest maxInstance x heap plus a scratch page per possible vGPU, rounded up to a segment), all in the
 * FB the board leaves for vGPUs (`vgpuFbMiB`: board FB less the host reserve). ECC off is the worst case checked:
 * with ECC on a type's guest FB only shrinks and the non-ECC types drop out of the heap room.
 * An fbReservationMiB (0 in every table so far) is FB upstream sets aside per vGPU; the manager does not place it
 * yet, so it is counted on top, keeping a table valid for when it does.
 */
function checkHomogeneousFit(
  source: string, bk: string, fbMiB: number, vgpuFbMiB: number, segMiB: number, reservationsMiB: readonly number[],
  infos: readonly VgpuInfoRecord[],
): void {
  const types = infos.map(kernelTypeFromInfo);
  const seg = BigInt(segMiB) * MiB;
  const fits = homogeneousFits({
    types, fb: { eccEnabled: false, totalFb: BigInt(fbMiB) * MiB, segmentSize: seg },
    freeBytes: BigInt(vgpuFbMiB) * MiB, scratchPages: MAX_VGPUS_PER_PGPU,
  });
  fits.forEach((f, ti) => {
    const resSegs = Math.ceil((reservationsMiB[ti]! * f.type.maxInstance) / segMiB);
    if (f.slotsNeeded + resSegs <= f.regionSlots) return;
    const t = f.type;
    const below = Number(f.belowBytes / MiB);
    throw catalogError(source, `${bk}.types[${ti}].maxInstance`,
      `${t.maxInstance} x ${f.slotsEach} segments of ${segMiB} MiB (guest fb ${Number(t.fbLength / MiB)} MiB rounded up to whole segments)` +
      (resSegs > 0 ? ` + ${resSegs} segments of reservation` : '') +
      ` exceed the ${f.regionSlots} segments left of vgpuFbMiB ${vgpuFbMiB} once ~${below} MiB of management heaps and scratch ` +
      `pages are set aside below them; lower maxInstance or heapMiB, or raise vgpuFbMiB`);
  });
}

/**
 * A type's `maxInstanceMixed` must be what NVIDIA's mixed-size placement rules give it on this board (the count of
 * its placements, core/manager/mixed-size-placements.ts), computed as the manager computes it at run time — so the
 * number in the YAML is the limit the heterogeneous policy enforces, not a second opinion.
 */
function checkMixedSizeMaxima(source: string, bk: string, b: Catalog['boards'][number], infos: readonly VgpuInfoRecord[]): void {
  const seg = BigInt(b.vmmuSegmentMiB) * MiB;
  const table = mixedSizePlacements(infos.map((i) => ({
    id: i.id, profileGiB: Number(i.profileSize >> 30n), maxInstance: i.maxInstance,
    guestFbIs1GiB: nvidiaGuestFbIs1GiB({ ...i, profileBytes: i.profileSize }, BigInt(b.fbMiB) * MiB, seg),
  })));
  b.types.forEach((t, ti) => {
    if (t.maxInstanceMixed === undefined) return;
    const key = `${bk}.types[${ti}].maxInstanceMixed`;
    const entry = table?.byType.get(t.id);
    if (entry === undefined) {
      throw catalogError(source, key, `"${t.name}" has no mixed-size placements: the board's table has no type with maxInstance 1 to size the placement region; drop maxInstanceMixed`);
    }
    if (entry.ids.length !== t.maxInstanceMixed) {
      throw catalogError(source, key,
        `"${t.name}" gets ${entry.ids.length} mixed-size placements (GiB slots ${entry.ids.join(', ')}), not ${t.maxInstanceMixed}, by NVIDIA's placement rules; write ${entry.ids.length}`);
    }
  });
}
