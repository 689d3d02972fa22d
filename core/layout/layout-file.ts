/**
 * Layout files in the format of NVIDIA's vgpu-device-manager (docs/reference/vgpu-device-manager-layouts.md), so
 * NVIDIA's own files load unchanged:
 *
 *   version: v1
 *   vgpu-configs:
 *     default:
 *       - device-filter: "0x26B110DE"      # optional: one PCI id or a list; an entry for other boards is skipped
 *         devices: all                     # or GPU indices [0, 1] as NVIDIA numbers them (or PCI addresses: ours)
 *         vgpu-devices:
 *           RTX6000-Ada-24Q: 2
 *
 * Like NVIDIA's parser (api/spec/v1/spec.go), unknown keys are errors, `version` must be v1, `vgpu-configs` needs at
 * least one config and every config at least one entry, `devices` and `vgpu-devices` are required. Stricter where a
 * silent mistake would hurt: a `device-filter` NVIDIA cannot parse matches nothing there and is an error here, a
 * duplicate key is an error (NVIDIA's YAML reader keeps the last), counts must be whole and not negative. A count
 * of 0 is accepted and means none (NVIDIA refuses it).
 *
 * Every limit of layout-limits.ts is enforced before the YAML library sees the text.
 */
import { isMap, parseDocument, type Document } from 'yaml';
import { z } from 'zod';
import { BDF_PATTERN } from '../config/config-schema.js';
import { ErrorCode, VgpuError } from '../contracts/exceptions.js';
import { checkValueBounds } from '../validation/bounded-value.js';
import { describeIssues } from '../validation/describe-issues.js';
import { PCI_ID_FILTER_PATTERN } from './device-filter.js';
import { LAYOUT_LIMITS, scanLayoutText } from './layout-limits.js';

const L = LAYOUT_LIMITS;
const pciIdString = z.string().regex(PCI_ID_FILTER_PATTERN, 'expected a PCI id like "0x26B110DE" (device 0x26B1, vendor 0x10DE), optionally ":0x<subsystem device><subsystem vendor>"');
const gpuIndex = z.number().int('expected a GPU index (a whole number)').min(0).max(1023);
const gpuAddress = z.string().regex(BDF_PATTERN, 'expected a GPU index like 0 or a PCI address like "0000:41:00.0"');

const entrySchema = z.strictObject({
  // An empty string is no filter, as in NVIDIA's MatchesDeviceFilter.
  'device-filter': z.union([z.literal(''), pciIdString, z.array(pciIdString).max(L.maxSelectors)]).optional(),
  devices: z.union([z.literal('all'), z.array(z.union([gpuIndex, gpuAddress])).max(L.maxSelectors)], {
    error: 'expected "all" or a list of GPU indices (or PCI addresses)',
  }),
  'vgpu-devices': z.record(z.string().min(1), z.number().int('expected a whole number of vGPUs').nonnegative('expected 0 or more vGPUs'))
    .refine((m) => Object.keys(m).length <= L.maxTypesPerEntry, `at most ${L.maxTypesPerEntry} vGPU types per entry`),
});

export const layoutFileSchema = z.strictObject({
  version: z.literal('v1', { error: 'expected "v1" (the only layout version NVIDIA defines)' }),
  'vgpu-configs': z.record(z.string().min(1), z.array(entrySchema).min(1, 'a config needs at least one entry').max(L.maxEntriesPerConfig))
    .refine((m) => Object.keys(m).length >= 1, 'at least one config is required')
    .refine((m) => Object.keys(m).length <= L.maxConfigs, `at most ${L.maxConfigs} configs per file`),
});

export type LayoutFile = z.output<typeof layoutFileSchema>;
export type LayoutEntry = z.output<typeof entrySchema>;

/** Validate an already-parsed layout (a JSON request body's object, or the result of the YAML parse). */
export function validateLayout(obj: unknown): LayoutFile {
  checkValueBounds(obj, L.value, 'layout');
  const r = layoutFileSchema.safeParse(obj);
  if (!r.success) {
    const issues = describeIssues(r.error.issues, obj);
    throw new VgpuError(ErrorCode.InvalidArgument, `invalid layout: ${issues.join('; ')}`, {
      hint: 'fix the named keys; the format is NVIDIA vgpu-device-manager\'s (docs/operations.md, Layouts)', details: { issues },
    });
  }
  return r.data;
}

/** Parse YAML (or JSON) layout text: bounded scan, parse, duplicate-key check, bounds, schema. Synchronous. */
export function parseLayoutText(text: string): LayoutFile {
  scanLayoutText(text);
  // uniqueKeys off: the library's own check is quadratic per map; refuseDuplicateKeys does it linearly.
  const doc = parseDocument(text, { uniqueKeys: false, prettyErrors: true });
  const first = doc.errors[0];
  if (first !== undefined) {
    throw new VgpuError(ErrorCode.InvalidArgument, `layout is not valid YAML: ${first.message}`, {
      hint: 'fix the YAML syntax at the position given', details: { line: first.linePos?.[0]?.line },
    });
  }
  refuseDuplicateKeys(doc, text);
  let obj: unknown;
  try {
    obj = doc.toJS({ maxAliasCount: 64 });
  } catch (cause) {
    throw new VgpuError(ErrorCode.InvalidArgument, `layout cannot be read: ${(cause as Error).message}`, {
      hint: 'avoid YAML aliases that expand the file; write the entries out', cause,
    });
  }
  return validateLayout(obj);
}

/** A key twice in one map is a mistake NVIDIA's reader hides (the last one wins there): refuse it, naming it. */
function refuseDuplicateKeys(doc: Document, text: string): void {
  const stack: unknown[] = [doc.contents];
  while (stack.length > 0) {
    const node = stack.pop();
    if (node === null || typeof node !== 'object') continue;
    if (isMap(node)) {
      const seen = new Set<string>();
      for (const pair of node.items) {
        const k = pair.key as { value?: unknown; range?: [number, number, number] } | null;
        const name = k !== null && typeof k === 'object' && 'value' in k ? String(k.value) : String(k);
        if (seen.has(name)) {
          const line = k?.range !== undefined ? text.slice(0, k.range[0]).split('\n').length : undefined;
          throw new VgpuError(ErrorCode.InvalidArgument, `layout has the key '${name}' twice in one map${line !== undefined ? ` (again at line ${line})` : ''}`, {
            hint: 'remove or rename one of them', details: { key: name, ...(line !== undefined ? { line } : {}) },
          });
        }
        seen.add(name);
        stack.push(pair.value);
      }
      continue;
    }
    const items = (node as { items?: unknown }).items;
    if (Array.isArray(items)) for (const it of items) stack.push(it);
  }
}
