/**
 * Schema of the YAML type catalogue (metadata/ada.yaml). zod checks each value's shape; `compile-catalog.ts`
 * checks the relations between values (unique ids, series letter, the FB fit).
 */
import { z } from 'zod';

/** Where a number came from; see the header of metadata/ada.yaml and docs/reference/vgpu-types.md. */
export const provenance = z.enum(['rfc-v2-doc', 'rfc-v1-decoded', 'public-observed', 'nvidia-docs', 'inferred', 'assigned-by-vgpud']);

const u32 = z.number().int().min(0).max(0xffffffff);
const resolution = z.string().regex(/^\d{1,5}x\d{1,5}$/, 'expected WIDTHxHEIGHT, e.g. 5120x2880');
const ascii = z.string().regex(/^[\x20-\x7e]+$/, 'expected printable ASCII').max(31, 'at most 31 characters fit the 32-byte field');

/** Display/licensing facts a series gives its types; every type may override them. */
const displayFields = {
  vgpuClass: ascii,
  numHeads: z.number().int().min(0).max(4),
  maxResolution: resolution,
  maxPixels: u32,
  frlConfig: u32,
  cudaEnabled: z.boolean(),
  eccSupported: z.boolean(),
  multiVgpuSupported: z.boolean().default(false),
  /** NVA081_CTRL_VGPU_INFO.license: the license feature string ('' = none). */
  license: z.string().regex(/^[\x20-\x7e]*$/, 'expected printable ASCII').max(127, 'at most 127 characters fit the 128-byte field'),
  frlEnable: z.boolean(),
};

/**
 * BAR1 of a series: a power of two in MiB, or 'profile' — the smallest power of two that maps the whole profile FB
 * (NVIDIA's "large BAR" of the C series; the sizing rule is an inference, see docs/reference/vgpu-types.md).
 */
const bar1Spec = z.union([
  z.number().int().min(1).refine((v) => (v & (v - 1)) === 0, 'BAR1 size must be a power of two'),
  z.literal('profile'),
]);

export const seriesSchema = z.strictObject({
  ...displayFields,
  license: displayFields.license.default(''),
  frlEnable: displayFields.frlEnable.default(true),
  bar1MiB: bar1Spec,
  /** Where each value comes from, in words (URL or repository + path), and what is unverified. */
  source: z.string().min(1),
});

export const typeSchema = z.strictObject({
  id: z.number().int().min(1).max(0xffffffff),
  /** The profile FB is the nominal size in the name: N GiB for "-N<series>" (the build derives it). */
  name: ascii.regex(/-\d+[QBAC]$/, 'expected a name ending in -<GiB><series>, e.g. "NVIDIA L40S-24Q"'),
  heapMiB: z.number().int().min(3, 'the mgmt heap must hold the 0x274000-byte comm buffer'),
  /** Max instances per GPU in NVIDIA's equal-size mode (all vGPUs of the GPU the same size). */
  maxInstance: z.number().int().min(1).max(32),
  /**
   * Max instances per GPU in NVIDIA's mixed-size (heterogeneous) mode: the count of the type's mixed-size placements.
   * The build recomputes it from NVIDIA's placement rules (core/manager/mixed-size-placements.ts) and refuses a
   * table that disagrees, so the number written here is the one the manager enforces.
   */
  maxInstanceMixed: z.number().int().min(1).max(32).optional(),
  bar1MiB: bar1Spec.optional(),
  fbReservationMiB: z.number().int().min(0).default(0),
  vdevSubsystem: z.number().int().min(0).max(0xffff).optional(),
  source: provenance,
  vgpuClass: displayFields.vgpuClass.optional(),
  numHeads: displayFields.numHeads.optional(),
  maxResolution: displayFields.maxResolution.optional(),
  maxPixels: displayFields.maxPixels.optional(),
  frlConfig: displayFields.frlConfig.optional(),
  cudaEnabled: displayFields.cudaEnabled.optional(),
  eccSupported: displayFields.eccSupported.optional(),
  multiVgpuSupported: z.boolean().optional(),
  license: displayFields.license.optional(),
  frlEnable: displayFields.frlEnable.optional(),
});

export const boardSchema = z.strictObject({
  key: z.string().regex(/^[a-z0-9-]+$/),
  name: z.string().min(1),
  deviceId: z.number().int().min(1).max(0xffff),
  /** Physical FB of the board. */
  fbMiB: z.number().int().min(1),
  /** Where the FB size comes from (UNVERIFIED marks a remembered number). */
  fbSource: z.string().min(1),
  /**
   * FB the board leaves for vGPUs (board FB less the host reserve). The build sizes each type's guest FB so that,
   * by the manager's own arithmetic (core/manager/region-budget.ts), maxInstance vGPUs of every type fit in it.
   */
  vgpuFbMiB: z.number().int().min(1),
  /**
   * The board's VMMU segment size (GPU_GET_VMMU_SEGMENT_SIZE): guest FB is placed in whole segments of it. Must
   * match the HAL's chip table (a test checks); one of the five sizes the firmware can answer.
   */
  vmmuSegmentMiB: z.union([z.literal(32), z.literal(64), z.literal(128), z.literal(256), z.literal(512)]),
  /** The public document the type table (names, sizes, max instances) comes from, and what of it is unverified. */
  source: z.string().min(1),
  /** Where the mixed-size maxima (`maxInstanceMixed`) come from, and what of them is unverified. */
  mixedSizeSource: z.string().min(1).optional(),
  types: z.array(typeSchema).min(1).max(64),
});

export const catalogSchema = z.strictObject({
  vgpuMajor: z.number().int().min(0),
  vgpuMinor: z.number().int().min(0),
  gspVersion: ascii,
  series: z.strictObject({ Q: seriesSchema, B: seriesSchema, A: seriesSchema, C: seriesSchema }),
  boards: z.array(boardSchema).min(1),
});

export type Catalog = z.infer<typeof catalogSchema>;
export type CatalogBoard = z.infer<typeof boardSchema>;
export type CatalogType = z.infer<typeof typeSchema>;
