/**
 * Validates a plugin before any of its code runs (VS Code / Theia style): the manifest's fields, and that the
 * module and hooks have the right shape. Out-of-tree plugins are untrusted input; built-ins are checked the same
 * way so a broken built-in fails at startup with the same clear message.
 */
import { z } from 'zod';
import { ErrorCode, VgpuError } from './contracts/exceptions.js';
import type { VgpudPlugin } from './contracts/plugin.js';

const capability = z.string().regex(/^[a-z][a-z0-9-]*$/, 'expected a kebab-case capability name');

export const pluginManifestSchema = z.object({
  name: z.string().regex(/^[a-z][a-z0-9-]*$/, 'expected a kebab-case name like "hal-ada-lovelace"'),
  version: z.string().regex(/^\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.-]+)?$/, 'expected a semver version like "1.0.0"'),
  description: z.string().optional(),
  provides: z.array(capability),
  requires: z.array(capability),
  optional: z.array(capability).optional(),
});

const isFn = (v: unknown): boolean => typeof v === 'function';

/**
 * Throws VGPU_ECONFIG naming the plugin (its name if readable, else where it came from) and the bad field.
 * The module is duck-typed, not `instanceof ContainerModule`: an out-of-tree plugin may carry its own copy of
 * inversify, whose class is a different object.
 */
export function validatePlugin(candidate: unknown, origin: string): VgpudPlugin {
  const fail = (field: string, problem: string, plugin?: string): never => {
    const who = plugin !== undefined ? `plugin '${plugin}' (${origin})` : `plugin from ${origin}`;
    throw new VgpuError(ErrorCode.Config, `${who}: ${field}: ${problem}`, {
      hint: 'fix the plugin (its default export must be { manifest, module?, start?, stop? }) or remove it from the config',
      details: { plugin: plugin ?? null, origin, field },
    });
  };
  if (candidate === null || typeof candidate !== 'object') return fail('(plugin)', 'expected an object');
  const c = candidate as Record<string, unknown>;
  const rawName = (c.manifest as { name?: unknown } | undefined)?.name;
  const name = typeof rawName === 'string' ? rawName : undefined;
  if (c.manifest === undefined) return fail('manifest', 'missing');
  const parsed = pluginManifestSchema.safeParse(c.manifest);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const field = ['manifest', ...issue.path.map(String)].join('.');
    return fail(field, issue.message.replace(/^Invalid input: /, ''), name);
  }
  const m = c.module as { load?: unknown } | undefined;
  if (m !== undefined && (m === null || typeof m !== 'object' || !isFn(m.load))) {
    return fail('module', 'expected an inversify ContainerModule', name);
  }
  if (c.start !== undefined && !isFn(c.start)) return fail('start', 'expected a function', name);
  if (c.stop !== undefined && !isFn(c.stop)) return fail('stop', 'expected a function', name);
  return candidate as VgpudPlugin;
}
