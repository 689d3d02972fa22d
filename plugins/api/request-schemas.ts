/** zod schemas of the control API's request bodies and query strings (strict: an unknown key is an error). */
import { z } from 'zod';
import { BDF_PATTERN } from '../../core/config/config-schema.js';
import { REQUEST_ID_PATTERN } from '../../core/contracts/request-journal.js';
import { LAYOUT_LIMITS } from '../../core/layout/layout-limits.js';
import { VF_ATTRIBUTES, type VfAttribute } from '../../core/contracts/vgpu-service.js';
import type { ValueLimits } from '../../core/validation/bounded-value.js';

/** Largest request body (fastify's bodyLimit): a bigger one is a 413 naming it. */
export const BODY_LIMIT_BYTES = 1024 * 1024;

/**
 * Bounds every JSON body is checked against before its schema runs (a layout sent as an object is then checked
 * against the tighter layout limits too). A string may be as long as the body (layout text).
 */
export const BODY_LIMITS: ValueLimits = {
  ...LAYOUT_LIMITS.value,
  maxDepth: LAYOUT_LIMITS.value.maxDepth + 1,
  maxStringLength: BODY_LIMIT_BYTES,
};

/** Ids in URLs (vGPUs, requests): longer ones are refused by the router with the API's error shape. */
export const MAX_PARAM_LENGTH = 100;

export const requestIdSchema = z.string().regex(REQUEST_ID_PATTERN, 'expected 1–64 letters, digits, ".", "_" or "-"');

export const bdfSchema = z.string().regex(BDF_PATTERN, 'expected a PCI address like "0000:41:00.0"').transform((s) => s.toLowerCase());

/** Boolean query flags: `?force=1`, `?force=true`, `?force` (empty). */
export const flagSchema = z.enum(['', '1', 'true', '0', 'false']).optional().transform((v) => v === '' || v === '1' || v === 'true');

export const gpuParams = z.strictObject({ bdf: bdfSchema });
export const typesQuery = z.strictObject({ all: flagSchema });
export const policyBody = z.strictObject({ policy: z.enum(['homogeneous', 'heterogeneous']) });

export const createBody = z.strictObject({
  gpu: bdfSchema,
  type: z.union([z.string().min(1), z.number().int().nonnegative()]),
  vf: z.number().int().nonnegative().optional(),
  count: z.number().int().min(1).max(32).default(1),
  /** The client's id for this request, so it can ask what became of it (GET /v1/requests/:id). */
  requestId: requestIdSchema.optional(),
});
export const listQuery = z.strictObject({ gpu: bdfSchema.optional() });
export const idParams = z.strictObject({ id: z.string().min(1).max(MAX_PARAM_LENGTH) });
export const requestParams = z.strictObject({ id: z.string().min(1).max(MAX_PARAM_LENGTH) });
export const requestsQuery = z.strictObject({ limit: z.coerce.number().int().min(1).max(1000).optional() });
export const destroyQuery = z.strictObject({ force: flagSchema });
export const logsQuery = z.strictObject({
  lines: z.coerce.number().int().min(1).max(100_000).optional(),
  follow: flagSchema,
});
export const vfParams = z.strictObject({
  bdf: bdfSchema,
  attr: z.enum(VF_ATTRIBUTES as [VfAttribute, ...VfAttribute[]]),
});
/** PUT /v1/gpus/:bdf/sriov: the PF's `sriov_numvfs` (0 disables the VFs). */
export const sriovBody = z.strictObject({ numVfs: z.number().int().min(0).max(0xffff) });
/** POST /v1/adopt: every VF with a type vgpud did not set, those of one GPU, or the listed VFs. */
export const adoptBody = z.strictObject({
  gpu: bdfSchema.optional(),
  vfs: z.array(bdfSchema).min(1).max(256).optional(),
});
export const vfBdfParams = z.strictObject({ bdf: bdfSchema });
export const layoutBody = z.strictObject({
  /** The layout file: YAML/JSON text, or the parsed object. */
  layout: z.union([z.string().min(1), z.record(z.string(), z.unknown())]),
  config: z.string().min(1).max(LAYOUT_LIMITS.value.maxStringLength).optional(),
  dryRun: z.boolean().default(false),
  force: z.boolean().default(false),
  requestId: requestIdSchema.optional(),
});
export const assertBody = layoutBody.omit({ dryRun: true, force: true, requestId: true });
export const eventsQuery = z.strictObject({
  /** Comma-separated bus event names; all streamable events when absent. */
  events: z.string().optional(),
});
