/**
 * Reads, validates and freezes the daemon configuration. A bad config throws VGPU_ECONFIG whose message names each
 * bad key path (`gpus.0.policy`), what was expected and what was found, so the operator can fix the file without
 * reading the schema.
 */
import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { ErrorCode, VgpuError } from '../contracts/exceptions.js';
import { configSchema, type VgpudConfig } from './config-schema.js';

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let v = root;
  for (const key of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<PropertyKey, unknown>)[key];
  }
  return v;
}

function show(v: unknown): string {
  if (v === undefined) return 'nothing';
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/** One line per issue: `gpus.0.policy: expected one of "homogeneous"|"heterogeneous", got "mixed"`. */
export function describeIssues(issues: readonly z.core.$ZodIssue[], input: unknown): string[] {
  const lines: string[] = [];
  for (const issue of issues) {
    const path = issue.path.map(String).join('.');
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) lines.push(`${path ? `${path}.` : ''}${key}: unknown key`);
      continue;
    }
    const got = valueAt(input, issue.path);
    lines.push(`${path || '(root)'}: ${issue.message.replace(/^Invalid (input|option): /, '').replace(/, received \w+$/, '')}, got ${show(got)}`);
  }
  return lines;
}

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
