/** zod schemas of the control API's request bodies and query strings (strict: an unknown key is an error). */
import { z } from 'zod';
import { BDF_PATTERN } from '../../core/config/config-schema.js';

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
});
export const listQuery = z.strictObject({ gpu: bdfSchema.optional() });
export const idParams = z.strictObject({ id: z.string().min(1).max(128) });
export const destroyQuery = z.strictObject({ force: flagSchema });
export const logsQuery = z.strictObject({
  lines: z.coerce.number().int().min(1).max(100_000).optional(),
  follow: flagSchema,
});
export const vfParams = z.strictObject({
  bdf: bdfSchema,
  attr: z.enum(['creatable_vgpu_types', 'current_vgpu_type']),
});
export const vfBdfParams = z.strictObject({ bdf: bdfSchema });
export const layoutBody = z.strictObject({
  /** The layout file: YAML/JSON text, or the parsed object. */
  layout: z.union([z.string().min(1), z.record(z.string(), z.unknown())]),
  config: z.string().min(1).optional(),
  dryRun: z.boolean().default(false),
  force: z.boolean().default(false),
});
export const eventsQuery = z.strictObject({
  /** Comma-separated bus event names; all streamable events when absent. */
  events: z.string().optional(),
});
