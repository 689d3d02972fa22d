/**
 * The daemon configuration, as one zod schema: defaults live here and nowhere else, and every section except the
 * per-plugin ones is strict, so a misspelt key is an error that names it instead of a silently ignored setting.
 */
import { z } from 'zod';

import { BDF_PATTERN } from './bdf-pattern.js';

export { BDF_PATTERN };

/** `plugins.enabled` entry meaning "every plugin the daemon was given". */
export const ALL_PLUGINS = '*';

const bdf = z.string().regex(BDF_PATTERN, 'expected a PCI address like "0000:41:00.0"');

const loggingSchema = z.strictObject({
  level: z.enum(['error', 'warn', 'info', 'debug']).default('info'),
  format: z.enum(['json', 'human']).default('json'),
});

const gpuSchema = z.strictObject({
  /** Which GPU this entry configures; absent = every GPU no other entry names. */
  bdf: bdf.optional(),
  /** Force a HAL by id instead of choosing by PCI id. */
  hal: z.string().min(1).optional(),
  /**
   * Which backend manages this GPU: 'manager' (vgpud drives it through a HAL) or 'linux-sysfs' (NVIDIA's kernel
   * driver does; vgpud writes the per-VF sysfs ABI). Absent = the backend that finds it (docs/real-hosts.md).
   */
  backend: z.string().min(1).optional(),
  /**
   * Upstream v2 supports only homogeneous (docs/reference/core-driver-interface.md); heterogeneous is this project's
   * extension.
   */
  policy: z.enum(['homogeneous', 'heterogeneous']).default('homogeneous'),
});

const pluginsSchema = z.looseObject({
  /** Plugin names to wire, or "*" for all the daemon was given (built-ins and `paths`). */
  enabled: z.array(z.string().min(1)).default([ALL_PLUGINS]),
  /** Out-of-tree plugin modules; each default-exports a VgpudPlugin. Relative paths are from the cwd. */
  paths: z.array(z.string().min(1)).default([]),
  // Any other key is a plugin's own section (`plugins.<name>`), validated by that plugin.
});

const simDeviceSchema = z.strictObject({
  /** Simulated board, e.g. "rtx-6000-ada". */
  board: z.string().min(1),
  bdf: bdf.optional(),
  /** Backing file of the simulated device (shared memory), if not the default. */
  path: z.string().min(1).optional(),
});

const simSchema = z.strictObject({
  devices: z.array(simDeviceSchema).default([]),
});

const apiSchema = z.strictObject({
  socket: z.string().min(1).default('/run/vgpud/vgpud.sock'),
  stateDir: z.string().min(1).default('/var/lib/vgpud'),
});

const ms = z.number().int().positive();
const timeoutsSchema = z.strictObject({
  /** GSP RPC reply timeout; OpenRM waits 1.5 × 4 s. */
  rpcMs: ms.default(6000),
  /** vGPU bootload RPC (upstream: 10 s, docs/reference/host-rpc-mailbox.md). */
  bootloadMs: ms.default(10_000),
  /** Copy-engine scrub of one vGPU's FB (upstream: 4 s). */
  scrubMs: ms.default(4000),
});

export const configSchema = z.strictObject({
  logging: loggingSchema.prefault({}),
  gpus: z.array(gpuSchema).default([]),
  plugins: pluginsSchema.prefault({}),
  sim: simSchema.prefault({}),
  api: apiSchema.prefault({}),
  timeouts: timeoutsSchema.prefault({}),
});

/** The validated, defaulted configuration (frozen once loaded). */
export type VgpudConfig = z.output<typeof configSchema>;
/** What a config file or object may contain before defaults. */
export type VgpudConfigInput = z.input<typeof configSchema>;
