/**
 * SIGHUP: re-read the config and apply what can change under running vGPUs — today the per-GPU type policy
 * (which the manager itself refuses while a GPU has vGPUs). Every other section needs a restart; a change there is
 * logged and ignored instead of half-applied, so a reload can never break a running vGPU.
 */
import { isDeepStrictEqual } from 'node:util';
import type { VgpudConfig } from '../../core/config/config-schema.js';
import type { Logger } from '../../core/contracts/logger.js';
import type { VgpuService } from '../../core/contracts/vgpu-service.js';

export interface ReloadResult {
  applied: string[];
  refused: { what: string; why: string }[];
}

export function applyReload(old: Readonly<VgpudConfig>, next: Readonly<VgpudConfig>, service: VgpuService | undefined, log: Logger): ReloadResult {
  const result: ReloadResult = { applied: [], refused: [] };
  for (const key of ['api', 'sim', 'plugins', 'timeouts', 'logging'] as const) {
    if (!isDeepStrictEqual(old[key], next[key])) {
      result.refused.push({ what: key, why: `changing '${key}' needs a restart (systemctl restart vgpud); kept the running value` });
    }
  }
  if (!isDeepStrictEqual(old.gpus, next.gpus)) {
    if (service === undefined) {
      result.refused.push({ what: 'gpus', why: 'no vGPU manager is running to apply the policy to' });
    } else {
      for (const g of service.gpus()) {
        const entry = next.gpus.find((e) => e.bdf?.toLowerCase() === g.bdf) ?? next.gpus.find((e) => e.bdf === undefined);
        const want = entry?.policy ?? 'homogeneous';
        if (want === g.policy) continue;
        try {
          service.setPolicy(g.bdf, want);
          result.applied.push(`gpus ${g.bdf} policy=${want}`);
        } catch (e) {
          result.refused.push({ what: `gpus ${g.bdf} policy`, why: e instanceof Error ? e.message : String(e) });
        }
      }
    }
  }
  for (const r of result.refused) log.warn('config reload: change refused', r);
  log.info('config reloaded', { applied: result.applied, refused: result.refused.length });
  return result;
}
