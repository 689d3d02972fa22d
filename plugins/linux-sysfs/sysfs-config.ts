/**
 * `plugins.linux-sysfs`: where the host's sysfs is and what the backend may do there (docs/real-hosts.md).
 */
import { z } from 'zod';
import { BDF_PATTERN } from '../../core/config/config-schema.js';
import { ErrorCode, VgpuError } from '../../core/contracts/exceptions.js';
import { describeIssues } from '../../core/validation/describe-issues.js';

export const sysfsConfigSchema = z.strictObject({
  /** The sysfs root: `<root>/bus/pci/devices/<BDF>/…` (a test, a container with the host's /sys elsewhere). */
  root: z.string().min(1).default('/sys'),
  /** Manage only these PFs (default: every NVIDIA PF bound to `nvidia` with SR-IOV under the root). */
  gpus: z.array(z.string().regex(BDF_PATTERN, 'expected a PCI address like "0000:41:00.0"').transform((s) => s.toLowerCase())).optional(),
  /** Enable a PF's VFs (write sriov_totalvfs to sriov_numvfs) when a create finds none, as sriov-manage -e does. */
  enableVfs: z.boolean().default(true),
  /** Discover nothing (the plugin stays loaded but manages no GPU). */
  disabled: z.boolean().default(false),
}).prefault({});

export type SysfsConfig = z.output<typeof sysfsConfigSchema>;

export function parseSysfsConfig(raw: unknown): SysfsConfig {
  const r = sysfsConfigSchema.safeParse(raw ?? {});
  if (!r.success) {
    throw new VgpuError(ErrorCode.Config, `plugins.linux-sysfs: ${describeIssues(r.error.issues, raw).join('; ')}`, {
      hint: 'see docs/real-hosts.md for the keys of plugins.linux-sysfs',
    });
  }
  return r.data;
}
