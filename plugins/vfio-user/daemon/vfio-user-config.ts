/**
 * `plugins.vfio-user` in the daemon config:
 *
 *   plugins:
 *     vfio-user:
 *       dir: /run/vgpud/vgpud-vfio-user  # sockets <dir>/<VF BDF>.sock, fronts' descriptors, control sockets and logs
 *       mode: "0660"                   # socket mode
 *       owner: qemu                    # socket owner (name or uid); default: the daemon's user
 *       group: kvm                     # socket group (name or gid): the group the VMM runs as
 *       maxDmaMaps: 65535              # DMA map windows a client may hold
 *       front: auto                    # process | in-process | auto (process unless the GPU's device is in-process)
 *
 * Default dir: next to the daemon's API socket, `<api.socket without .sock>-vfio-user` (`/run/vgpud/vgpud-vfio-user`
 * for root's default socket): one daemon's sockets and fronts never mix with another daemon's on the same host.
 */
import { readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { z } from 'zod';
import { ErrorCode, VgpuError } from '../../../core/contracts/exceptions.js';

const idOrName = z.union([z.number().int().nonnegative(), z.string().min(1)]);

export const VfioUserConfigSchema = z.strictObject({
  dir: z.string().min(1).optional(),
  mode: z.union([z.string().regex(/^0?[0-7]{3,4}$/, 'an octal mode like "0660"'), z.number().int().nonnegative()]).default('0660'),
  owner: idOrName.optional(),
  group: idOrName.optional(),
  maxDmaMaps: z.number().int().min(1).max(65535).optional(),
  front: z.enum(['auto', 'process', 'in-process']).default('auto'),
}).prefault({});

export interface VfioUserConfig {
  dir: string;
  mode: number;
  owner?: number;
  group?: number;
  maxDmaMaps?: number;
  front: 'auto' | 'process' | 'in-process';
}

export function defaultVfioUserDir(apiSocket: string): string {
  return join(dirname(apiSocket), `${basename(apiSocket, '.sock')}-vfio-user`);
}

/** A user or group name → id, from /etc/passwd or /etc/group (Node has no getpwnam). */
function lookup(file: string, name: string, what: string): number {
  try {
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      const f = line.split(':');
      if (f[0] === name && f[2] !== undefined) return Number(f[2]);
    }
  } catch {
    // fall through to the error below
  }
  throw new VgpuError(ErrorCode.Config, `plugins.vfio-user.${what}: no ${what === 'owner' ? 'user' : 'group'} "${name}" in ${file}`, {
    hint: `give a numeric ${what === 'owner' ? 'uid' : 'gid'} or an existing name`,
  });
}

export function parseVfioUserConfig(raw: unknown, apiSocket: string): VfioUserConfig {
  const r = VfioUserConfigSchema.safeParse(raw ?? undefined);
  if (!r.success) {
    throw new VgpuError(ErrorCode.Config, `plugins.vfio-user: ${z.prettifyError(r.error)}`, { hint: 'fix the vfio-user section of the config (docs/vfio-user.md)' });
  }
  const c = r.data;
  const id = (v: number | string | undefined, file: string, what: string): number | undefined =>
    v === undefined ? undefined : typeof v === 'number' ? v : /^\d+$/.test(v) ? Number(v) : lookup(file, v, what);
  const owner = id(c.owner, '/etc/passwd', 'owner');
  const group = id(c.group, '/etc/group', 'group');
  return {
    dir: c.dir ?? defaultVfioUserDir(apiSocket),
    mode: typeof c.mode === 'number' ? c.mode : parseInt(c.mode, 8),
    ...(owner !== undefined ? { owner } : {}),
    ...(group !== undefined ? { group } : {}),
    ...(c.maxDmaMaps !== undefined ? { maxDmaMaps: c.maxDmaMaps } : {}),
    front: c.front,
  };
}
