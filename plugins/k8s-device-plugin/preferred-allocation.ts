/**
 * GetPreferredAllocation: which of the available devices a multi-device request should get. `pack` puts the request
 * on the fewest GPUs (a VM with 4 vGPUs on one board leaves whole boards free for the next big request); `spread`
 * puts it on as many GPUs as it can (one board's failure takes fewer of its vGPUs). Pure: the server feeds it the
 * resource's devices.
 *
 * The kubelet treats the answer as advice (api.proto: "not guaranteed to be the allocation ultimately performed"),
 * but a request it could never have sent — a must-include id that is not ours, a size no list can meet — is an
 * error naming what is wrong, not a silent shorter answer.
 */
import { ErrorCode, VgpuError } from '../../core/contracts/exceptions.js';

export type AllocationPolicy = 'pack' | 'spread';

export interface PreferredRequest {
  available: readonly string[];
  mustInclude: readonly string[];
  size: number;
}

/** `devices`: device id → its GPU, for the devices this resource advertises. */
export function preferredAllocation(req: PreferredRequest, devices: ReadonlyMap<string, { gpu: string }>, policy: AllocationPolicy): string[] {
  const unknown = req.mustInclude.filter((id) => !devices.has(id));
  if (unknown.length > 0) {
    throw new VgpuError(ErrorCode.InvalidArgument, `must-include device(s) this resource does not advertise: ${unknown.join(', ')}`, {
      hint: 'ask with ids from the resource\'s ListAndWatch', details: { unknown },
    });
  }
  const must = [...new Set(req.mustInclude)];
  // Ids the kubelet offers that are gone since (a destroy racing the admission) are left out, not refused.
  const pool = [...new Set(req.available)].filter((id) => devices.has(id) && !must.includes(id)).sort();
  if (!Number.isInteger(req.size) || req.size < must.length || req.size > must.length + pool.length) {
    throw new VgpuError(ErrorCode.InvalidArgument,
      `allocation size ${req.size} cannot be met: ${must.length} must be included and ${pool.length} more are available`, {
        hint: 'the size must be at least the must-include count and at most the available count',
        details: { size: req.size, mustInclude: must.length, available: pool.length },
      });
  }
  const chosen = [...must];
  const onGpu = new Map<string, number>();
  for (const id of must) onGpu.set(devices.get(id)!.gpu, (onGpu.get(devices.get(id)!.gpu) ?? 0) + 1);
  const free = new Map<string, string[]>();
  for (const id of pool) {
    const g = devices.get(id)!.gpu;
    free.set(g, [...(free.get(g) ?? []), id]);
  }
  let left = req.size - must.length;
  if (policy === 'pack') {
    // GPUs already in the request first (they count anyway), then the fullest: taking from the largest groups
    // reaches any count with the fewest groups.
    const order = [...free.keys()].sort((a, b) => (onGpu.get(b) ?? 0) - (onGpu.get(a) ?? 0)
      || free.get(b)!.length - free.get(a)!.length || a.localeCompare(b));
    for (const g of order) {
      const take = free.get(g)!.slice(0, left);
      chosen.push(...take);
      left -= take.length;
      if (left === 0) break;
    }
  } else {
    while (left > 0) {
      // One device at a time from the GPU holding the fewest of the request, the one with the most left on a tie.
      const g = [...free.keys()].filter((k) => free.get(k)!.length > 0)
        .sort((a, b) => (onGpu.get(a) ?? 0) - (onGpu.get(b) ?? 0) || free.get(b)!.length - free.get(a)!.length || a.localeCompare(b))[0]!;
      chosen.push(free.get(g)!.shift()!);
      onGpu.set(g, (onGpu.get(g) ?? 0) + 1);
      left--;
    }
  }
  return chosen;
}
