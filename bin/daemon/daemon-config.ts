/**
 * The daemon's effective config: the file (or the built-in one), then the command-line flags on top, then
 * validated once (zod, core/config). The socket and state dir fall back to per-user paths when not root, because
 * the schema's system defaults are only writable by root.
 */
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { parseConfig } from '../../core/config/load-config.js';
import type { VgpudConfig } from '../../core/config/config-schema.js';
import { ErrorCode, VgpuError } from '../../core/contracts/exceptions.js';
import { defaultSocketPath, defaultStateDir } from '../cli/default-paths.js';
import { builtinConfig } from './default-config.js';

export interface DaemonFlags {
  config?: string;
  socket?: string;
  stateDir?: string;
  logFormat?: 'human' | 'json';
  logLevel?: 'error' | 'warn' | 'info' | 'debug';
  /** Present the GPUs vgpud drives as a sysfs tree through FUSE at this directory (plugins.sysfs-fuse.mount). */
  sysfsMount?: string;
  /** The sysfs root the Linux sysfs backend reads and writes (plugins.linux-sysfs.root; default /sys). */
  sysfsRoot?: string;
}

/** `plugins.<name>` of the raw config with `key` set (a command-line flag over the file). */
function withPluginKey(plugins: Record<string, unknown>, name: string, key: string, value: string | undefined): Record<string, unknown> {
  if (value === undefined) return plugins;
  const section = plugins[name];
  return { ...plugins, [name]: { ...(section !== null && typeof section === 'object' ? section : {}), [key]: value } };
}

function readRaw(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (cause) {
    throw new VgpuError(ErrorCode.Config, `cannot read config file ${path}: ${(cause as Error).message}`, {
      hint: 'check the path given with --config and its permissions', cause,
    });
  }
  let v: unknown;
  try {
    v = parseYaml(text);
  } catch (cause) {
    throw new VgpuError(ErrorCode.Config, `config file ${path} is not valid YAML: ${(cause as Error).message}`, {
      hint: 'fix the syntax error at the position given', cause,
    });
  }
  if (v === null || v === undefined) return {};
  if (typeof v !== 'object' || Array.isArray(v)) {
    throw new VgpuError(ErrorCode.Config, `config file ${path} must hold a mapping`, { hint: 'see docs/vgpud.example.yaml' });
  }
  return v as Record<string, unknown>;
}

export function daemonConfig(flags: DaemonFlags): Readonly<VgpudConfig> {
  const raw = flags.config !== undefined ? readRaw(flags.config) : (builtinConfig() as Record<string, unknown>);
  const api = { ...((raw.api as Record<string, unknown> | undefined) ?? {}) };
  api.socket = flags.socket ?? api.socket ?? defaultSocketPath();
  api.stateDir = flags.stateDir ?? api.stateDir ?? defaultStateDir();
  const logging = { ...((raw.logging as Record<string, unknown> | undefined) ?? {}) };
  if (flags.logFormat) logging.format = flags.logFormat;
  if (flags.logLevel) logging.level = flags.logLevel;
  let plugins = { ...((raw.plugins as Record<string, unknown> | undefined) ?? {}) };
  plugins = withPluginKey(plugins, 'sysfs-fuse', 'mount', flags.sysfsMount);
  plugins = withPluginKey(plugins, 'linux-sysfs', 'root', flags.sysfsRoot);
  return parseConfig({ ...raw, api, logging, plugins }, flags.config ?? 'built-in config');
}
