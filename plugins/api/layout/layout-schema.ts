/**
 * Named layouts in the style of NVIDIA's vgpu-device-manager:
 *
 *   version: v1
 *   vgpu-configs:
 *     two-24q:
 *       - devices: all            # or a list of PCI addresses
 *         vgpu-devices: { RTX6000-Ada-24Q: 2 }
 *
 * Strict like the original (unknown keys are errors), and stricter on counts (negative or fractional counts are
 * refused, as PR #195 of vgpu-device-manager asked for).
 */
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { BDF_PATTERN } from '../../../core/config/config-schema.js';
import { ErrorCode, VgpuError } from '../../../core/contracts/exceptions.js';
import { invalidRequest } from '../http-errors.js';

const entrySchema = z.strictObject({
  devices: z.union([z.literal('all'), z.array(z.string().regex(BDF_PATTERN, 'expected a PCI address like "0000:41:00.0"')).min(1)]),
  'vgpu-devices': z.record(z.string().min(1), z.number().int().nonnegative()),
});

export const layoutFileSchema = z.strictObject({
  version: z.literal('v1'),
  'vgpu-configs': z.record(z.string().min(1), z.array(entrySchema).min(1)),
});

export type LayoutFile = z.output<typeof layoutFileSchema>;
export type LayoutEntry = z.output<typeof entrySchema>;

/** Parse YAML text or an already-parsed object into a validated layout file. */
export function parseLayoutFile(input: string | unknown): LayoutFile {
  let obj: unknown = input;
  if (typeof input === 'string') {
    try {
      obj = parseYaml(input);
    } catch (cause) {
      throw new VgpuError(ErrorCode.InvalidArgument, `layout is not valid YAML: ${(cause as Error).message}`, {
        hint: 'fix the YAML syntax at the position given', cause,
      });
    }
  }
  const r = layoutFileSchema.safeParse(obj);
  if (!r.success) throw invalidRequest('layout', r.error);
  return r.data;
}

/** The entries of config `name`; without a name the file must hold exactly one config. */
export function selectLayoutConfig(file: LayoutFile, name?: string): { name: string; entries: LayoutEntry[] } {
  const names = Object.keys(file['vgpu-configs']);
  if (name === undefined) {
    if (names.length !== 1) {
      throw new VgpuError(ErrorCode.InvalidArgument, `the layout holds ${names.length} configs; say which one to use`, {
        hint: `pass -c NAME, one of: ${names.join(', ')}`, details: { configs: names },
      });
    }
    name = names[0]!;
  }
  const entries = file['vgpu-configs'][name];
  if (entries === undefined) {
    throw new VgpuError(ErrorCode.NotFound, `the layout has no config named '${name}'`, {
      hint: `use one of: ${names.join(', ')}`, details: { config: name, configs: names },
    });
  }
  return { name, entries };
}
