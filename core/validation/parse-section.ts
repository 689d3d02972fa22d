/**
 * A plugin's config section (`plugins.<name>` of the daemon config, validated by the plugin itself at start):
 * parsed with its zod schema, or VGPU_ECONFIG naming every distinct problem with its key path.
 */
import type { z } from 'zod';
import { ErrorCode, VgpuError } from '../contracts/exceptions.js';
import { describeIssues } from './describe-issues.js';

export function parseConfigSection<T extends z.ZodType>(schema: T, input: unknown, where: string): z.output<T> {
  const r = schema.safeParse(input ?? {});
  if (r.success) return r.data;
  const lines = describeIssues(r.error.issues, input ?? {}).map((l) => `${where}.${l}`);
  throw new VgpuError(ErrorCode.Config, `invalid config: ${lines.join('; ')}`, {
    hint: 'fix the named keys in the daemon config (docs/vgpud.example.yaml lists them with their defaults)',
    details: { problems: lines },
  });
}
