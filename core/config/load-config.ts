/**
 * Reads, validates and freezes the daemon configuration. A bad config throws VGPU_ECONFIG whose message names each
 * bad key path (`gpus.0.policy`), what was expected and what was found, so the operator can fix the file without
 * reading the schema. A problem repeated in many places is reported once with its count and the first few places.
 */
import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { ErrorCode, VgpuError } from '../contracts/exceptions.js';
import { describeIssues } from '../validation/describe-issues.js';
import { configSchema, type VgpudConfig } from './config-schema.js';

/** One line per distinct problem: `gpus.0.policy: expected one of "homogeneous"|"heterogeneous", got "mixed"`. */
export { describeIssues };

function deepFreeze<T>(v: T): T {
  if (v !== null && typeof v === 'object' && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const child of Object.values(v)) deepFreeze(child);
  }
  return v;
}

/** Validate an already-parsed config object. `source` names it in errors (a file path, "config"). */
export function parseConfig(input: unknown, source = 'config'): Readonly<VgpudConfig> {
  const result = configSchema.safeParse(input ?? {});
  if (!result.success) {
    const lines = describeIssues(result.error.issues, input ?? {});
    throw new VgpuError(ErrorCode.Config, `invalid ${source}: ${lines.join('; ')}`, {
      hint: 'fix the named keys (see docs/architecture.md for the config sections) and start again',
      details: { source, issues: lines },
    });
  }
  return deepFreeze(result.data);
}

function readConfigFile(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (cause) {
    throw new VgpuError(ErrorCode.Config, `cannot read config file ${path}: ${(cause as Error).message}`, {
      hint: 'check the path given with --config and its permissions', details: { source: path }, cause,
    });
  }
  try {
    // YAML is a superset of JSON, but JSON.parse gives better positions for a .json file.
    return extname(path).toLowerCase() === '.json' ? JSON.parse(text) : parseYaml(text);
  } catch (cause) {
    throw new VgpuError(ErrorCode.Config, `config file ${path} is not valid ${extname(path) === '.json' ? 'JSON' : 'YAML'}: ${(cause as Error).message}`, {
      hint: 'fix the syntax error at the position given', details: { source: path }, cause,
    });
  }
}

/** Load a config from a YAML/JSON file path, or validate a config object; returns a deeply frozen config. */
export function loadConfig(pathOrObject: string | Record<string, unknown> = {}): Readonly<VgpudConfig> {
  if (typeof pathOrObject === 'string') return parseConfig(readConfigFile(pathOrObject), pathOrObject);
  return parseConfig(pathOrObject);
}
